"""The whole export: checkpoint -> DIR/{model.onnx, tokenizer.json, card.json}, or nothing at all.

Everything is written to a temporary folder beside DIR and moved into place only after the parity check
passed, so a failed export leaves neither a half-written DIR nor a damaged earlier artifact.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from export.card import build_card, embed_card, load_extra, same_graph
from selfmm.features.spec import file_sha256
from export.onnx_export import ExportError

REPO = Path(__file__).resolve().parent.parent
QUANTIZATIONS = ("int8",)


def _clip_rates(specs: dict | None) -> dict[str, float]:
    """Frames per second of the audio and vision features, from their specs when known."""
    specs = specs or {}
    a, v = specs.get("audio") or {}, specs.get("vision") or {}
    audio_fps = a.get("fps") or (a["rate"] / a["hop"] if a.get("rate") and a.get("hop") else 20.0)
    return {"audio_fps": float(audio_fps), "vision_fps": float(v.get("fps") or 10.0)}


ARTIFACT_FILES = {"model.onnx", "tokenizer.json", "card.json"}  # and the ONNX files of learned extractors


def _check_out(out: Path) -> None:
    """`out` may be new, empty or an earlier artifact; never a folder holding anything else (it is replaced)."""
    if not out.exists():
        return
    others = (sorted(p.name for p in out.iterdir() if p.name not in ARTIFACT_FILES and p.suffix != ".onnx")
              if out.is_dir() else [out.name])
    if others:
        raise ExportError(f"{out} is not a model artifact folder (it holds {others[:5]}); refusing to replace it")


def _check_extractor_file(path: Path, specs: dict) -> None:
    """A learned extractor's file must be one the checkpoint's feature specs name, with the hash they state."""
    named = {(s.get("params") or {}).get("file"): (s.get("params") or {}).get("sha256") for s in specs.values()}
    if path.name not in named:
        raise ExportError(f"{path.name} is not named by any feature spec of the checkpoint")
    if not file_sha256(path).startswith(str(named[path.name])):
        raise ExportError(f"{path} is not the file the feature spec names (SHA-256 differs)")


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move `tmp` to `out`, replacing an earlier artifact there."""
    if out.exists():
        _check_out(out)
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        tmp.rename(out)


