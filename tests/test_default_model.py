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
    from demo.artifact import load_artifact
    from selfmm.features.pipeline import FeaturePipeline

    art = load_artifact(MODEL)
    with FeaturePipeline.for_card(art.card, MODEL) as features:  # the extractors the app picks for this model
        art.check_specs(features.specs)
    assert art.calibrated == {"M": True, "T": True, "A": True, "V": True}


def test_card_states_data_licence_and_what_is_uncalibrated(card):
    assert "non-commercial" in card["license"]
    names = " ".join(d["name"] for d in card["training_data"])
    for corpus in ("MOSI", "RAVDESS", "VADER", "EmoDB", "FER2013", "CK+"):
        assert corpus in names
    assert all(d.get("licence") for d in card["training_data"])
    assert card["text_encoder"]["intermediate_fine_tuning"]["sentences"] == 23_703
    assert card["heads"]["V"]["calibrated"] and "FER2013" in card["heads"]["V"]["note"]
    assert card["feature_specs"]["vision"]["name"] == "face-cnn" and (MODEL / "face_cnn.onnx").is_file()
    shipped = card["metrics"]["onnx_int8" if card["export"]["quantization"] else "onnx_fp32"]
    assert set(shipped) == {f"{h}_{s}" for h, s in (("M", "mosi"), ("T", "mosi"), ("A", "ravdess"), ("M", "ravdess"),
                                                    ("A", "emodb"), ("M", "emodb"), ("V", "fer"), ("M", "fer"),
                                                    ("V", "ckplus"), ("M", "ckplus"))}
    assert card["parity"]["fp32"]["passed"]


def test_fused_score_stays_on_its_scale_and_between_its_channels(card):
    """The card's probe of held-out combinations (no training sample holds two informative channels)."""
    combos = card["metrics"]["combinations"]
    assert set(combos) == {"T+A", "T+V", "A+V", "T+A+V"}
    for figures in combos.values():
        assert figures["on_scale"] == 1.0 and figures["between_channels"] == 1.0


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
        assert r["uncalibrated"] == [] and r["missing"] == []
        assert all(r["scores"][h] is not None for h in "MTAV")
        assert min(r["scores"][h] for h in "TAV") - 1e-3 <= r["scores"]["M"] <= max(r["scores"][h] for h in "TAV") + 1e-3


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not on this machine")
def test_held_out_metrics_recomputed_through_onnx_runtime_equal_the_card(card):
    """Rebuilds the test split (MOSI test transcripts, RAVDESS actors 21-24, EmoDB speakers 15-16, FER2013
    PrivateTest, CK+) with the project's extractors and scores it with the shipped ONNX file: the figures must be
    the card's."""
    from export.evaluate import predict_split
    from selfmm.recipe.corpus import shipped_test_split
    from selfmm.recipe.scores import held_out_metrics

    split, _ = shipped_test_split(DATA, MODEL, card)
    got = held_out_metrics(predict_split(MODEL / "model.onnx", split), split.ids, split.labels)
    shipped = card["metrics"]["onnx_int8" if card["export"]["quantization"] else "onnx_fp32"]
    wrong = [f"{group} {k}: {got[group][k]} here, {v} in the card" for group, figures in shipped.items()
             for k, v in figures.items() if got[group][k] != pytest.approx(v, abs=1e-3)]
    assert not wrong, "\n".join(wrong)
