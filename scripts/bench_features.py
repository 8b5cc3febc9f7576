"""Speed of the feature pipeline per stage, in seconds per second of media (x real time).

    python scripts/bench_features.py [--seconds 5 30] [--repeats 3] [--finder 30] [--finder-only]

Clips are generated (espeak-ng speech over the moving astronaut photo, 640x480 H.264 at 30 fps + AAC).
- cold: a fresh process, its first clip (imports, model loading and numba's on-disk cache come on top; the
  load line gives the pipeline's construction time).
- warm sequential: after a warm-up, each stage alone, one after the other (median of --repeats).
- warm side by side: `FeaturePipeline.extract` with its thread pool (median of --repeats). The stages overlap
  and share the cores, so their times are inflated: the total is what counts.
Each cell is wall time / media seconds; "cpu" rows give process CPU time / media seconds, which depends far
less on other programs running: on an otherwise idle 2-core machine the side-by-side wall time is about
max(cpu / 2, the longest stage).
- face finder (--finder N): milliseconds per FaceFinder.find, medians over N frames, in its own warm process:
  a 640x480 frame that a face fills (FaceMesh on the whole frame, tracking), a 1920x1080 frame with a small
  face (the detector's path: following the previous frame's crop, and a fresh search after reset() that runs
  the full-range detector on the frame and its tiles), and frames without a face (everything tried, in vain).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = ("decode", "asr", "audio", "vision")
# About 25 s of espeak-ng speech, no sentence twice (repeated text makes Whisper re-decode: compression check).
SENTENCES = ("I really love this movie, it is wonderful. The acting was fine but the story made no sense to "
             "me at all. Honestly, I think the second half was the worst thing I have seen all year. Still, "
             "the music was beautiful and the city at night looked amazing. My friends laughed a lot, and the "
             "popcorn was cheap. I would not pay to see it again, but I might watch it at home on a rainy "
             "Sunday afternoon, if nothing better is on television.")


def make_clip(seconds: float) -> Path:
    from harness import media

    return media.clip("face+speech", seconds, ".mp4", text=SENTENCES if seconds > 6 else media.SPEECH)


def _clock(fn, *args):
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - w, time.process_time() - c


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def child(clip: str, mode: str, repeats: int) -> dict:
    """Runs in its own process; returns {"load", "wall": {stage: s}, "cpu": {stage: s}, "transcript"}."""
    t0 = time.perf_counter()
    from selfmm.features import FeaturePipeline, load_media

    pipe = FeaturePipeline(parallel=(mode != "sequential"))
    load = time.perf_counter() - t0
    if mode == "cold":
        c, wall, cpu = _clock(pipe.extract, clip)
        t = c.timings
        stages = {"decode": t["decode_audio"] + t["decode_video"], "asr": t["asr"], "audio": t["audio"],
                  "vision": t["vision"]}
        return {"load": load, "wall": {**stages, "total": wall}, "cpu": {"total": cpu}, "transcript": c.transcript}
    pipe.warm_up()
    pipe.extract(clip)
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}

    def note(stage: str, wall: float, cpu: float) -> None:
        walls.setdefault(stage, []).append(wall)
        cpus.setdefault(stage, []).append(cpu)

    for _ in range(repeats):
        if mode == "sequential":
            m, w, c = _clock(load_media, clip)
            note("decode", w, c)
            _, w, c = _clock(pipe.transcriber.transcribe, m.waveform)
            note("asr", w, c)
            _, w, c = _clock(pipe.audio.extract, m.waveform, m.sample_rate)
            note("audio", w, c)
            _, w, c = _clock(pipe.face.extract, m.frames, m.fps)
            note("vision", w, c)
            note("total", sum(walls[s][-1] for s in STAGES), sum(cpus[s][-1] for s in STAGES))
        else:
            r, w, c = _clock(pipe.extract, clip)
            t = r.timings
            for stage, value in (("decode", t["decode_audio"] + t["decode_video"]), ("asr", t["asr"]),
                                 ("audio", t["audio"]), ("vision", t["vision"])):
                note(stage, value, float("nan"))
            note("total", w, c)
    return {"load": load, "wall": {k: _median(v) for k, v in walls.items()},
            "cpu": {k: _median(v) for k, v in cpus.items()}}


def finder_frames() -> dict[str, np.ndarray]:
    """The benchmark's frames: the astronaut filling a 640x480 frame, and small (200 px photo, a face of about
    37 px) in a 1920x1080 one; both sizes also without a face."""
    import cv2
    from skimage import data

    photo = data.astronaut()
    large = np.zeros((480, 640, 3), np.uint8)
    large[:, 80:560] = cv2.resize(photo, (480, 480), interpolation=cv2.INTER_AREA)
    wide = np.zeros((1080, 1920, 3), np.uint8)
    wide[150:350, 1400:1600] = cv2.resize(photo, (200, 200), interpolation=cv2.INTER_AREA)
    return {"large": large, "wide": wide, "empty_640": np.full((480, 640, 3), 90, np.uint8),
            "empty_1920": np.full((1080, 1920, 3), 90, np.uint8)}


def child_finder(frames: int) -> dict:
    """Runs in its own process: {case: {"wall", "cpu"} ms per find(), medians over `frames` calls}."""
    from selfmm.features.face_finder import FaceFinder

    cases = (("640x480, face fills it (FaceMesh)", "large", False),
             ("1920x1080, small face, following", "wide", False),
             ("1920x1080, small face, search", "wide", True),
             ("640x480, no face", "empty_640", False),
             ("1920x1080, no face", "empty_1920", False))
    images = finder_frames()
    finder = FaceFinder()
    out = {}
    for label, key, search in cases:
        finder.reset()
        finder.find(images[key])  # warm: graphs built, tracking or the followed crop in place
        walls, cpus, found = [], [], 0
        for _ in range(frames):
            if search:
                finder.reset()
            _, w, c = _clock(finder.find, images[key])
            walls.append(w * 1000)
            cpus.append(c * 1000)
            found += finder.last_source is not None
        out[label] = {"wall": _median(walls), "cpu": _median(cpus), "found": found, "frames": frames}
    finder.close()
    return out


def run_child(clip: Path | None, mode: str, repeats: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, __file__, "--child", mode, "--clip", str(clip), "--repeats", str(repeats)],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, nargs="+", default=[5.0, 30.0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--finder", type=int, default=30, help="frames per face-finder case (0: none)")
    p.add_argument("--finder-only", action="store_true", help="only the face finder, no clips")
    p.add_argument("--child", choices=("cold", "sequential", "parallel", "finder"))
    p.add_argument("--clip")
    args = p.parse_args()
    if args.child == "finder":
        print(json.dumps(child_finder(args.repeats)))
        return
    if args.child:
        print(json.dumps(child(args.clip, args.child, args.repeats)))
        return

    print(f"cpu cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f}")
    if not args.finder_only:
        clips(args)
    if args.finder:
        print(f"\nFaceFinder.find, ms per frame (medians of {args.finder} frames)")
        print(f"{'case':40s}{'wall':>8s}{'cpu':>8s}{'found':>8s}")
        for label, r in run_child(None, "finder", args.finder).items():
            print(f"{label:40s}{r['wall']:8.1f}{r['cpu']:8.1f}{r['found']:5d}/{r['frames']}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


def clips(args: argparse.Namespace) -> None:
    modes = ("cold", "sequential", "parallel")
    rows = {}
    for seconds in args.seconds:
        clip = make_clip(seconds)
        for mode in modes:
            rows[(seconds, mode)] = run_child(clip, mode, args.repeats)
        print(f"{seconds:g} s clip, Whisper heard: {rows[(seconds, 'cold')]['transcript'][:70]!r}...")

    cols = [(s, m) for s in args.seconds for m in modes]
    names = {"cold": "cold", "sequential": "warm seq", "parallel": "warm side"}

    def cell(value: float | None, seconds: float) -> str:
        return f"{'-':>15s}" if value is None or value != value else f"{value / seconds:15.3f}"

    print("\nseconds per second of media (x real time)")
    print(f"{'stage':14s}" + "".join(f"{f'{s:g}s ' + names[m]:>15s}" for s, m in cols))
    for stage in (*STAGES, "total"):
        print(f"{stage:14s}" + "".join(cell(rows[c]["wall"].get(stage), c[0]) for c in cols))
    for stage in (*STAGES, "total"):
        print(f"{'cpu ' + stage:14s}" + "".join(cell(rows[c]["cpu"].get(stage), c[0]) for c in cols))
    print(f"{'total (s)':14s}" + "".join(f"{rows[c]['wall']['total']:15.2f}" for c in cols))
    print(f"{'load (s)':14s}" + "".join(f"{rows[c]['load']:15.2f}" for c in cols))


if __name__ == "__main__":
    main()
