"""Real test media made on the spot: speech from espeak-ng, a face video from skimage's astronaut photo.

Every helper writes into one temporary folder per process and memoises its result, so a session generates
each file once whichever test module asks first. Used by tests and by scripts/bench_features.py.
"""
from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

SPEECH = "I really love this movie, it is wonderful."
SIZE = (640, 480)  # width, height: a webcam frame

_dir: Path | None = None


def media_dir() -> Path:
    global _dir
    if _dir is None:
        _dir = Path(tempfile.mkdtemp(prefix="selfmm-media-"))
        atexit.register(shutil.rmtree, _dir, True)
    return _dir


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


@functools.cache
def speech_wav(text: str = SPEECH, seconds: float | None = None, voice: str | None = None) -> Path:
    """espeak-ng speech (22.05 kHz mono WAV) in `voice` (e.g. "de"; default English); padded with silence to
    `seconds` when given."""
    out = media_dir() / f"speech-{abs(hash((text, seconds, voice)))}.wav"
    subprocess.run(["espeak-ng", "-w", str(out), *(["-v", voice] if voice else []), text], check=True,
                   capture_output=True)
    if seconds is not None:
        import soundfile as sf

        wave, rate = sf.read(out, dtype="float32")
        need = int(seconds * rate)
        wave = np.pad(wave, (0, max(0, need - len(wave))))[:need]
        sf.write(out, wave, rate)
    return out


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    wave, rate = sf.read(path, dtype="float32", always_2d=False)
    return wave, rate


def speech_samples(text: str = SPEECH, seconds: float | None = None, voice: str | None = None
                   ) -> tuple[np.ndarray, int]:
    return read_wav(speech_wav(text, seconds, voice))


def _photo(kind: str) -> np.ndarray:
    from skimage import data

    if kind == "face":
        return data.astronaut()  # 512x512 RGB, a real face
    if kind == "noface":
        return data.coffee()  # 400x600 RGB, a cup of coffee
    if kind == "head":  # a close-up: the astronaut's head and shoulders, 320x320
        return data.astronaut()[0:320, 96:416]
    if kind == "twofaces":  # the close-up and its mirror image, side by side (FaceMesh misses smaller faces)
        head = _photo("head")
        return np.hstack([head, head[:, ::-1]])
    if kind == "turned":  # the close-up squeezed into a narrow trapezoid: a head turned far to one side
        import cv2

        src = np.float32([[0, 0], [319, 0], [319, 319], [0, 319]])
        dst = np.float32([[120, 40], [200, 0], [200, 319], [120, 280]])
        return cv2.warpPerspective(_photo("head"), cv2.getPerspectiveTransform(src, dst), (320, 320))
    raise ValueError(kind)


def still_frames(seconds: float, fps: float = 30.0, kind: str = "face", size: tuple[int, int] = SIZE
                 ) -> np.ndarray:
    """(T, H, W, 3) uint8: the whole photo letterboxed into `size`, with one pixel of camera shake."""
    import cv2

    photo = _photo(kind)
    ph, pw = photo.shape[:2]
    scale = min(size[0] / pw, size[1] / ph)
    w, h = int(pw * scale), int(ph * scale)
    canvas = np.zeros((size[1] + 2, size[0] + 2, 3), np.uint8)
    x0, y0 = (size[0] + 2 - w) // 2, (size[1] + 2 - h) // 2
    canvas[y0:y0 + h, x0:x0 + w] = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
    n = int(round(seconds * fps))
    return np.stack([canvas[i % 2:i % 2 + size[1], 0:size[0]] for i in range(n)])


