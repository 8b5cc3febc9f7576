"""Make the app's offline examples: a face video with synthetic speech, one clip per sentence.

    python scripts/make_examples.py [--out assets/examples]

The face is scikit-image's astronaut photo (a real face that FaceMesh finds, shipped in the wheel), moved a
little each frame so that it is a video and not a still; the speech is espeak-ng. Written with PyAV as H.264
+ AAC mp4 (plays in browsers, small). Needs espeak-ng and scikit-image (dev requirements), not the network.
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
FPS = 15
SIZE = (320, 240)  # width, height

EXAMPLES = {  # name -> sentences, spoken with a pause between them
    "positive": ["I really love this movie, it's wonderful."],
    "negative": ["This film was terrible, I hated every minute of it."],
    # Two sentences apart, so that Whisper gives two segments and the per-sentence timeline has two points.
    "mixed": ["The actors were brilliant and I loved the music.", "But the ending was awful and boring."],
}
PAUSE = 1.2  # seconds between sentences


def speak(text: str, rate_wpm: int = 150, voice: str = "en-us") -> np.ndarray:
    """espeak-ng speech as float32 mono at 16 kHz."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate_wpm), "-g", "8", "-w", str(wav), text],
                       check=True, capture_output=True)
        import soundfile as sf

        x, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if rate != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(rate, SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // g, rate // g).astype(np.float32)
    return x


def face_frames(n: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """n RGB frames of the astronaut's face, drifting slowly (a few pixels) so the clip is a real video."""
    from skimage.data import astronaut

    photo = astronaut()  # (512, 512, 3); the face lies around x 177-272, y 66-161
    w, h = size
    frames = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        dx = int(round(6 * np.sin(2 * np.pi * i / (FPS * 3))))
        dy = int(round(3 * np.sin(2 * np.pi * i / (FPS * 2))))
        x0, y0 = 64 + dx, 4 + dy
        frames[i] = photo[y0:y0 + h, x0:x0 + w]
    return frames


def write_mp4(path: Path, frames: np.ndarray, wave: np.ndarray, fps: int = FPS) -> None:
    """H.264 (yuv420p) + AAC mp4 with PyAV."""
    import av

    with av.open(str(path), mode="w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height = frames.shape[2], frames.shape[1]
        v.pix_fmt = "yuv420p"
        v.options = {"crf": "30", "preset": "veryslow", "tune": "stillimage"}
        a = out.add_stream("aac", rate=SAMPLE_RATE)
        a.layout = "mono"
        a.bit_rate = 32000
        for img in frames:
            for packet in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in v.encode():
            out.mux(packet)
        chunk = 1024
        pcm = np.clip(wave, -1, 1).astype(np.float32)
        for k, i in enumerate(range(0, len(pcm), chunk)):
            block = pcm[i:i + chunk]
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = i
            frame.time_base = Fraction(1, SAMPLE_RATE)
            for packet in a.encode(frame):
                out.mux(packet)
        for packet in a.encode():
            out.mux(packet)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.float32)


def make_clip(path: Path, sentences: list[str], lead: float = 0.4, tail: float = 0.5) -> float:
    """The sentences, padded with a little silence, over a face video of the same length; returns seconds."""
    parts = [silence(lead)]
    for i, text in enumerate(sentences):
        speech = speak(text)
        parts += [silence(PAUSE)] if i else []
        parts.append(0.9 * speech / max(1e-6, float(np.abs(speech).max())))
    wave = np.concatenate(parts + [silence(tail)])
    n = int(np.ceil(len(wave) / SAMPLE_RATE * FPS))
    write_mp4(path, face_frames(n), wave)
    return len(wave) / SAMPLE_RATE


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "assets" / "examples"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, sentences in EXAMPLES.items():
        path = out / f"{name}.mp4"
        seconds = make_clip(path, sentences)
        print(f"{path}  {seconds:.1f} s  {path.stat().st_size / 1024:.0f} KB  {' '.join(sentences)!r}")


if __name__ == "__main__":
    main()
