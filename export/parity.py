"""ONNX Runtime vs PyTorch on the same inputs, run in a fresh process so that nothing left over from the
export (traced modules, caches) can make the comparison agree by accident.

    python -m export.parity --checkpoint best.pt --model fp32=model.onnx [--model int8=q.onnx]
                            [--eval-data FILE] [--tokenizer tokenizer.json] --json out.json

Cases: batch sizes 1 to 8 with text, audio and vision lengths mixing 0 (absent), 1 and the full padded
length, padded lengths that differ from the traced ones (1 to 120 frames), random values also in the
padding; real token ids from the model's tokenizer; and held-out samples when a feature file is given.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from selfmm import contract
from selfmm.contract import HEADS, TEXT_IDS

TOLERANCE = 1e-4
SENTENCES = ["I really love this movie, it's wonderful.", "no", "This was, honestly, the worst two hours of my life "
             "and I want them back.", "ok", "The acting is fine but the plot goes nowhere.",
             "What a pleasant surprise!", "hmm, I don't know", "Absolutely fantastic soundtrack and a moving story."]
Case = tuple[str, dict[str, np.ndarray]]


def _batch(rng: np.random.Generator, text_lens: list[int], audio_lens: list[int], vision_lens: list[int],
           L: int, Ta: int, Tv: int, dims: tuple[int, int], vocab: int) -> dict[str, np.ndarray]:
    """Random batch; padding holds random values too (the model must ignore them)."""
    B = len(text_lens)
    mask = (np.arange(L)[None, :] < np.array(text_lens)[:, None]).astype(np.int64)
    ids = rng.integers(1, vocab, (B, L)).astype(np.int64) * mask
    return contract.feeds(ids, mask, rng.normal(0, 1, (B, Ta, dims[0])).astype(np.float32), audio_lens,
                          rng.normal(0, 1, (B, Tv, dims[1])).astype(np.float32), vision_lens)


def random_cases(vocab: int, max_positions: int, dims: tuple[int, int], seed: int = 0) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases: list[Case] = []
    lens_text = [1, 3, 12, 30, 50, 64]
    lens_frames = [1, 2, 9, 40, 120]
    for B in range(1, 9):
        L = min(int(rng.choice(lens_text)), max_positions)
        Ta, Tv = int(rng.choice(lens_frames)), int(rng.choice(lens_frames))

        def pick(T: int, edge: list[int]) -> list[int]:
            # rotate the edge values (full, 1, absent) through the rows, the rest random
            return [edge[(i + B) % len(edge)] if i < len(edge) else int(rng.integers(0, T + 1)) for i in range(B)]

        cases.append((f"random B={B} L={L} Ta={Ta} Tv={Tv}",
                      _batch(rng, pick(L, [L, 1, 0]), pick(Ta, [Ta, 1, 0]), pick(Tv, [Tv, 0, 1]), L, Ta, Tv, dims, vocab)))
    cases.append(("length 1 everywhere, B=1", _batch(rng, [1], [1], [1], 1, 1, 1, dims, vocab)))
    cases.append(("everything absent, B=1", _batch(rng, [0], [0], [0], 4, 3, 3, dims, vocab)))
    cases.append(("length 1 and absent rows, B=3", _batch(rng, [1, 0, 1], [0, 1, 1], [1, 1, 0], 1, 1, 1, dims, vocab)))
    return cases


def text_cases(tokenizer_json: str, dims: tuple[int, int], max_length: int, seed: int = 1) -> list[Case]:
    """Real token ids (the model's own tokenizer on real sentences), with random frames."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_json)
    tok.no_padding()
    tok.enable_truncation(max_length=max_length)
    encoded = [tok.encode(s).ids for s in SENTENCES]
    rng = np.random.default_rng(seed)
    cases = []
    for B in (1, 3, len(encoded)):
        rows = encoded[:B]
        L = max(len(r) for r in rows)
        x = _batch(rng, [len(r) for r in rows], [int(rng.integers(0, 60)) for _ in rows],
                   [int(rng.integers(0, 30)) for _ in rows], L, 60, 30, dims, 2)
        for i, r in enumerate(rows):
            x[TEXT_IDS][i, :len(r)] = r
        cases.append((f"tokenized sentences B={B}", x))
    return cases


def data_cases(path: str, n: int = 64) -> list[Case]:
    """Held-out samples of a feature file (test split), in batches of 1, 5 and 8, trimmed to their lengths."""
    from selfmm.data import load_feature_file

    s = load_feature_file(path).splits["test"]
    cases, start = [], 0
    for B in (1, 5, 8) * 8:
        if start >= min(len(s), n):
            break
        sl = slice(start, min(start + B, len(s)))
        start = sl.stop
        cases.append((f"held-out samples {sl.start}-{sl.stop - 1}", s.inputs(sl)))
    return cases


def compare(checkpoint: str, models: dict[str, str], eval_data: str | None = None, tokenizer: str | None = None,
            seed: int = 0, threads: int = 2) -> dict[str, Any]:
    """Max |ONNX - PyTorch| per head over every case, per model file; int8 files also against fp32."""
    import torch

    if "fp32" not in models:
        raise ValueError("parity needs the fp32 model (label 'fp32')")

    from selfmm.train import load_checkpoint

    torch.set_num_threads(threads)
    model, ckpt = load_checkpoint(Path(checkpoint))
    c = model.config
    te = c.text_encoder
    dims = (c.audio_in, c.vision_in)
    cases = random_cases(int(te.get("vocab_size", 2)), int(te.get("max_position_embeddings", 512)), dims, seed)
    if tokenizer:
        cases += text_cases(Path(tokenizer).read_text(), dims, min(50, int(te.get("max_position_embeddings", 512))))
    if eval_data:
        cases += data_cases(eval_data)

    sessions = {k: contract.open_session(p, threads) for k, p in models.items()}
    diff = {k: {h: 0.0 for h in HEADS} for k in models}
    worst = {k: {h: "" for h in HEADS} for k in models}
    vs_fp32 = {k: {h: 0.0 for h in HEADS} for k in models if k != "fp32"}
    mean_abs = {k: {h: [] for h in HEADS} for k in models}
    for name, x in cases:
        with torch.no_grad():
            ref = model(**{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in x.items()})
        ref = {h: ref[h].reshape(-1).numpy() for h in HEADS}
        outs = {k: dict(zip(HEADS, s.run(list(HEADS), x))) for k, s in sessions.items()}
        for k, out in outs.items():
            for h in HEADS:
                if out[h].shape != ref[h].shape:
                    raise AssertionError(f"{k} {name}: head {h} has shape {out[h].shape}, PyTorch {ref[h].shape}")
                d = np.abs(out[h].astype(np.float64) - ref[h])
                dmax = float(d.max()) if np.isfinite(d).all() else float("inf")
                mean_abs[k][h].append(d)
                if dmax >= diff[k][h]:
                    diff[k][h], worst[k][h] = dmax, name
                if k in vs_fp32:
                    vs_fp32[k][h] = max(vs_fp32[k][h], float(np.abs(out[h] - outs["fp32"][h]).max()))
    report: dict[str, Any] = {
        "tolerance": TOLERANCE, "cases": len(cases), "seed": seed,
        "batch_sizes": sorted({len(x[contract.AUDIO_LENGTHS]) for _, x in cases}),
        "inputs": ["random (lengths 0, 1, full; padded lengths 1-120)"] + (["tokenized sentences"] if tokenizer else [])
        + ([f"held-out samples ({Path(eval_data).name})"] if eval_data else []),
    }
    for k in models:
        report[k] = {"max_abs": diff[k], "mean_abs": {h: float(np.concatenate(v).mean()) for h, v in mean_abs[k].items()},
                     "worst_case": worst[k]}
        # fp32 must pass; a quantized model is only reported ("within_tolerance" is then informative)
        report[k]["passed" if k == "fp32" else "within_tolerance"] = all(v < TOLERANCE for v in diff[k].values())
        if k in vs_fp32:
            report[k]["max_abs_vs_fp32"] = vs_fp32[k]
    return report


def run_parity(checkpoint: Path, models: dict[str, Path], eval_data: Path | None = None,
               tokenizer: Path | None = None, seed: int = 0, timeout: float = 1800) -> dict[str, Any]:
    """`compare` in a fresh Python process; its JSON report, or RuntimeError with the child's error output."""
    out = Path(next(iter(models.values()))).with_name("parity.json")
    cmd = [sys.executable, "-m", "export.parity", "--checkpoint", str(checkpoint), "--json", str(out), "--seed", str(seed)]
    for k, p in models.items():
        cmd += ["--model", f"{k}={p}"]
    if eval_data:
        cmd += ["--eval-data", str(eval_data)]
    if tokenizer:
        cmd += ["--tokenizer", str(tokenizer)]
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"parity check process failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    report = json.loads(out.read_text())
    out.unlink()
    return report


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m export.parity", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--model", action="append", required=True, help="LABEL=PATH (labels: fp32, int8)")
    p.add_argument("--eval-data")
    p.add_argument("--tokenizer")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", required=True)
    args = p.parse_args(argv)
    models = dict(m.split("=", 1) for m in args.model)
    report = compare(args.checkpoint, models, args.eval_data, args.tokenizer, args.seed)
    Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
