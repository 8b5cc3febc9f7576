"""The whole clip through FeaturePipeline: every modality, what is missing, parallel equals sequential."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import media

pytestmark = pytest.mark.skipif(not media.have_espeak(), reason="espeak-ng is not installed")
ROOT = Path(__file__).resolve().parents[1]


def test_import_is_light_and_runtime_needs_no_torch(full_clip):
    code = (
        "import sys\n"
        "import selfmm.features as F\n"
        "heavy = [m for m in ('torch', 'mediapipe', 'librosa', 'faster_whisper', 'av', 'gradio') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        f"c = F.extract_clip({str(full_clip)!r})\n"
        "assert c.audio is not None and c.vision is not None and c.transcript, c.missing\n"
        "bad = [m for m in ('torch', 'transformers', 'gradio') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_extract_clip_full(full):
    assert full.missing == {}
    assert full.text_mask.sum() > 5 and full.text_ids.shape == (50,)
    assert {"decode_audio", "decode_video", "asr", "audio", "vision", "text", "total"} <= set(full.timings)
    assert abs(full.duration - 4.0) < 0.1


@pytest.mark.parametrize("kind,ext,expected", [
    ("face", ".mp4", {"audio": "no audio track", "text": "no audio track to transcribe"}),
    ("face+silence", ".mp4", {"audio": "silence", "text": "no recognisable speech"}),
    ("noface+speech", ".mp4", {"vision": "no face"}),
    ("speech", ".flac", {"vision": "no video track"}),
])


def test_missing_modalities_are_flagged(pipeline, kind, ext, expected):
    c = pipeline.extract(media.clip(kind, 2.5, ext))
    assert set(c.missing) == set(expected), c.missing
    for m, why in expected.items():
        assert why in c.missing[m]
        assert getattr(c, m if m != "text" else "text_mask") is None or m == "text"
    if "text" in expected:
        assert not c.text_mask.any() and not c.text_ids.any() and c.transcript == ""
    for m in {"audio", "vision"} - set(expected):
        assert getattr(c, m) is not None


def test_given_transcript_and_raw_samples(pipeline):
    wave, rate = media.speech_samples()
    c = pipeline.extract((rate, wave), transcript="what a dull film")
    assert c.transcript == "what a dull film" and c.transcript_source == "given" and "asr" not in c.timings
    assert c.audio is not None and c.missing == {"vision": "no video track"}


def test_sequential_equals_parallel(full_clip, full):
    from selfmm.features import FeaturePipeline

    with FeaturePipeline(parallel=False) as p:
        c = p.extract(full_clip)
    assert c.transcript == full.transcript
    np.testing.assert_allclose(c.audio, full.audio, atol=1e-5)
    np.testing.assert_allclose(c.vision, full.vision, atol=1e-4)


def test_sound_without_words_is_audio_without_text(pipeline):
    noise = (np.random.default_rng(0).standard_normal(48000) * 0.1).astype(np.float32)
    c = pipeline.extract((16000, noise))
    assert c.missing == {"text": "no recognisable speech", "vision": "no video track"}
    assert c.audio is not None and c.transcript_source == "whisper"


def test_vision_times_with_and_without_skipped_frames():
    from types import SimpleNamespace

    from selfmm.features.pipeline import FeaturePipeline

    features = SimpleNamespace(face=SimpleNamespace(spec=SimpleNamespace(fps=10.0)))  # a pipeline's face extractor
    vision_times = FeaturePipeline.vision_times
    full = SimpleNamespace(vision=np.zeros((4, 2)), stats={"vision": {"frames": 4, "frames_with_face": 4}})
    assert vision_times(features, full).tolist() == [0.0, 0.1, 0.2, 0.3]
    half = SimpleNamespace(vision=np.zeros((2, 2)), stats={"vision": {"frames": 4, "frames_with_face": 2}})
    assert vision_times(features, half).tolist() == [0.0, 0.2]  # spread evenly when the kept frames are unknown
    exact = SimpleNamespace(vision=np.zeros((2, 2)), stats={"vision": {"frames": 4, "times": [0.1, 0.3]}})
    assert vision_times(features, exact).tolist() == [0.1, 0.3]  # the times the extractors report
    assert vision_times(features, SimpleNamespace(vision=None, stats={})) is None


def test_faces_read_ahead_give_the_same_clip(pipeline, full_clip, full):
    c = pipeline.extract(full_clip, faces=pipeline.read_faces(full_clip))
    np.testing.assert_allclose(c.vision, full.vision, atol=1e-5)
    assert c.transcript == full.transcript and c.missing == {} and c.duration == pytest.approx(full.duration)
    assert {"decode_video", "vision", "vision_wait"} <= set(c.timings)


def test_a_read_ahead_of_an_unreadable_file_fails_as_the_clip_does(pipeline, tmp_path):
    from selfmm.features.media import MediaError

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(MediaError):
        pipeline.extract(bad, faces=pipeline.read_faces(bad))
