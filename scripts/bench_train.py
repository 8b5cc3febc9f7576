"""Training throughput (samples/s) of Self-MM on synthetic MOSI-shaped data on this CPU.

    python -m scripts.bench_train [--batches 12] [--threads 2]
    python -m scripts.bench_train --procs 1 2 [--batches 8] [--encoders MiniLM-L6] [--device cuda]

With `--procs`, whole training epochs of the real trainer on 1, 2, ... processes (gloo, one thread each, the
global batch of 16 split over them, selfmm/distributed.py), side by side with one process on `--threads`
threads, and the scaling efficiency: samples/s on N processes / (N x samples/s on 1 process of 1 thread).
`--device cuda` times one process on the GPU instead.

Random-weight encoders of the two sizes we use (all-MiniLM-L6-v2: 6 layers x 384; bert-base: 12 x 768): the
cost does not depend on the weights. One measured batch = forward, the four-head loss, backward, the ULGM
update and (every 4th batch) an Adam step, exactly the trainer's inner loop.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import time

import torch
import torch.multiprocessing as mp

from selfmm import distributed

from selfmm.config import dataset_configs
from selfmm.data import FeatureFile, load_feature_file, save_feature_file, synth_feature_file
from selfmm.model import SelfMM
from selfmm.train import Trainer, model_inputs

ENCODERS = {
    "MiniLM-L6 (22.7 M)": dict(model_type="bert", vocab_size=30522, hidden_size=384, num_hidden_layers=6,
                               num_attention_heads=12, intermediate_size=1536, max_position_embeddings=512),
    "BERT-base (109 M)": dict(model_type="bert", vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                              num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512),
}


def bench(name: str, encoder: dict, data: FeatureFile, batches: int) -> None:
    _, a, v = data.feature_dims
    model_cfg, cfg = dataset_configs("mosi", encoder, a, v)
    trainer = Trainer(SelfMM(model_cfg), cfg, data, torch.device("cpu"))
    trainer.model.train()
    loader = iter(trainer.train_loader)
    times = []
    for i in range(batches + 2):  # 2 warm-up batches
        batch = next(loader)
        t0 = time.perf_counter()
        out = trainer.model(**model_inputs(batch, trainer.device))
        loss, _ = trainer.ulgm.loss(out, batch["index"])
        loss.backward()
        trainer.ulgm.step({"fusion": out["Feature_f"], "text": out["Feature_t"], "audio": out["Feature_a"],
                           "vision": out["Feature_v"]}, batch["index"], epoch=2)
        if i % 4 == 3:
            trainer.optimizer.step()
            trainer.optimizer.zero_grad()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    bs = cfg.batch_size
    med = statistics.median(times)
    print(f"{name:22s} batch {bs:3d}: median {med * 1000:7.0f} ms/batch  {bs / med:6.1f} samples/s "
          f"(MOSI train epoch of 1284 samples: {1284 / (bs / med) / 60:.1f} min)")


def _epoch_worker(rank: int, world: int, port: int, path: str, encoder: dict, threads: int, device: str,
                  results) -> None:
    """One process of a timed run: a warm-up epoch, then one timed epoch (both with label updates)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(threads)
    ctx, _ = distributed.init(device)
    data = load_feature_file(path)
    _, a, v = data.feature_dims
    model_cfg, cfg = dataset_configs("mosi", encoder, a, v)
    torch.manual_seed(0)
    trainer = Trainer(SelfMM(model_cfg), cfg, data, torch.device(device), ctx=ctx)
    trainer.train_epoch(2)
    distributed.barrier(ctx)
    t0 = time.perf_counter()
    trainer.train_epoch(3)
    if device == "cuda":
        torch.cuda.synchronize()
    distributed.barrier(ctx)
    if ctx.main:
        results.put(time.perf_counter() - t0)
    distributed.close(ctx)


def timed_epoch(world: int, path: str, encoder: dict, threads: int, device: str = "cpu") -> float:
    """Seconds of one training epoch on `world` fresh processes."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_epoch_worker, args=(r, world, port, path, encoder, threads, device, results))
             for r in range(world)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    if any(proc.exitcode for proc in procs):
        raise SystemExit(f"a benchmark process failed (exit codes {[proc.exitcode for proc in procs]})")
    return results.get()


def bench_processes(args: argparse.Namespace) -> None:
    n = 16 * args.batches
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "mosi_synth.pkl")
        save_feature_file(path, synth_feature_file("mosi", n, 8, 8, seed=0))
        print(f"synthetic MOSI-shaped data: {n} training samples, global batch 16, {args.batches} batches an epoch; "
              f"torch {torch.__version__}, {os.cpu_count()} CPUs")
        for name, enc in ENCODERS.items():
            if not any(e in name for e in args.encoders):
                continue
            runs = [(f"1 process x {args.threads} threads", 1, timed_epoch(1, path, enc, args.threads))]
            runs += [(f"{w} process{'es' if w > 1 else ''} x 1 thread", w, timed_epoch(w, path, enc, 1))
                     for w in args.procs]
            if args.device == "cuda":
                runs.append(("1 GPU", 1, timed_epoch(1, path, enc, 1, "cuda")))
            one = next((n / t for label, w, t in runs if label == "1 process x 1 thread"), None)
            print(f"{name}:")
            for label, w, t in runs:
                eff = f"  scaling efficiency {n / t / (w * one):4.0%}" if one and w > 1 else ""
                print(f"  {label:24s} {t:7.1f} s/epoch  {n / t:7.1f} samples/s{eff}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, default=12)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--procs", type=int, nargs="+", help="time whole epochs on these numbers of processes")
    p.add_argument("--encoders", nargs="+", default=["MiniLM", "BERT"], help="with --procs: which encoders")
    p.add_argument("--device", default="cpu", help="with --procs: cuda adds a one-GPU run")
    args = p.parse_args()
    if args.procs:
        bench_processes(args)
        return
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "mosi_synth.pkl")
        save_feature_file(path, synth_feature_file("mosi", 16 * (args.batches + 2), 8, 8, seed=0))
        data = load_feature_file(path)
    print(f"synthetic MOSI-shaped data: text 50 tokens, audio 375 x 5, vision 500 x 20; torch {torch.__version__}, "
          f"{args.threads} threads")
    for name, enc in ENCODERS.items():
        bench(name, enc, data, args.batches)


if __name__ == "__main__":
    main()
