"""The model card: what the app needs to know to run the model honestly, in card.json and inside model.onnx.

The card inside the ONNX file (metadata key "card") is the whole card except its "onnx" entry, which holds the
file's own SHA-256 and so cannot be inside it. The loader checks that both copies agree.
"""
from __future__ import annotations

import datetime
import json
import subprocess
from pathlib import Path
from typing import Any

from selfmm.contract import (AUDIO, AUDIO_LENGTHS, HEAD_MODALITY, HEADS, MODALITIES, TEXT_IDS, TEXT_MASK, VISION,
                             VISION_LENGTHS)

FORMAT_VERSION = 1
LABEL_RANGE = {"mosi": 3.0, "mosei": 3.0, "sims": 1.0}


def spec_hash(spec: dict[str, Any] | None) -> str | None:
    from selfmm.features.spec import FeatureSpec

    return None if spec is None else FeatureSpec.from_dict(spec).hash()


def git_state(repo: Path) -> dict[str, Any]:
    """The exporting commit and whether the work tree differed from it (None outside a git checkout)."""
    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


def load_extra(value: str | None) -> dict[str, Any]:
    """--card-extra: inline JSON or the path of a JSON file."""
    if not value:
        return {}
    text = value if value.lstrip().startswith("{") else Path(value).read_text()
    extra = json.loads(text)
    if not isinstance(extra, dict):
        raise ValueError("--card-extra must be a JSON object")
    return extra


def _heads(given: dict[str, Any], present: dict[str, int] | None = None) -> dict[str, dict[str, Any]]:
    """Per head {calibrated, note}; `given` may also say just {"T": true}. A head not stated is calibrated when
    its modality was present in the training split (the checkpoint counts it; M needs any), else uncalibrated;
    whether those data were real is the trainer's claim, so the note says where the verdict came from."""
    out = {}
    for h, modality in HEAD_MODALITY.items():
        data = "multimodal" if h == "M" else modality  # what a head's training samples carried
        g = given.get(h, {})
        g = {"calibrated": bool(g)} if isinstance(g, bool) else dict(g)
        if "calibrated" not in g:
            n = sum(present.values()) if (present and h == "M") else (present or {}).get(modality)
            if n:
                g = {"calibrated": True, "note": g.get("note") or f"trained with {data} data "
                                                                  f"({n} training samples had it)"}
            else:
                g = {"calibrated": False, "note": g.get("note") or (
                    f"no {data} data in training" if present else
                    f"not stated at export whether the {modality} head was trained on real {data} data")}
        out[h] = {"calibrated": bool(g["calibrated"]), "note": g.get("note", "")}
    return out


def text_max_length(ckpt: dict[str, Any], eval_len: int | None) -> int:
    """Token length the model was trained with: the text spec's, else the data's, else MMSA's (50; SIMS 39)."""
    spec = (ckpt.get("feature_specs") or {}).get("text") or {}
    if spec.get("params", {}).get("max_length"):
        return int(spec["params"]["max_length"])
    if eval_len:
        return int(eval_len)
    return 39 if ckpt.get("train_config", {}).get("dataset") == "sims" else 50


def build_card(ckpt: dict[str, Any], *, extra: dict[str, Any], parity: dict[str, Any], metrics: dict[str, Any],
               quantization: dict[str, Any] | None, tokenizer_sha256: str, eval_len: int | None,
               repo: Path, onnx_info: dict[str, Any]) -> dict[str, Any]:
    """Everything but the "onnx" checksum entry, which `export.build` adds once the file is final."""
    import onnxruntime
    import torch

    extra = {**(ckpt.get("card") or {}), **extra}  # --card-extra wins over the checkpoint's "card"
    mc, tc = ckpt["model_config"], ckpt.get("train_config", {})
    te = mc["text_encoder"]
    dataset = tc.get("dataset")
    specs = {m: (ckpt.get("feature_specs") or {}).get(m) for m in MODALITIES}
    data = ckpt.get("data", {})
    text_encoder = {"name": ckpt.get("text_encoder", {}).get("name"), "max_length": text_max_length(ckpt, eval_len),
                    "vocab_size": te.get("vocab_size"), "hidden_size": te.get("hidden_size"),
                    "layers": te.get("num_hidden_layers"), "max_positions": te.get("max_position_embeddings"),
                    "tokenizer": {"file": "tokenizer.json", "sha256": tokenizer_sha256}}
    text_encoder.update({k: v for k, v in extra.get("text_encoder", {}).items() if k != "tokenizer"})
    card = {
        "format_version": FORMAT_VERSION,
        "name": extra.get("name") or f"selfmm-{dataset}-{text_encoder['name']}",
        "description": extra.get("description", "Self-MM (Yu et al., AAAI 2021): fused (M) and unimodal (T, A, V) "
                                                "sentiment heads of one jointly trained network"),
        "dataset": dataset,
        "label_range": [-LABEL_RANGE.get(dataset, 3.0), LABEL_RANGE.get(dataset, 3.0)],
        "text_encoder": text_encoder,
        "inputs": {TEXT_IDS: "int64 (B, L)", TEXT_MASK: "int64 (B, L)",
                   AUDIO: f"float32 (B, Ta, {mc['audio_in']})", AUDIO_LENGTHS: "int64 (B,)",
                   VISION: f"float32 (B, Tv, {mc['vision_in']})", VISION_LENGTHS: "int64 (B,)",
                   "absent": "audio/vision length 0; text: all-zero mask"},
        "outputs": {h: f"float32 (B,): {HEAD_MODALITY[h]} head" for h in HEADS},
        "feature_dims": {"audio": mc["audio_in"], "vision": mc["vision_in"]},
        "feature_specs": specs,
        "feature_spec_hashes": {m: spec_hash(s) for m, s in specs.items()},
        "heads": _heads(extra.get("heads", {}), data.get("train_present")),
        "training_data": extra.get("training_data") or [{
            "file": data.get("file"), "sha256": data.get("sha256"), "sizes": data.get("sizes"), "dataset": dataset,
            "provenance": "not stated at export (pass --card-extra)"}],
        "license": extra.get("license"),
        "metrics": metrics,
        "parity": parity,
        "export": {**git_state(repo), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                   "quantization": quantization, "exporter": "torch.onnx (TorchScript, dynamo=False)",
                   "torch": torch.__version__.split("+")[0], "onnxruntime": onnxruntime.__version__, **onnx_info},
        "checkpoint": {"model_config": {k: v for k, v in mc.items() if k != "text_encoder"}, "train_config": tc,
                       "result": ckpt.get("result")},
    }
    for k, v in extra.items():  # anything else the builder states (e.g. "notes", "intended_use")
        if k not in card and k not in ("heads", "text_encoder"):
            card[k] = v
    return card


def embed_card(path: Path, card: dict[str, Any]) -> None:
    """Store the card (without its "onnx" entry) in the ONNX file's metadata_props under "card"."""
    import onnx

    m = onnx.load(str(path))
    del m.metadata_props[:]
    entry = m.metadata_props.add()
    entry.key, entry.value = "card", json.dumps({k: v for k, v in card.items() if k != "onnx"}, sort_keys=True)
    onnx.save(m, str(path))


def same_graph(a: Path, b: Path) -> bool:
    """True when two ONNX files differ at most in their metadata (what embed_card changes)."""
    import onnx

    ma, mb = onnx.load(str(a)), onnx.load(str(b))
    for m in (ma, mb):
        del m.metadata_props[:]
    return ma.SerializeToString(deterministic=True) == mb.SerializeToString(deterministic=True)