def export_artifact(checkpoint: Path, out: Path, quantize: str | None = None, eval_data: Path | None = None,
                    card_extra: dict[str, Any] | None = None, tokenizer: Path | None = None,
                    threads: int = 2, log=lambda msg: print(msg, file=sys.stderr), metrics_fn=None,
                    extractor_files: list[Path] | None = None) -> dict[str, Any]:
    """Export `checkpoint` (a best.pt of selfmm.train) to the artifact folder `out`; returns the card.
    extractor_files: models of learned feature extractors (a face embedding's ONNX file) that the feature specs
    name, shipped beside model.onnx; each must match the SHA-256 its spec states."""
    from export.evaluate import clip_inputs, heldout_metrics, latency_ms
    from export.onnx_export import export_onnx
    from export.parity import run_parity
    from export.quantize import quantize_int8
    from selfmm.train import load_checkpoint

    if quantize not in (None, *QUANTIZATIONS):
        raise ExportError(f"unknown quantization {quantize!r}; choose one of {QUANTIZATIONS}")
    checkpoint, out = Path(checkpoint), Path(out)
    _check_out(out)
    try:
        model, ckpt = load_checkpoint(checkpoint)
    except Exception as e:  # torch.load's own errors are cryptic for a wrong or damaged file
        raise ExportError(f"cannot load checkpoint {checkpoint}: {e}") from e
    tokenizer_text = tokenizer.read_bytes() if tokenizer else (ckpt.get("text_encoder") or {}).get("tokenizer_json")
    if not tokenizer_text:
        raise ExportError(f"{checkpoint} carries no tokenizer.json of its text encoder; pass --tokenizer FILE")
    mc = model.config
    for m, dim in (("audio", mc.audio_in), ("vision", mc.vision_in)):
        spec = (ckpt.get("feature_specs") or {}).get(m)
        if spec and int(spec.get("dim", dim)) != dim:
            raise ExportError(f"the {m} feature spec says dim {spec['dim']} but the model takes {dim}")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        fp32 = tmp / "model.fp32.onnx"
        log(f"exporting {checkpoint} -> ONNX")
        export_onnx(model, fp32)
        del model
        models = {"fp32": fp32}
        if quantize == "int8":
            log("quantizing to int8")
            models["int8"] = tmp / "model.int8.onnx"
            quantize_int8(fp32, models["int8"])
        for path in extractor_files or []:
            _check_extractor_file(Path(path), ckpt.get("feature_specs") or {})
            shutil.copyfile(path, tmp / Path(path).name)
        tok_path = tmp / "tokenizer.json"
        # byte for byte: the text feature spec identifies the tokenizer by the SHA-256 of this file
        tok_path.write_bytes(tokenizer_text if isinstance(tokenizer_text, bytes) else tokenizer_text.encode("utf-8"))

        log("checking parity with PyTorch in a fresh process")
        try:
            parity = run_parity(checkpoint, models, eval_data, tok_path)
        except RuntimeError as e:
            raise ExportError(str(e)) from e
        fp = parity["fp32"]
        if not fp["passed"]:
            raise ExportError("ONNX and PyTorch disagree beyond {:g}: max |diff| {} (worst: {})".format(
                parity["tolerance"], {h: f"{v:.2e}" for h, v in fp["max_abs"].items()}, fp["worst_case"]))

        metrics: dict[str, Any] = {"checkpoint": (ckpt.get("result") or {}).get("test")}
        eval_len = None
        dataset = (ckpt.get("train_config") or {}).get("dataset", "mosi")
        if eval_data:
            from selfmm.data import load_feature_file

            log(f"held-out metrics through ONNX Runtime on {eval_data}")
            test = load_feature_file(eval_data).splits["test"]
            eval_len = test.text_len
            metrics["heldout_data"] = {"file": Path(eval_data).name, "sha256": file_sha256(Path(eval_data)),
                                       "split": "test", "samples": len(test)}
            for k, p in models.items():
                metrics[f"onnx_{k}"] = heldout_metrics(p, test, dataset, metrics_fn)
            if "int8" in models and metrics_fn is None:
                metrics["int8_minus_fp32"] = {k: round(v - metrics["onnx_fp32"][k], 4)
                                              for k, v in metrics["onnx_int8"].items()}
        metrics.update((card_extra or {}).get("metrics") or (ckpt.get("card") or {}).get("metrics") or {})

        log("timing one 5 s clip")
        rates = _clip_rates(ckpt.get("feature_specs"))
        feeds = clip_inputs(mc.audio_in, mc.vision_in, int(mc.text_encoder.get("vocab_size", 2)), **rates)
        timing = {k: latency_ms(p, feeds, threads) for k, p in models.items()}
        clip = {"seconds": 5.0, "tokens": 30, **rates, "threads": threads}
        quant = None
        if quantize:
            quant = {"method": "onnxruntime.quantization.quantize_dynamic, QInt8 weights",
                     "bytes": models["int8"].stat().st_size, "fp32_bytes": fp32.stat().st_size,
                     "latency_ms": timing["int8"], "fp32_latency_ms": timing["fp32"], "clip": clip,
                     "parity_vs_pytorch": parity["int8"]["max_abs"], "parity_vs_fp32": parity["int8"]["max_abs_vs_fp32"]}
            if "int8_minus_fp32" in metrics:
                quant["metrics_change"] = metrics["int8_minus_fp32"]

        final = models[quantize or "fp32"]
        model_path = tmp / "model.onnx"
        card = build_card(ckpt, extra=card_extra or {}, parity=parity, metrics=metrics, quantization=quant,
                          tokenizer_sha256=file_sha256(tok_path), eval_len=eval_len, repo=REPO,
                          onnx_info={"latency_ms": timing[quantize or "fp32"], "latency_clip": clip})
        shutil.copyfile(final, model_path)
        embed_card(model_path, card)
        if not same_graph(final, model_path):
            raise ExportError("embedding the card changed the graph")
        for p in models.values():
            p.unlink()
        card["onnx"] = {"file": "model.onnx", "sha256": file_sha256(model_path), "bytes": model_path.stat().st_size}
        (tmp / "card.json").write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"wrote {out}: model.onnx ({card['onnx']['bytes'] / 1e6:.1f} MB), tokenizer.json, card.json")
    return card


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m export", description="Export a Self-MM checkpoint (best.pt of "
                                "selfmm.train) to an ONNX model artifact: model.onnx, tokenizer.json, card.json.")
    p.add_argument("--checkpoint", required=True, type=Path, help="best.pt of selfmm.train (a trusted torch file)")
    p.add_argument("--out", required=True, type=Path, help="artifact folder (replaced if it holds an artifact)")
    p.add_argument("--quantize", choices=QUANTIZATIONS, help="ship int8 weights (dynamic quantization)")
    p.add_argument("--eval-data", type=Path, help="feature file whose test split gives ONNX Runtime metrics")
    p.add_argument("--card-extra", help="JSON object (inline or a file): name, heads, training_data, license, "
                   "metrics, text_encoder ...")
    p.add_argument("--tokenizer", type=Path, help="tokenizer.json to ship if the checkpoint carries none")
    p.add_argument("--threads", type=int, default=2, help="threads for the latency figures")
    args = p.parse_args(argv)
    try:
        card = export_artifact(args.checkpoint, args.out, args.quantize, args.eval_data, load_extra(args.card_extra),
                               args.tokenizer, args.threads)
    except (ExportError, ValueError, OSError) as e:
        print(f"export failed: {e}", file=sys.stderr)
        sys.exit(1)
    fp = card["parity"]["fp32"]["max_abs"]
    print(json.dumps({"out": str(args.out), "sha256": card["onnx"]["sha256"], "bytes": card["onnx"]["bytes"],
                      "parity_fp32_max_abs": fp, "quantization": card["export"]["quantization"] and "int8"}, indent=2))
