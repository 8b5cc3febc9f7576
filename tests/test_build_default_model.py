"""The default model builder's pure parts: RAVDESS labels and the selection score (no data needed)."""
from __future__ import annotations

import numpy as np
import pytest

from scripts.build_default_model import AUDIO_GATE, ravdess_label, text_with_audio_gate


def test_ravdess_label_reads_valence_and_scales_normal_intensity():
    assert ravdess_label("03-01-03-02-01-01-07.flac") == (2.5, 3, 1, 7)  # happy, strong, actor 7
    assert ravdess_label("03-01-05-01-02-02-21.flac") == (round(-2.5 * 2 / 3, 3), 5, 2, 21)  # angry, normal


def split(audio_sign_acc: float):
    """Two MOSI rows with M off by 0.5, and 20 non-neutral RAVDESS rows whose A has the given sign accuracy."""
    ids = np.array(["mosi$_$a", "mosi$_$b"] + [f"ravdess$_${i}" for i in range(20)])
    labels = np.array([1.0, -2.0] + [2.0, -2.0] * 10)
    a = labels.copy()
    a[2:2 + round((1 - audio_sign_acc) * 20)] *= -1  # wrong sign on the first clips
    m = labels + 0.5
    return {"M": m, "T": m, "A": a, "V": np.zeros_like(m)}, labels, ids


@pytest.mark.parametrize("acc", [AUDIO_GATE, 0.9])
def test_selection_at_or_above_the_audio_gate_is_the_mosi_mae_of_m(acc):
    assert text_with_audio_gate(*split(acc)) == pytest.approx(0.5)


def test_selection_below_the_audio_gate_ranks_after_every_epoch_that_passes():
    score = text_with_audio_gate(*split(AUDIO_GATE - 0.05))
    assert score == pytest.approx(10.5)  # 10 + the pooled MAE of M (0.5 on every row)
    outputs, labels, ids = split(AUDIO_GATE)
    outputs["M"] = labels + 3.0  # a far worse text side still wins once the audio head passes
    assert text_with_audio_gate(outputs, labels, ids) < score
