"""The hand-made voice features (24 columns) of real espeak-ng speech, and missing audio."""
from __future__ import annotations

import numpy as np
import pytest

from harness import media

pytestmark = pytest.mark.skipif(not media.have_espeak(), reason="espeak-ng is not installed")


def test_audio_features_of_speech(full, pipeline):
    a = full.audio
    assert a.dtype == np.float32 and a.shape[1] == pipeline.audio.spec.dim
    assert abs(len(a) - 4.0 * 20) <= 2
    assert np.isfinite(a).all()
    cols = pipeline.audio.spec.columns
    voiced = a[:, cols.index("voiced")] > 0
    assert 0.2 < voiced.mean() < 0.95
    f0 = 50 * 2 ** a[voiced, cols.index("f0_oct")]
    assert 70 < np.median(f0) < 200  # espeak's default male voice
    assert np.abs(a).max() < 20  # every column is O(1)


def test_audio_missing_is_explicit(pipeline):
    from selfmm.features import AudioExtractor

    ex: AudioExtractor = pipeline.audio
    assert ex.extract(None).missing == "no audio track"
    assert "silence" in ex.extract(np.zeros(32000, np.float32)).missing
    noise_floor = (np.random.default_rng(0).standard_normal(32000) * 1e-4).astype(np.float32)
    assert "silence" in ex.extract(noise_floor).missing
    assert "too short" in ex.extract(np.ones(1000, np.float32) * 0.1).missing
    r = ex.extract(np.zeros(32000, np.float32))
    assert r.frames is None and not r.present
