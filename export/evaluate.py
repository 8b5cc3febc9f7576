"""What the card reports about an ONNX file, measured with ONNX Runtime alone: latency on one clip and
metrics on held-out data."""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from selfmm import contract
from selfmm.contract import HEADS


def clip_inputs(audio_dim: int, vision_dim: int, vocab: int, seconds: float = 5.0, tokens: int = 30,
                audio_fps: float = 20.0, vision_fps: float = 10.0, seed: int = 0) -> dict[str, np.ndarray]:
    """One clip's inputs (batch 1): `tokens` token ids and the frames of `seconds` of audio and video."""
    rng = np.random.default_rng(seed)
    ta, tv = max(int(round(seconds * audio_fps)), 1), max(int(round(seconds * vision_fps)), 1)
    ids = rng.integers(1, vocab, (1, tokens)).astype(np.int64)
    audio = rng.normal(0, 1, (1, ta, audio_dim)).astype(np.float32)
    vision = rng.normal(0, 1, (1, tv, vision_dim)).astype(np.float32)
    return contract.feeds(ids, np.ones((1, tokens), np.int64), audio, np.array([ta]), vision, np.array([tv]))


def median_ms(fn, runs: int = 50, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 3)


def latency_ms(path: Path, feeds: dict[str, np.ndarray], threads: int = 2, runs: int = 50) -> float:
    """Median wall time of one ONNX Runtime call, in ms."""
    s = contract.open_session(path, threads)
    return median_ms(lambda: s.run(None, feeds), runs)


def predict_split(path: Path, split, batch_size: int = 32, threads: int = 2) -> dict[str, np.ndarray]:
    """The four heads over a `selfmm.data.Split` (each batch trimmed to its longest sample)."""
    s = contract.open_session(path, threads)
    outs: dict[str, list[np.ndarray]] = {h: [] for h in HEADS}
    for start in range(0, len(split), batch_size):
        feeds = split.inputs(slice(start, start + batch_size))
        for h, y in zip(HEADS, s.run(list(HEADS), feeds)):
            outs[h].append(y)
    return {h: np.concatenate(v) for h, v in outs.items()}


def heldout_metrics(path: Path, split, dataset: str, metrics_fn=None) -> dict[str, Any]:
    """Metrics on `split` computed from ONNX Runtime outputs: MMSA's of the fused head M by default, or
    `metrics_fn(outputs, ids, labels)` (a builder's own, e.g. per data source and head)."""
    from selfmm.metrics import metrics_for

    pred = predict_split(path, split)
    if metrics_fn is not None:
        return metrics_fn(pred, split.ids, split.labels)
    return {k: round(float(v), 4) for k, v in metrics_for(dataset)(pred["M"], split.labels).items()}
