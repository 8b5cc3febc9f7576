"""The feature extractors on real media made by the tests: espeak-ng speech and the astronaut photo as video."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from selfmm.features import FeatureSpec
from harness import media

pytestmark = pytest.mark.skipif(not media.have_espeak(), reason="espeak-ng is not installed")

WORDS = ("love", "movie", "wonderful")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pipeline():
    from selfmm.features import FeaturePipeline

    with FeaturePipeline() as p:
        p.warm_up()
        yield p


@pytest.fixture(scope="session")
def full_clip():
    return media.clip("face+speech", 4.0, ".mp4")


@pytest.fixture(scope="session")
def full(pipeline, full_clip):
    return pipeline.extract(full_clip)


# -- specs ---------------------------------------------------------------------------------------------------

def test_spec_round_trip_hash_and_diff():
    a = FeatureSpec("x", "1", "audio", rate=16000, hop=800, fps=20.0, dim=2, columns=("a", "b"),
                    params={"n": 1, "t": (1, 2)})
    b = FeatureSpec.from_dict(json.loads(json.dumps(a.to_dict())))
    assert b == a and b.hash() == a.hash() and len(a.hash()) == 16
    assert a.diff(b) == [] and a.diff(a.to_dict()) == []
    c = FeatureSpec("x", "1", "audio", rate=16000, hop=800, fps=25.0, dim=2, columns=("a", "c"), params={"n": 2})
    d = a.diff(c)
    assert c.hash() != a.hash()
    assert any(s.startswith("fps:") for s in d)
    assert any("columns" in s and "'b'" in s and "'c'" in s for s in d)
    assert any(s.startswith("params.n") for s in d) and any(s.startswith("params.t") for s in d)
    with pytest.raises(ValueError):
        FeatureSpec("x", "1", "audio", dim=3, columns=("a",))


def test_extractor_specs_name_every_column(pipeline):
    specs = pipeline.specs
    assert set(specs) == {"text", "audio", "vision"}
    for m in ("audio", "vision"):
        s = specs[m]
        assert s.dim == len(s.columns) == len(set(s.columns)) > 10
        assert s.fps > 0 and s.modality == m
        assert FeatureSpec.from_dict(s.to_dict()).hash() == s.hash()
    assert specs["audio"].rate == 16000 and specs["audio"].fps == 20
    assert specs["vision"].fps == 10
    assert specs["text"].dim == 50


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


# -- media -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ext", [".mp4", ".webm", ".mkv", ".mov"])
def test_load_video_files(ext):
    from selfmm.features import load_media

    m = load_media(media.clip("face+speech", 2.0, ext))
    assert m.has_audio and m.has_video and m.sample_rate == 16000 and m.fps == 10
    assert m.waveform.dtype == np.float32 and m.waveform.ndim == 1
    assert abs(len(m.waveform) / 16000 - 2.0) < 0.1
    assert m.frames.dtype == np.uint8 and m.frames.shape[1:] == (480, 640, 3)
    assert len(m.frames) == 20
    assert abs(m.duration - 2.0) < 0.1


@pytest.mark.parametrize("ext", [".wav", ".flac", ".mp3", ".ogg"])
def test_load_audio_files(ext):
    from selfmm.features import load_media

    m = load_media(media.clip("speech", 2.0, ext))
    assert m.has_audio and not m.has_video and m.frames is None
    assert abs(len(m.waveform) / 16000 - 2.0) < 0.1
    assert 0.05 < np.abs(m.waveform).max() <= 1.0


def test_load_raw_samples_bytes_and_other_fps():
    from selfmm.features import load_media

    wave, rate = media.speech_samples()
    pcm = (wave * 32767).astype(np.int16)
    stereo44 = np.repeat(np.interp(np.arange(0, len(pcm), rate / 44100), np.arange(len(pcm)), pcm)
                         .astype(np.int16)[:, None], 2, axis=1)
    m = load_media((44100, stereo44))  # Gradio's microphone format
    assert m.sample_rate == 16000 and m.waveform.ndim == 1 and not m.has_video
    assert abs(m.duration - len(wave) / rate) < 0.05
    data = media.clip("face+speech", 2.0, ".mp4").read_bytes()
    m = load_media(data, fps=15)
    assert m.has_audio and m.has_video and len(m.frames) == 30


def test_frames_follow_the_clock_not_the_camera(tmp_path):
    """A 5 fps clip sampled at 10 fps repeats frames; a 30 fps clip is subsampled; both span the clip."""
    from selfmm.features import load_media

    frames = np.zeros((10, 64, 64, 3), np.uint8)
    frames[:, :, :, 0] = (np.arange(10) * 20)[:, None, None]  # frame number in the red channel
    path = media.write_clip(tmp_path / "slow.mkv", frames, fps=5.0)
    m = load_media(path, fps=10)
    assert len(m.frames) == 20
    red = m.frames[:, 0, 0, 0].astype(int)
    assert np.all(np.abs(red[0::2] - red[1::2]) <= 3)  # each source frame shown twice
    assert np.all(np.diff(red[0::2]) > 10)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary to tag a rotation")
def test_rotated_phone_video_is_turned_upright(tmp_path, pipeline):
    """Phones store portrait video turned by 90 degrees with a display matrix: frames come back upright."""
    from selfmm.features import load_media

    upright = media.moving_frames(2.0, 10, "face")
    stored = media.write_clip(tmp_path / "stored.mp4", np.ascontiguousarray(np.rot90(upright, -1, axes=(1, 2))), 10)
    path = tmp_path / "portrait.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(stored), "-c", "copy",
                    "-metadata:s:v:0", "rotate=90", str(path)], check=True)
    m = load_media(path)
    assert m.frames.shape == upright.shape
    assert np.abs(m.frames.astype(int) - upright).mean() < 8  # the same picture, up to compression
    stats = pipeline.face.extract(m.frames, m.fps).stats
    assert stats["frames_with_face"] >= 0.9 * stats["frames"]


@pytest.mark.parametrize("content,needle", [(b"", "empty"), (b"\x00\x17garbage" * 200, "not a readable"),
                                            (b"hello, this is text\n" * 10, "not a readable")])
def test_unreadable_files_raise_a_clear_error(tmp_path, content, needle, pipeline):
    from selfmm.features import MediaError, load_media

    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError, match=needle):
        load_media(path)
    with pytest.raises(MediaError, match="bad.mp4"):
        pipeline.extract(path)
    with pytest.raises(MediaError, match="no such file"):
        load_media(tmp_path / "nothing.mp4")


def test_truncated_file_raises_or_keeps_what_decodes(tmp_path):
    from selfmm.features import MediaError, load_media

    data = media.clip("face+speech", 2.0, ".webm").read_bytes()
    path = tmp_path / "cut.webm"
    path.write_bytes(data[: len(data) // 2])
    try:
        m = load_media(path)
    except MediaError as e:
        assert "cut.webm" in str(e)
    else:
        assert m.has_audio or m.has_video


# -- ASR and text --------------------------------------------------------------------------------------------

def test_whisper_transcribes_the_spoken_words(full):
    assert full.transcript_source == "whisper"
    text = full.transcript.lower()
    assert all(w in text for w in WORDS), text
    assert full.language == "en"
    assert full.segments and all(0 <= s.start < s.end <= 4.5 for s in full.segments)


def test_whisper_by_unknown_name_says_internet():
    from selfmm.features import ASRError, Transcriber

    with pytest.raises(ASRError, match="internet"):
        Transcriber("no-such-whisper-model-xyz")


def test_tokenizer(tmp_path):
    from selfmm.features import TextTokenizer
    from selfmm.features.text import default_encoder_dir

    tok = TextTokenizer()
    ids, mask = tok.encode("I really love this movie")
    assert ids.dtype == mask.dtype == np.int64 and ids.shape == mask.shape == (50,)
    n = int(mask.sum())
    assert ids[0] == tok.cls_id and ids[n - 1] == tok.sep_id and n == 7 and not ids[n:].any()
    ids, mask = tok.encode("word " * 200)
    assert mask.all() and ids[-1] == tok.sep_id
    ids, mask = tok.encode("   ")
    assert not ids.any() and not mask.any()
    # The spec names the vocabulary by content: a copy (as shipped in a model artifact) is the same spec.
    copy = tmp_path / "tokenizer.json"
    shutil.copy(default_encoder_dir() / "tokenizer.json", copy)
    assert TextTokenizer(copy).spec.hash() == tok.spec.hash()
    assert TextTokenizer(copy, max_length=40).spec.hash() != tok.spec.hash()


# -- audio ---------------------------------------------------------------------------------------------------

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


# -- vision --------------------------------------------------------------------------------------------------

def test_face_found_in_nearly_every_frame_and_features_are_stable(full, pipeline):
    v = full.vision
    stats = full.stats["vision"]
    assert stats["frames"] == 40 and stats["frames_with_face"] >= 38
    assert v.shape == (stats["frames_with_face"], pipeline.face.spec.dim) and v.dtype == np.float32
    assert np.isfinite(v).all()
    cols = pipeline.face.spec.columns
    # The photo only moves and zooms: the expression stays put.
    expression = [cols.index(c) for c in ("mouth_open", "mouth_width", "eye_open", "brow_raise", "jaw_open")]
    assert (v[:, expression].std(0) < 0.05 * np.abs(v[:, expression].mean(0)) + 0.01).all()
    assert v[:, cols.index("mouth_corner_lift")].mean() > 0  # she smiles
    assert len(stats["times"]) == len(v)


def test_face_features_ignore_position_size_and_mirroring(pipeline):
    import cv2
    from skimage import data

    photo = data.astronaut()[:300, 60:460]  # 300 x 400 with the face
    canvas = np.full((480, 640, 3), 90, np.uint8)
    views = []
    for scale, x, y in ((1.0, 0, 0), (0.8, 300, 200), (1.4, 80, 20), (1.0, 120, 100)):
        img = cv2.resize(photo, None, fx=scale, fy=scale)
        c = canvas.copy()
        h, w = min(480 - y, img.shape[0]), min(640 - x, img.shape[1])
        c[y:y + h, x:x + w] = img[:h, :w]
        views.append(c)
    views.append(views[0][:, ::-1])  # mirrored
    feats = [pipeline.face.extract(np.stack([f] * 3), 10).frames.mean(0) for f in views]
    ref = feats[0]
    for f in feats[1:]:
        assert np.abs(f - ref).max() < 0.06, np.abs(f - ref).round(3)


def test_several_faces_follow_the_largest(pipeline):
    import cv2
    import mediapipe as mp
    from skimage import data

    face = data.astronaut()[:260, 100:360]
    big = cv2.resize(face, (300, 300))
    small = cv2.resize(face, (260, 260))
    m = cv2.getRotationMatrix2D((130, 130), 25, 1.0)  # the smaller face is tilted by 25 degrees
    small = cv2.warpAffine(small, m, (260, 260), borderValue=(90, 90, 90))
    canvas = np.full((480, 640, 3), 90, np.uint8)
    canvas[60:360, 10:310] = big
    canvas[120:380, 370:630] = small
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=2) as mesh:
        assert len(mesh.process(canvas).multi_face_landmarks) == 2  # both faces are seen
    cols = pipeline.face.spec.columns
    roll = pipeline.face.extract(np.stack([canvas] * 3), 10).frames[:, cols.index("head_roll_abs")]
    only_small = canvas.copy()
    only_small[60:360, 10:310] = 90
    roll_small = pipeline.face.extract(np.stack([only_small] * 3), 10).frames[:, cols.index("head_roll_abs")]
    assert roll_small.mean() > 0.3  # the smaller face alone is seen tilted
    assert roll.mean() < 0.15  # with both, the larger upright face is followed


def test_no_face_is_missing_with_counts(pipeline):
    frames = media.moving_frames(1.0, 10, "noface")
    r = pipeline.face.extract(frames, 10)
    assert r.frames is None and "no face" in r.missing
    assert r.stats["frames"] == 10 and r.stats["frames_skipped"] == 10
    assert pipeline.face.extract(None).missing == "no video track"


# -- the whole clip --------------------------------------------------------------------------------------------

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
