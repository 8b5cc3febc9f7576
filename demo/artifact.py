"""Load a model artifact written by `python -m export` and run it with ONNX Runtime (no torch).

    art = load_artifact("assets/model", specs={"audio": audio_extractor.spec, ...})
    scores = art.predict_one(ids, mask, audio_frames, None)      # {"M": 0.8, "T": 1.1, "A": ..., "V": ...}

Loading checks, in order, and refuses with an ArtifactError that says what is wrong: the folder and its
files exist, the card's format version is one this loader reads, model.onnx and tokenizer.json match the
card's SHA-256, ONNX Runtime accepts the model, the card inside the model equals card.json, the graph takes
the inputs the card names, and the model's feature specs equal the specs of the extractors in use.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from selfmm import contract
from selfmm.contract import HEADS, INPUTS, MODALITIES, TEXT_IDS, TEXT_MASK
from selfmm.features.spec import file_sha256

FORMAT_VERSIONS = (1,)  # card format versions this loader reads (export.card.FORMAT_VERSION writes)


class ArtifactError(ValueError):
    """The artifact is missing, damaged, of another format, or made for other features."""


def _spec_dict(spec: Any) -> dict[str, Any] | None:
    """A FeatureSpec or a spec dict -> plain dict (None stays None)."""
    if spec is None or isinstance(spec, Mapping):
        return None if spec is None else dict(spec)
    return spec.to_dict()


def spec_differences(model_specs: Mapping[str, Any], app_specs: Mapping[str, Any]) -> list[str]:
    """What differs between the model's feature specs and those in use, one line per difference, for the
    modalities in `app_specs`; [] when they agree."""
    from selfmm.features.spec import FeatureSpec

    out = []
    for m in MODALITIES:
        if m not in app_specs:
            continue
        mine, theirs = _spec_dict(model_specs.get(m)), _spec_dict(app_specs[m])
        if mine is None and theirs is None:
            continue
        if mine is None:
            out.append(f"{m}: the model was trained on features without a spec (e.g. an MMSA file), "
                       f"the app extracts {theirs.get('name')!r} {theirs.get('version')!r}")
        elif theirs is None:
            out.append(f"{m}: the model needs {mine.get('name')!r} {mine.get('version')!r}, the app has no spec")
        else:
            for d in FeatureSpec.from_dict(mine).diff(theirs):
                d = d.replace("only here", "only the model's").replace("only there", "only the app's")
                out.append(f"{m}: {d}" + ("" if d.startswith("columns") else " (model != app)"))
    return out


@dataclass
class Artifact:
    """A loaded, verified artifact. `predict` takes batches, `predict_one` one unbatched sample."""

    dir: Path
    card: dict[str, Any]
    session: Any  # onnxruntime.InferenceSession
    audio_dim: int
    vision_dim: int

    @property
    def tokenizer_path(self) -> Path:
        return self.dir / self.card["text_encoder"]["tokenizer"]["file"]

    @property
    def max_length(self) -> int:
        return int(self.card["text_encoder"]["max_length"])

    @property
    def feature_specs(self) -> dict[str, dict[str, Any] | None]:
        return self.card["feature_specs"]

    @property
    def calibrated(self) -> dict[str, bool]:
        """Head -> whether it was trained on real data of its modality."""
        return {h: bool(v.get("calibrated")) for h, v in self.card["heads"].items()}

    def predict(self, text_ids: np.ndarray, text_mask: np.ndarray, audio: np.ndarray, audio_lengths: np.ndarray,
                vision: np.ndarray, vision_lengths: np.ndarray) -> dict[str, np.ndarray]:
        """Batch arrays (see the card's "inputs") -> {"M", "T", "A", "V"}: (B,) float32 each. A frames axis of
        length 0 is padded to one zero frame (its lengths must then be 0)."""
        feeds = contract.feeds(text_ids, text_mask, audio, audio_lengths, vision, vision_lengths)
        for n in contract.LENGTHS.values():
            feeds[n] = feeds[n].reshape(-1)
        self._check(feeds)
        B = feeds[TEXT_IDS].shape[0]
        if B == 0:
            return {h: np.zeros(0, np.float32) for h in HEADS}
        for m in contract.LENGTHS:
            if feeds[m].shape[1] == 0:
                feeds[m] = np.zeros((B, 1, feeds[m].shape[2]), np.float32)
        if feeds[TEXT_IDS].shape[1] == 0:  # no tokens at all: absent text
            feeds[TEXT_IDS] = feeds[TEXT_MASK] = np.zeros((B, 1), np.int64)
        return dict(zip(HEADS, self.session.run(list(HEADS), feeds)))

    def predict_one(self, text_ids: np.ndarray | None, text_mask: np.ndarray | None, audio: np.ndarray | None,
                    vision: np.ndarray | None) -> dict[str, float]:
        """One sample: ids/mask (L,) or None (absent text), frames (T, D) or None (absent: a zero frame with
        length 0). Returns each head's score as a float."""
        if text_ids is None:
            text_ids = text_mask = np.zeros(1, np.int64)
        elif text_mask is None:
            text_mask = (np.asarray(text_ids) != 0).astype(np.int64)
        rows = {}
        for m, x, dim in (("audio", audio, self.audio_dim), ("vision", vision, self.vision_dim)):
            x = np.zeros((0, dim), np.float32) if x is None else np.asarray(x, np.float32)
            if x.ndim != 2:
                raise ValueError(f"{m} frames must be (T, D), got shape {x.shape}")
            rows[m] = (x[None], np.array([len(x)], np.int64))
        out = self.predict(np.asarray(text_ids)[None], np.asarray(text_mask)[None], *rows["audio"], *rows["vision"])
        return {h: float(v[0]) for h, v in out.items()}

    def check_specs(self, specs: Mapping[str, Any]) -> None:
        """Refuse extractors (modality -> FeatureSpec or its dict) other than those the model was trained on."""
        diffs = spec_differences(self.card["feature_specs"], specs)
        if diffs:
            raise ArtifactError(f"the model {self.card.get('name')!r} was trained on other features than this app "
                                "extracts:\n  " + "\n  ".join(diffs))

    def _check(self, f: dict[str, np.ndarray]) -> None:
        """Shape and range checks with plain messages, instead of an error from inside ONNX Runtime."""
        for k, axes in contract.AXES.items():
            nd = len(axes)
            if f[k].ndim != nd:
                raise ValueError(f"{k} must have {nd} dimensions, got shape {f[k].shape}")
        ids, mask = f[TEXT_IDS], f[TEXT_MASK]
        B = ids.shape[0]
        if any(v.shape[0] != B for v in f.values()):
            raise ValueError(f"batch sizes differ: { {k: v.shape[0] for k, v in f.items()} }")
        if ids.shape != mask.shape:
            raise ValueError(f"{TEXT_IDS} {ids.shape} and {TEXT_MASK} {mask.shape} differ")
        te = self.card["text_encoder"]
        if te.get("max_positions") and ids.shape[1] > te["max_positions"]:
            raise ValueError(f"{ids.shape[1]} tokens exceed the encoder's {te['max_positions']} positions")
        if ids.size and (ids.min() < 0 or (te.get("vocab_size") and ids.max() >= te["vocab_size"])):
            raise ValueError(f"token ids must lie in [0, {te.get('vocab_size')}), got [{ids.min()}, {ids.max()}]")
        for m, dim in (("audio", self.audio_dim), ("vision", self.vision_dim)):
            x, n = f[m], f[contract.LENGTHS[m]]
            if x.shape[2] != dim:
                raise ValueError(f"{m} frames have {x.shape[2]} features, the model takes {dim}")
            if n.size and (n.min() < 0 or n.max() > x.shape[1]):
                raise ValueError(f"{contract.LENGTHS[m]} must lie in [0, {x.shape[1]}] (the frames given), "
                                 f"got {n.tolist()}")
            if not np.isfinite(x).all():
                raise ValueError(f"{m} frames contain NaN or inf")


def _read_card(d: Path) -> dict[str, Any]:
    path = d / "card.json"
    if not d.is_dir():
        raise ArtifactError(f"model folder {d} does not exist")
    if not path.is_file():
        raise ArtifactError(f"{d} has no card.json: not a model artifact (make one with `python -m export`)")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{path} is damaged (not valid JSON: {e})") from None
    if not isinstance(card, dict):
        raise ArtifactError(f"{path} is damaged (not a JSON object)")
    version = card.get("format_version")
    if version not in FORMAT_VERSIONS:
        raise ArtifactError(f"{path} has format version {version!r}; this app reads {list(FORMAT_VERSIONS)}: "
                            "export the model again with this version of the code")
    missing = [k for k in ("onnx", "text_encoder", "feature_specs", "heads", "feature_dims") if k not in card]
    if missing:
        raise ArtifactError(f"{path} lacks {missing}")
    return card


def _check_file(d: Path, name: str, sha: str | None, what: str) -> Path:
    path = d / name
    if not path.is_file():
        raise ArtifactError(f"{what} {path} is missing")
    if sha is None:
        raise ArtifactError(f"the card gives no SHA-256 for {what} {name}")
    got = file_sha256(path)
    if got != sha:
        raise ArtifactError(f"{what} {path} is damaged or was changed: SHA-256 {got[:16]}... differs from the "
                            f"card's {sha[:16]}...")
    return path


def load_artifact(dir: str | Path, specs: Mapping[str, Any] | None = None, threads: int = 2) -> Artifact:
    """Read and verify the artifact in `dir`. `specs`: modality -> FeatureSpec (or its dict) of the extractors
    in use; each one given must equal the model's, else ArtifactError lists the differences. None: no check."""
    d = Path(dir)
    card = _read_card(d)
    model_path = _check_file(d, card["onnx"].get("file", "model.onnx"), card["onnx"].get("sha256"), "model file")
    tok = card["text_encoder"].get("tokenizer") or {}
    _check_file(d, tok.get("file", "tokenizer.json"), tok.get("sha256"), "tokenizer file")

    try:
        session = contract.open_session(model_path, threads, quiet=True)
    except Exception as e:  # onnxruntime raises its own exception types (Fail, InvalidProtobuf, ...)
        raise ArtifactError(f"ONNX Runtime cannot load {model_path}: {str(e).splitlines()[0][:300]}") from None

    inner = session.get_modelmeta().custom_metadata_map.get("card")
    outer = {k: v for k, v in card.items() if k != "onnx"}
    if inner is None or json.loads(inner) != json.loads(json.dumps(outer)):
        raise ArtifactError(f"{d / 'card.json'} differs from the card inside {model_path.name}: the card was edited")
    names = [i.name for i in session.get_inputs()]
    outs = [o.name for o in session.get_outputs()]
    if names != list(INPUTS) or outs != list(HEADS):
        raise ArtifactError(f"{model_path} takes {names} and gives {outs}; expected {list(INPUTS)} -> {list(HEADS)}")
    shapes = {i.name: i.shape for i in session.get_inputs()}
    dims = {m: shapes[m][2] for m in ("audio", "vision")}
    if dims != {m: card["feature_dims"][m] for m in dims}:
        raise ArtifactError(f"{model_path} takes feature dims {dims}, the card says {card['feature_dims']}")
    art = Artifact(dir=d, card=card, session=session, audio_dim=int(dims["audio"]), vision_dim=int(dims["vision"]))
    if specs is not None:
        art.check_specs(specs)
    return art
