"""The default model's release policy: int8 ships only where it holds the fp32 figures, and a card can be
remeasured for today's extractors without retraining."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from selfmm.recipe.corpus import shipped_test_split
from selfmm.recipe.scores import combination_scores, held_out_metrics, onnx_predict

INT8_MAE_TOLERANCE = 0.01  # issue 17: int8 is the default artifact if every held-out MAE stays within 0.01


def int8_holds(metrics: dict) -> bool:
    """int8 ships (a smaller download, faster) if no held-out MAE of any head and source moves by more than
    INT8_MAE_TOLERANCE; the other figures of both are in the card."""
    fp32, int8 = metrics["onnx_fp32"], metrics["onnx_int8"]
    return all(abs(int8[g]["MAE"] - fp32[g]["MAE"]) <= INT8_MAE_TOLERANCE for g in fp32 if "MAE" in fp32[g])


def ship(checkpoint: Path, corpus: Path, out: Path, try_int8: bool, extra: dict,
         extractor_files: list[Path] | None = None) -> None:
    """Export with held-out metrics per head and data source computed through ONNX Runtime; int8 if it holds.
    The int8 trial goes to a temporary folder, so that `out` (tracked by git) is written once and the card's
    commit is read from a clean tree."""
    import shutil
    import tempfile

    from export.build import export_artifact

    kw = dict(metrics_fn=held_out_metrics, extractor_files=extractor_files)
    if try_int8:
        trial = Path(tempfile.mkdtemp(prefix="int8-trial-")) / "model"
        card = export_artifact(checkpoint, trial, "int8", corpus, extra, **kw)
        if int8_holds(card["metrics"]):
            export_artifact(checkpoint, out, "int8", corpus, extra, **kw)
        else:
            print(f"int8 moves a held-out MAE by more than {INT8_MAE_TOLERANCE}: shipping fp32", file=sys.stderr)
            extra = {**extra, "notes": {"int8_rejected": {k: card["metrics"][k] for k in ("onnx_fp32", "onnx_int8")}}}
        shutil.rmtree(trial.parent, ignore_errors=True)
    if not try_int8 or "notes" in extra:
        card = export_artifact(checkpoint, out, None, corpus, extra, **kw)
    print(json.dumps(card["metrics"], indent=1))


def remeasure(data: Path, model: Path, why: str) -> dict:
    """Rewrite the card of the artifact in `model` for today's extractors without retraining: their specs, and the
    held-out figures and combination probe recomputed through ONNX Runtime on the same test split. For a change of
    extractor that the validation split showed to be neutral; `why` and the figures it replaced go in the card."""
    import datetime
    import shutil

    from export.card import embed_card, git_state, same_graph, spec_hash
    from export.evaluate import predict_split
    from selfmm.features.spec import file_sha256

    card_file = model / "card.json"
    card = json.loads(card_file.read_text())
    split, voice_spec = shipped_test_split(data, model, card)
    key = "onnx_int8" if card["export"]["quantization"] else "onnx_fp32"
    figures = held_out_metrics(predict_split(model / "model.onnx", split), split.ids, split.labels)
    combos = combination_scores(onnx_predict(model / "model.onnx"), split)
    before = {g: f for g, f in card["metrics"][key].items() if figures.get(g) != f}
    card["feature_specs"]["audio"] = voice_spec.to_dict()
    card["feature_spec_hashes"]["audio"] = spec_hash(card["feature_specs"]["audio"])
    card["metrics"][key] = figures
    card["metrics"]["combinations"] = combos
    card["remeasured"] = {**git_state(Path(__file__).resolve().parents[1]),
                          "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                          "why": why, "replaced": {key: before}}
    onnx_file = model / card["onnx"]["file"]
    kept = onnx_file.with_suffix(".before.onnx")
    shutil.copy2(onnx_file, kept)
    embed_card(onnx_file, card)  # the app refuses a card.json that differs from the one inside the ONNX file
    if not same_graph(kept, onnx_file):
        raise RuntimeError("re-embedding the card changed the graph")
    kept.unlink()
    card["onnx"].update(sha256=file_sha256(onnx_file), bytes=onnx_file.stat().st_size)
    card_file.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    return card