def moving_frames(seconds: float, fps: float = 30.0, kind: str = "face", size: tuple[int, int] = SIZE,
                  seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8: a 4:3 window that drifts and zooms gently over the photo, like a handheld camera."""
    import cv2

    photo = _photo(kind)
    ph, pw = photo.shape[:2]
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, 3)
    n = int(round(seconds * fps))
    frames = np.empty((n, size[1], size[0], 3), np.uint8)
    for i in range(n):
        t = i / fps
        zoom = 1.0 + 0.12 * np.sin(2 * np.pi * 0.3 * t + phase[0])  # +-12% size
        w = min(pw, 0.8 * min(pw, ph * 4 / 3) / zoom)
        h = w * 3 / 4
        cx = pw / 2 + 0.06 * pw * np.sin(2 * np.pi * 0.2 * t + phase[1])
        cy = (0.32 * ph if kind == "face" else ph / 2) + 0.04 * ph * np.sin(2 * np.pi * 0.25 * t + phase[2])
        x0 = int(np.clip(cx - w / 2, 0, pw - w))
        y0 = int(np.clip(cy - h / 2, 0, ph - h))
        crop = photo[y0:y0 + int(h), x0:x0 + int(w)]
        frames[i] = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    return frames


def write_clip(path: Path, frames: np.ndarray | None = None, fps: float = 30.0,
               audio: np.ndarray | None = None, rate: int = 16000, times: np.ndarray | None = None) -> Path:
    """Mux frames (T, H, W, 3) and/or audio, mono (n,) or stereo (n, 2), into a file with PyAV; container and
    codecs by extension (.mp4: H.264 + AAC, .webm: VP8 + Opus, .mkv/.mov: H.264 + PCM, .flac/.wav/.ogg/.mp3:
    audio only). `times`: each frame's time in seconds, for a variable frame rate (default every 1/fps)."""
    import av

    ext = path.suffix.lower()
    vcodec, acodec = {".mp4": ("libx264", "aac"), ".webm": ("libvpx", "libopus"), ".mkv": ("libx264", "pcm_s16le"),
                      ".mov": ("libx264", "pcm_s16le"), ".flac": (None, "flac"), ".wav": (None, "pcm_s16le"),
                      ".ogg": (None, "libopus"), ".mp3": (None, "libmp3lame")}[ext]
    if acodec == "libopus" and audio is not None and rate != 48000:
        from scipy.signal import resample_poly

        audio, rate = resample_poly(audio, 48000, rate, axis=0).astype(np.float32), 48000
    layout = "stereo" if audio is not None and audio.ndim == 2 else "mono"
    with av.open(str(path), "w") as out:
        vs = as_ = None
        if frames is not None:
            # Fast encoder settings: test media need not be small.
            fast = {"deadline": "realtime", "cpu-used": "16"} if vcodec == "libvpx" else {"preset": "veryfast"}
            vs = out.add_stream(vcodec, rate=Fraction(fps).limit_denominator(1000), options=fast)
            vs.width, vs.height = frames.shape[2], frames.shape[1]
            vs.pix_fmt = "yuv420p"
            if times is not None:  # millisecond timestamps, so that frames can come at any time
                vs.codec_context.time_base = Fraction(1, 1000)
        if audio is not None:
            as_ = out.add_stream(acodec, rate=rate, layout=layout)
        if as_ is not None:
            fmt = "s16" if acodec in ("pcm_s16le", "flac") else "fltp"
            samples = np.clip(audio, -1, 1).astype(np.float32)
            if fmt == "s16":
                samples = (samples * 32767).astype(np.int16)
            chunk = 1024
            for start in range(0, len(samples), chunk):
                block = samples[start:start + chunk]
                # packed formats interleave the channels in one row; planar ones take a row per channel
                block = block.reshape(1, -1) if fmt == "s16" or block.ndim == 1 else block.T
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format=fmt, layout=layout)
                frame.sample_rate = rate
                frame.pts = start
                frame.time_base = Fraction(1, rate)
                for packet in as_.encode(frame):
                    out.mux(packet)
            for packet in as_.encode(None):
                out.mux(packet)
        if vs is not None:
            for i, img in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                if times is not None:
                    frame.pts, frame.time_base = int(round(times[i] * 1000)), Fraction(1, 1000)
                for packet in vs.encode(frame):
                    out.mux(packet)
            for packet in vs.encode(None):
                out.mux(packet)
    return path


@functools.cache
def clip(kind: str = "face+speech", seconds: float = 4.0, ext: str = ".mp4", text: str = SPEECH,
         fps: float = 30.0, voice: str | None = None) -> Path:
    """A ready clip. kind: "face+speech", "face+silence", "face" (no audio track), "noface+speech",
    "speech" (audio only, use an audio ext), "silence" (audio only), "noise" / "face+noise" (white noise).
    voice: espeak-ng's voice for the speech (e.g. "de")."""
    from scipy.signal import resample_poly

    rate = 16000
    audio = None
    if "speech" in kind:
        wave, r = speech_samples(text, voice=voice)
        wave = resample_poly(wave, rate, r).astype(np.float32)
        n = int(seconds * rate)
        audio = np.pad(wave, (int(0.3 * rate), 0))[:n]
        audio = np.pad(audio, (0, n - len(audio)))
    elif "silence" in kind:
        audio = np.zeros(int(seconds * rate), np.float32)
    elif "noise" in kind:
        audio = np.random.default_rng(0).normal(0, 0.2, int(seconds * rate)).astype(np.float32)
    frames = None
    if kind.startswith("face"):
        frames = moving_frames(seconds, fps, "face")
    elif kind.startswith("noface"):
        frames = moving_frames(seconds, fps, "noface")
    name = f"{kind.replace('+', '_')}-{seconds:g}s-{abs(hash((text, fps, voice))) % 10**8}{ext}"
    return write_clip(media_dir() / name, frames, fps, audio, rate)
