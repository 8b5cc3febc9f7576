"""The shipped default model (assets/model): it loads with today's extractors, its card is honest, its text head
reads sentiment, and its held-out figures recomputed through ONNX Runtime from ../shared/data equal the card's."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "assets" / "model"
DATA = REPO.parent / "shared" / "data"

pytestmark = pytest.mark.skipif(not (MODEL / "model.onnx").is_file(), reason="no default model in assets/model")


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((MODEL / "card.json").read_text())


def test_loads_with_the_extractors_the_app_runs(card):
    from demo.features import load_features, load_model

    with load_features(MODEL) as features:  # the extractors the app picks for this model
        art = load_model(MODEL, features)
    assert art.calibrated == {"M": True, "T": True, "A": True, "V": False}


def test_card_states_data_licence_and_what_is_uncalibrated(card):
    assert "non-commercial" in card["license"]
    names = " ".join(d["name"] for d in card["training_data"])
    assert "MOSI" in names and "RAVDESS" in names and "VADER" in names
    assert card["text_encoder"]["intermediate_fine_tuning"]["sentences"] == 23_703
    assert not card["heads"]["V"]["calibrated"] and "face" in card["heads"]["V"]["note"]
    held_out = card["metrics"]["onnx_fp32"]
    assert set(held_out) == {"M_mosi", "T_mosi", "A_ravdess", "M_ravdess"}
    assert card["parity"]["fp32"]["passed"]


def analyze(*args: str) -> list[dict]:
    run = subprocess.run([sys.executable, "-m", "demo.analyze", *args, "--model", str(MODEL), "--json"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("text,sign", [("What a wonderful film, I loved every minute of it.", 1),
                                       ("This was the most boring, awful movie I have ever seen.", -1),
                                       ("The acting was brilliant and the music beautiful.", 1),
                                       ("I hated it, a complete waste of time.", -1)])
def test_text_head_has_the_right_sign(text, sign):
    (result,) = analyze("--text", text)
    assert result["scores"]["A"] is None and result["scores"]["V"] is None
    assert np.sign(result["scores"]["T"]) == sign
    assert np.sign(result["scores"]["M"]) == sign


@pytest.mark.slow
def test_example_clips_report_calibration_correctly():
    results = analyze(*map(str, sorted((REPO / "assets" / "examples").glob("*.mp4"))))
    assert len(results) == 3
    for r in results:
        assert r["uncalibrated"] == ["V"] and r["missing"] == []
        assert all(r["scores"][h] is not None for h in "MTA")


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not on this machine")
def test_held_out_metrics_recomputed_through_onnx_runtime_equal_the_card(card):
    """Rebuilds the test split (MOSI test transcripts, RAVDESS actors 21-24) with the project's extractors and
    scores it with the shipped ONNX file: the figures must be the card's."""
    from export.evaluate import predict_split
    from scripts.build_default_model import ACTOR_SPLIT, held_out_metrics, mosi_samples, ravdess_samples
    from selfmm.data import build_split
    from selfmm.features.pipeline import audio_extractor
    from selfmm.features.text import TextTokenizer

    voice = audio_extractor(card["feature_specs"]["audio"]["name"])
    samples = mosi_samples(DATA)["test"] + ravdess_samples(DATA, ACTOR_SPLIT["test"], voice)["test"]
    ids, mask = TextTokenizer(MODEL / "tokenizer.json").encode_batch([s.text for s in samples])
    split = build_split([s.id for s in samples], [s.text for s in samples], ids, mask, [s.audio for s in samples],
                        [None] * len(samples), [s.label for s in samples],
                        (card["corpus"]["audio_padded_length"], card["feature_dims"]["audio"]),
                        (1, card["feature_dims"]["vision"]))
    got = held_out_metrics(predict_split(MODEL / "model.onnx", split), split.ids, split.labels)
    for group, figures in card["metrics"]["onnx_fp32"].items():
        for k, v in figures.items():
            assert got[group][k] == pytest.approx(v, abs=1e-3), (group, k)
