"""Training throughput (samples/s) of Self-MM on synthetic MOSI-shaped data on this CPU.

    python -m scripts.bench_train [--batches 12] [--threads 2]

Random-weight encoders of the two sizes we use (all-MiniLM-L6-v2: 6 layers x 384; bert-base: 12 x 768): the
cost does not depend on the weights. One measured batch = forward, the four-head loss, backward, the ULGM
update and (every 4th batch) an Adam step, exactly the trainer's inner loop.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, default=12)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    import tempfile, os
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
