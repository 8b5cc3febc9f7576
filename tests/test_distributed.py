"""Training on 2 processes (torchrun, gloo, CPU) is training on 1: same ULGM labels, same validation metrics.

Dropout is off in this test (encoder and heads): a rank draws dropout masks for its own rows, so with dropout
the two runs would differ by design, not by a fault. Everything else is the paper's setting, on tiny shapes.
"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel

from selfmm.data import FeatureFile, make_loader, save_feature_file, synth_feature_file
from selfmm.distributed import Context, DistributedError, ShardedLoader, per_rank_batch, shares
from selfmm.train import main

ROOT = Path(__file__).resolve().parents[1]
SHAPE = dict(audio_len=20, vision_len=16, text_len=16, text_vocab=1200)
NO_DROPOUT = ["post_fusion_dropout=0", "post_text_dropout=0", "post_audio_dropout=0", "post_video_dropout=0"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    cfg = BertConfig(vocab_size=1200, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(root / "bert")
    # 89 = 11 batches of 8 + 1: the last global batch leaves rank 1 nothing; 31 validation rows split 16 / 15
    save_feature_file(root / "synth.pkl", synth_feature_file("mosi", 89, 31, 17, seed=0, **SHAPE))
    return root


def args(setup: Path, out: Path) -> list[str]:
    return ["--dataset", "mosi", "--data", str(setup / "synth.pkl"), "--text-encoder", str(setup / "bert"),
            "--seeds", "1111", "--out", str(out), "--max-epochs", "3", "--batch-size", "8", "--save-labels",
            "--quiet", "--device", "cpu", "--set", *NO_DROPOUT]


def torchrun(n: int, argv: list[str], script: list[str] | None = None) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node n` of selfmm.train (or `script`), one thread a worker."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
           *(script or ["-m", "selfmm.train"]), *argv]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and its workers, not only torchrun
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_two_processes_train_as_one(setup, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun worker
    try:
        main(args(setup, one))
    finally:
        torch.set_num_threads(threads)
    r = torchrun(2, args(setup, two))
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = np.load(one / "seed-1111" / "labels.npz"), np.load(two / "seed-1111" / "labels.npz")
    for m in ("text", "audio", "vision"):
        assert not np.allclose(a[f"{m}_epoch3"], a["fusion_epoch3"])  # the labels did move
        for e in (1, 2, 3):
            # The runs differ only in the order of float32 sums (a batch's gradient as two halves plus an
            # all-reduce; forward passes on half batches agree to 6e-8). The label formula divides by delta_f,
            # which amplifies that noise on samples whose delta_f is near 0. How far depends on the CPU's float
            # kernels and from run to run: 3 of 801 labels above 1e-5 on one machine (max 2.8e-5, median 6e-8);
            # on another, medians up to 1.2e-6 and maxima up to 7.9e-5. A wrong shard, gather or gradient scale
            # moves labels by 1e-2 and more, so the bounds sit between the two.
            gap = np.abs(b[f"{m}_epoch{e}"] - a[f"{m}_epoch{e}"])
            assert np.median(gap) <= 1e-5 and gap.max() <= 1e-3, (m, e, np.median(gap), np.sort(gap)[-5:])
    logs = [[json.loads(x) for x in (d / "seed-1111" / "log.jsonl").read_text().splitlines()] for d in (one, two)]
    assert len(logs[0]) == len(logs[1]) == 3
    for x, y in zip(*logs):
        assert x["optimizer_steps"] == y["optimizer_steps"]
        for k, v in x["valid"].items():
            assert y["valid"][k] == pytest.approx(v, abs=2e-4), k  # 4-decimal metrics: at most one unit apart
        for h in "MTAV":
            assert y[f"loss_{h}"] == pytest.approx(x[f"loss_{h}"], abs=1e-5)
    assert sorted(p.name for p in (two / "seed-1111").iterdir()) == ["best.pt", "labels.npz", "labels.png",
                                                                       "log.jsonl"]  # one writer: rank 0
    results = json.loads((two / "results.json").read_text())
    assert results["seeds"]["1111"]["test"]["MAE"] == pytest.approx(
        json.loads((one / "results.json").read_text())["seeds"]["1111"]["test"]["MAE"], abs=2e-4)


def test_a_failing_rank_stops_the_run_with_its_name(setup, tmp_path):
    script = tmp_path / "fail_rank_1.py"
    script.write_text("import os, sys\nfrom selfmm import train\n"
                      "if os.environ['RANK'] == '1':\n"
                      "    def boom(self, *a, **k):\n        raise RuntimeError('injected failure')\n"
                      "    train.Trainer.train_epoch = boom\n"
                      "train.main(sys.argv[1:])\n")
    r = torchrun(2, args(setup, tmp_path / "out"), [str(script)])
    assert r.returncode != 0
    assert "rank 1 of 2 failed: RuntimeError: injected failure" in r.stderr


def test_sharded_loader_draws_the_single_process_order():
    split = FeatureFile.from_dict(synth_feature_file("mosi", 21, 2, 2, seed=1, audio_len=4, vision_len=4))["train"]
    for world in (1, 2, 3):
        single = make_loader(split, 8, shuffle=True, seed=7)
        loaders = [ShardedLoader(split, 8, 7, Context(rank, world)) for rank in range(world)]
        for epoch in range(2):  # the generator carries over from epoch to epoch as the single loader's does
            ref = [b["index"] for b in single]
            batches = [list(loader) for loader in loaders]
            assert len(batches[0]) == len(ref) == len(loaders[0]) == 3
            for i, r in enumerate(ref):
                parts = [b[i][0]["index"] for b in batches if b[i][0] is not None]
                assert torch.equal(torch.cat(parts), r) and torch.equal(batches[0][i][1], r)
                assert batches[0][i][2] == shares(len(r), world)


def test_the_global_batch_must_split_evenly():
    assert per_rank_batch(32, 4) == 8
    with pytest.raises(DistributedError, match="batch size 16 is not divisible by the 3 processes"):
        per_rank_batch(16, 3)
    assert shares(9, 2) == [5, 4] and shares(1, 2) == [1, 0]


def test_world_size_that_does_not_divide_the_batch_is_refused_by_the_cli(setup, tmp_path):
    r = torchrun(2, args(setup, tmp_path / "out") + ["--batch-size", "7"])
    assert r.returncode != 0 and "not divisible by the 2 processes" in r.stderr
