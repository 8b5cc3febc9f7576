"""Decode a clip into what the extractors need: a mono waveform at a fixed rate and RGB frames at a fixed fps.

PyAV (ffmpeg's libraries, no ffmpeg binary) reads video files (mp4, webm, mov, mkv, avi) and audio files (wav,
mp3, ogg, webm, flac, m4a), from a path or from bytes. Raw samples (a numpy array, or Gradio's
`(sample_rate, int16 array)` tuple) are accepted too. Frames are sampled on a regular time grid so that the
vision features have a known rate whatever the camera delivered (variable-rate webm from browsers included).
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Union

import numpy as np

SAMPLE_RATE = 16000  # what Whisper and the audio features expect
FPS = 10.0  # vision frames per second (see vision.py)
MAX_SIDE = 640  # frames are scaled down to at most this many pixels on the long side (landmarks are relative)

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")
AUDIO_EXTENSIONS = (".wav", ".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac")


class MediaError(ValueError):
    """A file that cannot be read as audio or video (empty, corrupt, no streams)."""


@dataclass
class Media:
    waveform: np.ndarray | None  # (n,) float32 in [-1, 1], mono, at sample_rate; None without an audio track
    sample_rate: int
    frames: np.ndarray | None  # (T, H, W, 3) uint8 RGB at fps; None without a video track
    fps: float
    duration: float  # seconds (the longer of the two tracks)
    has_audio: bool
    has_video: bool
    source: str = ""


Source = Union[str, os.PathLike, bytes, "Media", np.ndarray, tuple]


def _open(src: str | os.PathLike | bytes):
    import av

    name = "<bytes>" if isinstance(src, (bytes, bytearray)) else str(src)
    if isinstance(src, (bytes, bytearray)):
        if len(src) == 0:
            raise MediaError("cannot read <bytes>: the data is empty")
        target = io.BytesIO(bytes(src))
    else:
        path = Path(src)
        if not path.exists():
            raise MediaError(f"cannot read {name}: no such file")
        if path.is_dir():
            raise MediaError(f"cannot read {name}: it is a folder, not a media file")
        if path.stat().st_size == 0:
            raise MediaError(f"cannot read {name}: the file is empty (0 bytes)")
        target = str(path)
    try:
        return av.open(target, mode="r"), name
    except Exception as e:  # av.error.InvalidDataError and friends
        raise MediaError(f"cannot read {name}: not a readable audio or video file ({type(e).__name__}: {e})") from e


def _decode_audio(container, name: str, sample_rate: int) -> np.ndarray | None:
    import av

    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    stream.thread_type = "AUTO"
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks = []
    try:
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError as e:
        if not chunks:
            raise MediaError(f"cannot read {name}: the audio track does not decode ({e})") from e
        # A truncated file: keep what decoded (browsers' webm often ends abruptly).
    if not chunks:
        return None
    wave = np.concatenate(chunks).astype(np.float32, copy=False)
    return np.clip(wave, -1.0, 1.0)


def _scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height)) if max_side else 1.0
    # Even sizes keep swscale happy with subsampled chroma.
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def _decode_video(container, name: str, fps: float, max_side: int) -> np.ndarray | None:
    """Frames on a regular grid of 1/fps from the first frame: each tick takes the frame on screen at that
    time, so faster cameras are subsampled and slower (or dropped) frames are repeated."""
    import av

    if not container.streams.video:
        return None
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    rate = float(stream.average_rate or stream.guessed_rate or 30)
    step, eps = 1.0 / fps, 2e-3  # eps: containers round timestamps (webm: to 1 ms)
    out: list[np.ndarray] = []
    size: tuple[int, int] | None = None
    t0 = prev_t = None
    prev = prev_rgb = None
    tick = 0.0

    def rgb(frame) -> np.ndarray:
        nonlocal size
        if size is None:
            size = _scaled_size(frame.width, frame.height, max_side)
        img = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
        turns = round((frame.rotation or 0) / 90) % 4  # phones store portrait video turned, with a display matrix
        return np.ascontiguousarray(np.rot90(img, turns)) if turns else img

    def emit_until(limit: float) -> None:
        nonlocal tick, prev_rgb
        while tick < limit - eps:
            if prev_rgb is None:  # convert only frames that are used, once
                prev_rgb = rgb(prev)
            out.append(prev_rgb)
            tick += step

    try:
        for i, frame in enumerate(container.decode(stream)):
            t = frame.time if frame.time is not None else i / rate
            t0 = t if t0 is None else t0
            t = max(t - t0, prev_t if prev_t is not None else 0.0)  # guard against pts that go backwards
            if prev is not None:
                emit_until(t)
            prev, prev_t, prev_rgb = frame, t, None
    except av.error.FFmpegError as e:
        if prev is None:
            raise MediaError(f"cannot read {name}: the video track does not decode ({e})") from e
        # A truncated file: keep what decoded.
    if prev is not None:
        emit_until(prev_t + 1.0 / rate)  # the last frame stays on screen for one frame interval
    return np.stack(out) if out else None


def _from_samples(samples: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    x = np.asarray(samples)
    if x.size == 0:
        raise MediaError("cannot read raw samples: the array is empty")
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
    x = x.astype(np.float32, copy=False)
    if x.ndim == 2:  # (n, channels) as soundfile and Gradio give it, or (channels, n)
        x = x.mean(axis=1 if x.shape[0] > x.shape[1] else 0)
    elif x.ndim != 1:
        raise MediaError(f"cannot read raw samples: expected 1-D or 2-D audio, got shape {x.shape}")
    if rate != sample_rate:
        from scipy.signal import resample_poly

        g = gcd(int(rate), int(sample_rate))
        x = resample_poly(x, sample_rate // g, int(rate) // g).astype(np.float32)
    return np.clip(x, -1.0, 1.0)


def probe_duration(path: str | os.PathLike) -> float | None:
    """The length from the container's header, without decoding, so that a too long clip is refused cheaply.
    Browsers' webm recordings often have none in the header: then the audio track alone is decoded (fast) to
    learn it. None when neither says."""
    import av

    try:
        with av.open(str(path)) as c:
            if c.duration:
                return c.duration / 1_000_000
            durations = [float(s.duration * s.time_base) for s in c.streams if s.duration and s.time_base]
            if durations:
                return max(durations)
            has_audio = bool(c.streams.audio)
    except Exception:
        return None  # the decoder will say what is wrong with the file
    if has_audio:
        try:
            return load_audio(str(path)).duration
        except MediaError:
            return None
    return None


def load_audio(src: Source, sample_rate: int = SAMPLE_RATE) -> Media:
    """Only the audio track (fast: the video is not decoded)."""
    return load_media(src, sample_rate=sample_rate, video=False)


def load_video(src: str | os.PathLike | bytes, fps: float = FPS, max_side: int = MAX_SIDE) -> Media:
    """Only the video track."""
    return load_media(src, fps=fps, max_side=max_side, audio=False)


def load_media(src: Source, sample_rate: int = SAMPLE_RATE, fps: float = FPS, max_side: int = MAX_SIDE,
               audio: bool = True, video: bool = True, raw_rate: int | None = None) -> Media:
    """Read a path, bytes, raw samples (`(rate, array)` or an array at `raw_rate`, default sample_rate) or a
    Media (returned as is) into a Media. Raises MediaError with a clear message when nothing can be read."""
    if isinstance(src, Media):
        return src
    if isinstance(src, tuple) and len(src) == 2 and np.ndim(src[0]) == 0:
        raw_rate, src = int(src[0]), src[1]
    if isinstance(src, np.ndarray):
        wave = _from_samples(src, raw_rate or sample_rate, sample_rate)
        return Media(wave, sample_rate, None, fps, len(wave) / sample_rate, True, False, "<samples>")

    container, name = _open(src)
    with container:
        if not container.streams.audio and not container.streams.video:
            raise MediaError(f"cannot read {name}: it has neither an audio nor a video track")
        has_audio_stream = bool(container.streams.audio)
        wave = _decode_audio(container, name, sample_rate) if audio else None
        if video and container.streams.video:
            if audio and has_audio_stream:
                container.seek(0)
            frames = _decode_video(container, name, fps, max_side)
        else:
            frames = None
    if audio and video and wave is None and frames is None:
        raise MediaError(f"cannot read {name}: no audio samples or video frames decode from it")
    durations = [0.0]
    if wave is not None:
        durations.append(len(wave) / sample_rate)
    if frames is not None:
        durations.append(len(frames) / fps)
    return Media(wave, sample_rate, frames, fps, max(durations), wave is not None, frames is not None, name)
