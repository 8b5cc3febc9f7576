"""The app-side loader: a good artifact loads and predicts like ONNX Runtime directly; a damaged, edited,
incomplete or foreign artifact, or one made for other features, is refused with a message naming the
problem; the loader never imports torch."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from demo.artifact import ArtifactError, load_artifact
from selfmm.features.spec import FeatureSpec
from tests.support.tiny_model import AUDIO_DIM, HEADS, REPO, VISION_DIM, synth_specs


@pytest.fixture
def artifact_copy(tiny_export, tmp_path) -> Path:
    """A copy of the tiny artifact that a test may damage."""
    return Path(shutil.copytree(tiny_export["out"], tmp_path / "model"))


def inputs(B: int = 3, L: int = 6, Ta: int = 9, Tv: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = (np.arange(L)[None] < rng.integers(0, L + 1, (B, 1))).astype(np.int64)
    return {"text_ids": rng.integers(1, 1300, (B, L)) * mask, "text_mask": mask,
            "audio": rng.normal(size=(B, Ta, AUDIO_DIM)).astype(np.float32),
            "audio_lengths": rng.integers(0, Ta + 1, B),
            "vision": rng.normal(size=(B, Tv, VISION_DIM)).astype(np.float32),
            "vision_lengths": rng.integers(0, Tv + 1, B)}


def test_load_and_predict_with_matching_specs(tiny_export):
    specs = {m: FeatureSpec.from_dict(s) for m, s in synth_specs().items()}  # FeatureSpec objects or dicts
    art = load_artifact(tiny_export["out"], specs)
    assert art.card == tiny_export["card"] and art.max_length == 12 and art.tokenizer_path.is_file()
    assert art.calibrated == {"M": True, "T": True, "A": True, "V": True}
    x = inputs()
    out = art.predict(**x)
    direct = ort.InferenceSession(str(tiny_export["out"] / "model.onnx")).run(list(HEADS), x)
    for h, y in zip(HEADS, direct):
        assert out[h].shape == (3,) and out[h].dtype == np.float32
        np.testing.assert_array_equal(out[h], y)
    assert load_artifact(tiny_export["out"], synth_specs()).card["name"] == "tiny-synth"


def test_predict_one_absent_modalities_and_length_one(tiny_export):
    art = load_artifact(tiny_export["out"])
    rng = np.random.default_rng(1)
    ids, mask = np.array([101, 1005, 1060, 102, 0, 0]), np.array([1, 1, 1, 1, 0, 0])
    audio = rng.normal(size=(7, AUDIO_DIM)).astype(np.float32)
    one = art.predict_one(ids, mask, audio, None)
    batch = art.predict(ids[None], mask[None], audio[None], np.array([7]),
                        np.zeros((1, 1, VISION_DIM), np.float32), np.array([0]))
    assert set(one) == set(HEADS) and all(isinstance(v, float) for v in one.values())
    assert one == pytest.approx({h: float(batch[h][0]) for h in HEADS}, abs=1e-6)
    # absent vision is absent whatever its frames hold
    noise = art.predict(ids[None], mask[None], audio[None], np.array([7]),
                        rng.normal(size=(1, 5, VISION_DIM)).astype(np.float32), np.array([0]))
    assert noise["V"][0] == pytest.approx(batch["V"][0], abs=1e-6)
    # length 1 everywhere, an empty frames array and no text at all
    assert set(art.predict_one(np.array([101]), np.array([1]), audio[:1], rng.normal(size=(1, VISION_DIM)))) == set(HEADS)
    nothing = art.predict_one(None, None, np.zeros((0, AUDIO_DIM)), None)
    assert all(np.isfinite(v) for v in nothing.values())


def test_bad_inputs_get_plain_errors(tiny_export):
    art = load_artifact(tiny_export["out"])
    x = inputs()
    for change, message in [({"audio": x["audio"][:, :, :3]}, "features, the model takes 5"),
                            ({"vision_lengths": np.array([1, 2, 99])}, "vision_lengths must lie"),
                            ({"text_mask": x["text_mask"][:2]}, "batch sizes differ"),
                            ({"text_ids": x["text_ids"] + 5000}, "token ids must lie"),
                            ({"audio": x["audio"][0]}, "audio must have 3 dimensions")]:
        with pytest.raises(ValueError, match=message):
            art.predict(**{**x, **change})
    with pytest.raises(ValueError, match=r"\(T, D\)"):
        art.predict_one(np.array([101]), None, np.zeros(5), None)
    assert art.predict(**inputs(B=0))["M"].shape == (0,)


def test_mismatched_spec_is_refused_naming_what_differs(tiny_export):
    app = synth_specs(audio_version="2")
    app["vision"] = {**app["vision"], "fps": 15}
    with pytest.raises(ArtifactError) as e:
        load_artifact(tiny_export["out"], app)
    msg = str(e.value)
    assert "audio: version: '1' != '2'" in msg and "vision: fps: 10 != 15" in msg and "text" not in msg.split(":", 1)[1]
    cols = synth_specs()
    cols["audio"] = FeatureSpec("synth-audio", "1", "audio", rate=16000, hop=800, fps=20, dim=6,
                                columns=tuple(f"a{i}" for i in range(6))).to_dict()
    with pytest.raises(ArtifactError, match=r"(?s)columns: only the app's \['a5'\].*dim: 5 != 6"):
        load_artifact(tiny_export["out"], cols)
    with pytest.raises(ArtifactError, match="app has no spec"):
        load_artifact(tiny_export["out"], {"text": None})
    # only the modalities given are checked
    assert load_artifact(tiny_export["out"], {"audio": synth_specs()["audio"]})


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "model.onnx").write_bytes((d / "model.onnx").read_bytes()[:-1000]), "damaged or was changed"),
    (lambda d: (d / "model.onnx").write_bytes(bytes([b ^ 1 if i == 5000 else b for i, b in
                                                     enumerate((d / "model.onnx").read_bytes())])), "SHA-256"),
    (lambda d: (d / "model.onnx").unlink(), "model file .* is missing"),
    (lambda d: (d / "tokenizer.json").write_text("{}"), "tokenizer file .* damaged"),
    (lambda d: (d / "card.json").unlink(), "no card.json"),
    (lambda d: (d / "card.json").write_text('{"format_version": 1,'), "not valid JSON"),
    (lambda d: (d / "card.json").write_text("[1, 2]"), "not a JSON object"),
    (lambda d: shutil.rmtree(d), "does not exist"),
])
def test_damaged_or_missing_files_are_refused(artifact_copy, damage, message):
    damage(artifact_copy)
    with pytest.raises(ArtifactError, match=message):
        load_artifact(artifact_copy)


def _edit_card(d: Path, **changes) -> None:
    card = json.loads((d / "card.json").read_text())
    card.update(changes)
    (d / "card.json").write_text(json.dumps(card))


def test_wrong_format_version_and_edited_card_are_refused(artifact_copy):
    _edit_card(artifact_copy, format_version=99)
    with pytest.raises(ArtifactError, match="format version 99"):
        load_artifact(artifact_copy)
    _edit_card(artifact_copy, format_version=1, heads={h: {"calibrated": True, "note": ""} for h in HEADS})
    with pytest.raises(ArtifactError, match="card was edited"):
        load_artifact(artifact_copy)


def test_damaged_model_with_a_matching_checksum_gives_a_clear_error(artifact_copy):
    """Even if someone rewrites the checksum too, ONNX Runtime's failure is reported plainly."""
    from selfmm.features.spec import file_sha256 as sha256

    path = artifact_copy / "model.onnx"
    path.write_bytes(b"\x08\x07garbage" * 100)
    card = json.loads((artifact_copy / "card.json").read_text())
    card["onnx"]["sha256"] = sha256(path)
    (artifact_copy / "card.json").write_text(json.dumps(card))
    with pytest.raises(ArtifactError, match="ONNX Runtime cannot load"):
        load_artifact(artifact_copy)


def test_loader_runs_without_torch(tiny_export):
    code = ("import sys, numpy as np; from demo.artifact import load_artifact; "
            f"a = load_artifact({str(tiny_export['out'])!r}, {{}}); "
            f"print(a.predict_one(np.array([101, 102]), None, np.ones((3, {AUDIO_DIM})), None)['M']); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    float(proc.stdout.strip())


def test_loader_reads_the_format_the_exporter_writes():
    from demo.artifact import FORMAT_VERSIONS
    from export.card import FORMAT_VERSION

    assert FORMAT_VERSION in FORMAT_VERSIONS
