"""Decoding media: files, raw samples and bytes into 16 kHz mono audio and frames on a fixed clock."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from harness import media

pytestmark = pytest.mark.skipif(not media.have_espeak(), reason="espeak-ng is not installed")


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
