"""Live mode at real-time pace: per-update latency while a clip streams into `python app.py`.

    python scripts/bench_live.py [--seconds 20] [--fps 5] [--model DIR]

The app runs in a subprocess; gradio_client plays the browser: /live_start, then every `LiveConfig.chunk` seconds
that much microphone audio (espeak-ng sentences with pauses) to /live_push and `--fps` webcam frames a second (the
astronaut photo) to /live_frame_push, each sent on its own clock as a browser would, whether or not the last
answer came back; then /live_stop. gradio_client cannot drive Gradio's stream events, so these endpoints run
the stream's own handlers in the same queues. Printed: updates shown, the round trip of a push, the age of each
shown reading (from the moment the last audio it scored was sent to the moment it came back), each update's
compute time (as the app reports it), the interval between updates, and the time to the full analysis after
stopping.
Targets (issue 17): an update every <= 1.5 s, each computed in < 1 s (medians).
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RATE = 16000
SENTENCES = ["I really love this movie, it is wonderful.", "But the ending was boring and far too long.",
             "Still, I would happily watch it again."]


def speech(seconds: float) -> np.ndarray:
    """`seconds` of 16 kHz speech: the sentences in turn, each followed by a one-second pause."""
    from scipy.signal import resample_poly

    from harness import media

    parts = []
    while sum(map(len, parts)) < seconds * RATE:
        for s in SENTENCES:
            wave, rate = media.speech_samples(s)
            parts += [resample_poly(wave, RATE, rate).astype(np.float32), np.zeros(RATE, np.float32)]
    return np.concatenate(parts)[: int(seconds * RATE)]


def quantiles(xs: list[float]) -> str:
    if not xs:
        return "none"
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]
    return f"median {statistics.median(xs):.2f} s, p90 {p90:.2f} s, max {xs[-1]:.2f} s (n={len(xs)})"


def run(url: str, seconds: float, fps: float, folder: Path) -> dict:
    import soundfile as sf
    from gradio_client import Client, handle_file
    from PIL import Image

    from harness import media

    client = Client(url, verbose=False)
    frame = folder / "frame.png"
    Image.fromarray(media.still_frames(0.1, 10, "face")[0]).save(frame)
    from demo.live import LiveConfig

    audio, step = speech(seconds), LiveConfig().chunk
    chunks, n = [], int(round(step * RATE))
    for i in range(0, len(audio), n):
        path = folder / f"chunk{i // n:03d}.wav"
        sf.write(path, audio[i:i + n], RATE, subtype="PCM_16")
        chunks.append(path)

    client.predict(api_name="/live_start")
    t0 = time.perf_counter()
    stop = threading.Event()

    sent_frames = []

    def frames():  # the webcam on its own clock
        k = 0
        while not stop.is_set():
            sent_frames.append(client.submit(handle_file(str(frame)), api_name="/live_frame_push"))
            k += 1
            stop.wait(max(0.0, t0 + k / fps - time.perf_counter()))

    webcam = threading.Thread(target=frames, daemon=True)
    webcam.start()
    jobs, done = [], {}
    for i, chunk in enumerate(chunks):  # each chunk at the moment it was "recorded"
        time.sleep(max(0.0, t0 + (i + 1) * step - time.perf_counter()))
        sent = time.perf_counter()
        jobs.append((sent, client.submit(handle_file(str(chunk)), api_name="/live_push", result_callbacks=[
            lambda *out, i=i: done.setdefault(i, time.perf_counter())])))
    updates, seen, trips = [], set(), []
    for i, (sent, job) in enumerate(jobs):
        status = job.result(timeout=120)[0]
        status = status if isinstance(status, str) else ""  # a skipped update returns gr.skip()
        at = done.get(i, time.perf_counter())
        trips.append(at - sent)
        got = re.search(r"([\d.]+) s recorded.*?this update took ([\d.]+) s", status)
        if got and got.group(0) not in seen:  # a push that shows no new reading returns the outputs as they were
            seen.add(got.group(0))
            scored = min(len(jobs), max(1, round(float(got.group(1)) / step))) - 1  # the last chunk it scored
            updates.append({"age": at - jobs[scored][0], "compute": float(got.group(2)), "done_at": at})
    stop.set()
    webcam.join()  # no frame may be sent after the folder holding it is gone
    for job in sent_frames:
        job.result(timeout=120)
    t = time.perf_counter()
    final = client.predict("", api_name="/live_stop")
    stop_s = time.perf_counter() - t
    ends = sorted(u["done_at"] for u in updates)
    return {"chunks": len(chunks), "updates": len(updates), "round_trip": trips,
            "age": [u["age"] for u in updates], "compute": [u["compute"] for u in updates],
            "interval": [b - a for a, b in zip(ends, ends[1:])], "stop_s": stop_s, "final": final[0]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0, help="length of the streamed recording")
    p.add_argument("--fps", type=float, default=5.0, help="webcam frames a second")
    p.add_argument("--model", type=Path, help="model artifact (default: assets/model, else a tiny test model)")
    args = p.parse_args(argv)

    from harness.app_model import model_dir, running_app

    with tempfile.TemporaryDirectory() as tmp, running_app(args.model or model_dir()) as url:
        r = run(url, args.seconds, args.fps, Path(tmp))
    print(f"streamed {args.seconds:g} s of speech at real-time pace, {args.fps:g} webcam frames a second")
    print(f"updates shown: {r['updates']} in {args.seconds:g} s ({r['chunks']} chunks pushed)")
    print(f"round trip of a push: {quantiles(r['round_trip'])}")
    print(f"age of a shown reading (its last audio sent -> shown): {quantiles(r['age'])}")
    print(f"compute per update (the app's own timing): {quantiles(r['compute'])}")
    print(f"interval between updates: {quantiles(r['interval'])}")
    print(f"full analysis after stop: {r['stop_s']:.2f} s; its status: {r['final'][:160]!r}")
    every = statistics.median(r["interval"]) if r["interval"] else float("inf")
    compute = statistics.median(r["compute"]) if r["compute"] else float("inf")
    print(f"targets: update every <= 1.5 s: {'OK' if every <= 1.5 else 'MISSED'} ({every:.2f} s); "
          f"computed in < 1 s: {'OK' if compute < 1 else 'MISSED'} ({compute:.2f} s)")


if __name__ == "__main__":
    main()
