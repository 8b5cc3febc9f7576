"""Train Self-MM as MMSA's trainer does, one run per seed, and write checkpoints, logs and results.

    python -m selfmm.train --dataset mosi --data unaligned_50.pkl --text-encoder DIR --seeds 1111 1112 --out runs/x
    torchrun --standalone --nproc_per_node N -m selfmm.train ...   (N processes, the same training: see
                                                                    selfmm/distributed.py)

Per epoch: every batch is a forward pass, the weighted L1 loss of the four heads with the ULGM's labels, a
backward pass (gradients summed), the ULGM update and, every 4th batch, an Adam step. After the epoch the
validation MAE of M selects the best state; 8 epochs without improvement stop the run; the best state is
restored and the test split is evaluated once. A caller can select by another score of the validation split
(`Trainer(score=...)`, `main(argv, score=...)`; the default model's builder does), lower being better. With
`--set ema_decay=D` (our extension, off by default) the validated, selected and saved weights are an exponential
moving average of the trained ones, updated after every Adam step; training itself (and the ULGM's features)
still uses the live weights.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.distributed.elastic.multiprocessing.errors import record
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from selfmm import distributed
from selfmm.branches import BranchBest, BranchScore
from selfmm.config import ModelConfig, TrainConfig, dataset_configs, DATASETS
from selfmm.contract import HEADS
from selfmm.data import FeatureFile, MMSADataset, Split, load_feature_file, make_loader, trim_batch
from selfmm.distributed import SINGLE, Context
from selfmm.features.spec import file_sha256
from selfmm.metrics import metrics_for
from selfmm.model import SelfMM, load_text_encoder_config
from selfmm.ulgm import ALL, ULGM

CHECKPOINT_FORMAT = 1
# A selection score of the validation split from (outputs per head, labels, ids); lower is better.
Score = Callable[[dict[str, np.ndarray], np.ndarray, np.ndarray], float]


def mae_of_m(outputs: dict[str, np.ndarray], labels: np.ndarray, ids: np.ndarray) -> float:
    """MMSA's selection score: the validation MAE of the fused head M, rounded to 4 decimals as MMSA rounds
    its validation loss before comparing it (`round(eval_loss, 4)`): a gain under 5e-5 does not count."""
    return round(float(np.mean(np.abs(outputs["M"] - labels))), 4)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def param_groups(model: SelfMM, cfg: TrainConfig) -> list[dict[str, Any]]:
    """The reference's five Adam groups: BERT with / without decay, audio LSTM, video LSTM, everything else."""
    no_decay = ("bias", "LayerNorm.bias", "LayerNorm.weight")
    bert = list(model.text_model.named_parameters())
    other = [p for n, p in model.named_parameters()
             if not n.startswith(("text_model.", "audio_model.", "video_model."))]
    return [
        {"params": [p for n, p in bert if not any(k in n for k in no_decay)], "lr": cfg.lr_bert, "weight_decay": cfg.wd_bert},
        {"params": [p for n, p in bert if any(k in n for k in no_decay)], "lr": cfg.lr_bert, "weight_decay": 0.0},
        {"params": list(model.audio_model.parameters()), "lr": cfg.lr_audio, "weight_decay": cfg.wd_audio},
        {"params": list(model.video_model.parameters()), "lr": cfg.lr_video, "weight_decay": cfg.wd_video},
        {"params": other, "lr": cfg.lr_other, "weight_decay": cfg.wd_other},
    ]


def presence(split: Split) -> dict[str, torch.Tensor]:
    """Which training samples have each modality (our extension; all True for MMSA's files)."""
    return {"text": torch.from_numpy(split.text_mask.sum(1) > 0),
            "audio": torch.from_numpy(split.audio_lengths > 0),
            "vision": torch.from_numpy(split.vision_lengths > 0)}


def model_inputs(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """The model's inputs on `device`, trimmed to the batch's longest sequences (selfmm.data.trim_batch)."""
    return {k: v.to(device) for k, v in trim_batch(batch).items()}


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast where asked (meant for GPUs), nothing otherwise."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


@torch.no_grad()
def predict(model: SelfMM, loader, device: torch.device, bf16: bool = False
            ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    model.eval()
    outs: dict[str, list[np.ndarray]] = {h: [] for h in HEADS}
    labels = []
    for batch in loader:
        with autocast(device, bf16):
            out = model(**model_inputs(batch, device))
        for h in outs:
            outs[h].append(out[h].view(-1).float().cpu().numpy())
        labels.append(batch["labels"].view(-1).numpy())
    return {h: np.concatenate(v) for h, v in outs.items()}, np.concatenate(labels)


@dataclass
class RunResult:
    seed: int
    best_epoch: int
    epochs: int
    valid: dict[str, float]
    test: dict[str, float]
    checkpoint: Path
    branch_epochs: dict[str, int] | None = None  # where the run kept an assembly of epochs (selfmm.branches)


class Trainer:
    """One seed's run. Kept as a small class so tests can drive single epochs. With a distributed `ctx` this
    process trains its slice of every global batch (selfmm/distributed.py); all ranks hold the same ULGM."""

    def __init__(self, model: SelfMM, cfg: TrainConfig, data: FeatureFile, device: torch.device | None = None,
                 score: Score = mae_of_m, ctx: Context = SINGLE, branch_score: BranchScore | None = None):
        self.model, self.cfg, self.data, self.score, self.ctx = model, cfg, data, score, ctx
        self.branch_score = branch_score
        self.assembly: dict[str, int] | None = None  # the epoch of each branch, where fit kept an assembly
        self.device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if ctx.distributed:
            distributed.per_rank_batch(cfg.batch_size, ctx.world)  # refuses a batch the ranks cannot share
        if cfg.bf16 and self.device.type != "cuda":
            raise ValueError(f"bf16 autocast is for GPUs; this run is on {self.device} (drop --bf16): PyTorch's "
                             "CPU LSTM has no bf16 kernel on most CPUs")
        train = data.splits["train"]
        if model.config.normalize_inputs:
            for m in ("audio", "vision"):
                model.set_input_stats(m, torch.from_numpy(getattr(train, m)), torch.from_numpy(getattr(train, f"{m}_lengths")))
        self.model.to(self.device)
        distributed.broadcast_state(self.model, ctx)
        self.optimizer = torch.optim.Adam(param_groups(model, cfg))
        self.dims = dims = {"fusion": model.config.post_fusion_dim, "text": model.config.post_text_dim,
                            "audio": model.config.post_audio_dim, "vision": model.config.post_video_dim}
        given = ({m: torch.from_numpy(train.unimodal_labels[k]) for k, m in (("T", "text"), ("A", "audio"), ("V", "vision"))
                  if k in train.unimodal_labels} if cfg.given_unimodal_labels else None)
        self.ulgm = ULGM(torch.from_numpy(train.labels), dims, cfg.H, cfg.exclude_zero, presence(train),
                         given).to(self.device)
        self.train_loader = (distributed.ShardedLoader(train, cfg.batch_size, cfg.seed, ctx) if ctx.distributed
                             else make_loader(train, cfg.batch_size, shuffle=True, seed=cfg.seed))
        self.metric_fn = metrics_for(cfg.dataset)
        self.optimizer_steps = 0
        self.ema = (torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
            if cfg.ema_decay > 0 else None)

    @property
    def eval_model(self) -> SelfMM:
        """The weights that are validated and kept: the moving average where there is one."""
        return self.ema.module if self.ema is not None else self.model

    def train_epoch(self, epoch: int, progress: bool = False) -> dict[str, float]:
        """One epoch, with the reference's accumulation: zero_grad before every group of `update_every`
        batches, step after its last; a trailing partial group is never stepped unless `step_remainder`."""
        self.model.train()
        n_batches = len(self.train_loader)
        sums = {h: 0.0 for h in HEADS}
        bar = tqdm(self.train_loader, desc=f"epoch {epoch}", leave=False, disable=not progress)
        for i, item in enumerate(bar):
            if i % self.cfg.update_every == 0:
                self.optimizer.zero_grad()
            features, idx, parts = self.train_batch(*item) if self.ctx.distributed else self.train_batch(item)
            self.ulgm.step(features, idx, epoch)
            group_done = (i + 1) % self.cfg.update_every == 0
            if group_done or (self.cfg.step_remainder and i == n_batches - 1):
                distributed.all_reduce_gradients(list(self.model.parameters()), self.ctx)
                self.optimizer.step()
                self.optimizer_steps += 1
                if self.ema is not None:
                    self.ema.update_parameters(self.model)
            for h in sums:
                sums[h] += parts[h]
            bar.set_postfix(loss=f"{sum(parts.values()):.3f}")
        sums = distributed.sum_over_ranks(sums, self.ctx, self.device)  # each rank's share of every batch mean
        return {f"loss_{h}": v / max(n_batches, 1) for h, v in sums.items()}

    def train_batch(self, batch: dict[str, torch.Tensor] | None, positions: torch.Tensor | None = None,
                    sizes: list[int] | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, float]]:
        """Forward, loss and backward of this process's part of a batch. Returns the ULGM features and split
        positions of the whole batch (gathered from every rank when distributed) and this rank's loss parts."""
        if batch is None:  # this rank's slice of a short last batch is empty
            features = {m: torch.zeros(0, d, device=self.device) for m, d in self.dims.items()}
            parts = {h: 0.0 for h in HEADS}
        else:
            idx = batch["index"].to(self.device)
            with autocast(self.device, self.cfg.bf16):
                out = self.model(**model_inputs(batch, self.device))
            loss, parts = self.ulgm.loss(out, idx, sum(sizes) if sizes else None)
            loss.backward()
            features = {"fusion": out["Feature_f"], "text": out["Feature_t"], "audio": out["Feature_a"],
                        "vision": out["Feature_v"]}
        if not self.ctx.distributed:
            return features, idx, parts
        rows = torch.cat([features[m].detach().float() for m in ALL], dim=1)
        rows = distributed.gather_rows(rows, sizes, self.ctx)
        return dict(zip(ALL, rows.split([self.dims[m] for m in ALL], dim=1))), positions.to(self.device), parts

    def evaluate(self, split: str, score: bool = False) -> dict[str, Any]:
        """The metrics of M on `split`; with `score`, also the selection score (key "score") and, with a
        `branch_score`, each branch's score (key "branches")."""
        data = self.data.splits[split]
        if self.ctx.distributed:
            preds, labels = self.predict_sharded(data)
        else:
            preds, labels = predict(self.eval_model, make_loader(data, self.cfg.batch_size, shuffle=False),
                                    self.device, self.cfg.bf16)
        metrics = self.metric_fn(preds["M"], labels)
        if not score:
            return metrics
        metrics["score"] = self.score(preds, labels, data.ids)
        if self.branch_score is not None:
            metrics["branches"] = self.branch_score(preds, labels, data.ids)
        return metrics

    def predict_sharded(self, data: Split) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The whole split's outputs, in order, on every rank: each predicts a contiguous block of it."""
        rows = distributed.slice_of(self.ctx, len(data))
        local = torch.zeros(0, 4, device=self.device)
        if rows.stop > rows.start:
            loader = DataLoader(Subset(MMSADataset(data), range(rows.start, rows.stop)), batch_size=self.cfg.batch_size)
            preds, _ = predict(self.eval_model, loader, self.device, self.cfg.bf16)
            local = torch.from_numpy(np.stack([preds[h] for h in HEADS], axis=1)).to(self.device)
        every = distributed.gather_rows(local, distributed.shares(len(data), self.ctx.world), self.ctx).cpu().numpy()
        return {h: every[:, j] for j, h in enumerate(HEADS)}, data.labels

    def fit(self, log: Callable[[dict], None] = lambda r: None, progress: bool = False,
            on_epoch: Callable[[int, ULGM], None] | None = None) -> tuple[int, int, dict[str, float]]:
        """Train until early stopping; restore and return (best epoch, epochs run, best validation metrics).
        With a `branch_score`, the restored state may be an assembly of branches from different epochs
        (selfmm.branches), kept only where its validation score beats the best epoch's (`self.assembly`), and
        training stops only when neither the whole model nor any branch has improved for `early_stop` epochs."""
        best_score, best_epoch, best_state, best_valid, epoch = float("inf"), 0, None, {}, 0
        branch_best = BranchBest() if self.branch_score is not None else None
        while self.cfg.max_epochs is None or epoch < self.cfg.max_epochs:
            epoch += 1
            t0 = time.time()
            losses = self.train_epoch(epoch, progress)
            valid = self.evaluate("valid", score=True)
            improved = valid["score"] <= best_score - 1e-6
            if improved:
                best_score, best_epoch, best_valid = valid["score"], epoch, valid
                best_state = {k: v.detach().cpu().clone() for k, v in self.eval_model.state_dict().items()}
            if branch_best is not None:
                branch_best.update(epoch, valid["branches"], self.eval_model.state_dict())
            log({"epoch": epoch, **losses, "valid": valid, "best_epoch": best_epoch,
                 "labels": self.ulgm.label_stats(), "optimizer_steps": self.optimizer_steps,
                 "seconds": round(time.time() - t0, 2)})
            if on_epoch:
                on_epoch(epoch, self.ulgm)
            # with branches kept apart, a branch still improving keeps the run going (it may peak after the whole)
            last_gain = max(best_epoch, branch_best.last_gain if branch_best is not None else 0)
            if epoch - last_gain >= self.cfg.early_stop:
                break
        if best_state is not None:
            self.model.load_state_dict(best_state)
            self.ema = None  # the restored state is the average; evaluate it as it is
            if branch_best is not None:
                best_valid = self.keep_best_assembly(branch_best, best_state, best_valid)
        return best_epoch, epoch, best_valid

    def keep_best_assembly(self, branch_best: BranchBest, best_state: dict[str, torch.Tensor],
                           best_valid: dict[str, Any]) -> dict[str, Any]:
        """Validate each assembly of the branches' best epochs; load the best if it beats `best_state` (already
        loaded, scoring `best_valid`) and return the validation metrics of what is loaded."""
        winner, state = None, best_state
        for epochs, candidate in branch_best.candidates(best_state):
            self.model.load_state_dict(candidate)
            valid = self.evaluate("valid", score=True)
            if valid["score"] <= best_valid["score"] - 1e-6:
                winner, state, best_valid = epochs, candidate, valid
        self.model.load_state_dict(state)
        self.assembly = winner
        return best_valid


def encoder_name(encoder_dir: Path) -> str:
    """A readable name: the default encoder's package folder is called just `model`."""
    from selfmm.features.text import DEFAULT_ENCODER, default_encoder_dir

    try:
        if Path(encoder_dir).resolve() == default_encoder_dir().resolve():
            return DEFAULT_ENCODER
    except ImportError:
        pass
    return Path(encoder_dir).name


def read_tokenizer(encoder_dir: Path) -> str | None:
    path = Path(encoder_dir) / "tokenizer.json"
    return path.read_text() if path.exists() else None


def save_checkpoint(path: Path, model: SelfMM, cfg: TrainConfig, data: FeatureFile, *, encoder_dir: Path,
                    data_path: Path, result: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    """Everything needed to rebuild and export the model without any other file."""
    torch.save({
        "format": CHECKPOINT_FORMAT,
        "model_config": model.config.to_dict(),
        "train_config": cfg.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "feature_specs": data.specs,
        "text_encoder": {"name": encoder_name(encoder_dir), "tokenizer_json": read_tokenizer(encoder_dir)},
        "data": {"file": Path(data_path).name, "sha256": file_sha256(Path(data_path)),
                 "sizes": {k: len(s) for k, s in data.splits.items()},
                 "train_present": {m: int(v.sum()) for m, v in presence(data.splits["train"]).items()}},
        "result": result,
        **(extra or {}),
    }, path)


def load_checkpoint(path: Path) -> tuple[SelfMM, dict[str, Any]]:
    """Rebuild a model from `best.pt` (a torch file: load only checkpoints you trust)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a Self-MM checkpoint of format {CHECKPOINT_FORMAT}")
    model = SelfMM(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt


def summarize(results: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation over seeds, x100 and rounded to 2 decimals like MMSA's table."""
    keys = results[0].keys()
    return {k: {"mean": round(float(np.mean([r[k] for r in results])) * 100, 2),
                "std": round(float(np.std([r[k] for r in results])) * 100, 2)} for k in keys}


def plot_labels(history: dict[int, dict[str, np.ndarray]], path: Path, n: int = 12) -> None:
    """Trajectories of the generated labels of a few samples over epochs (one panel per modality)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = sorted(history)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
    for ax, m in zip(axes, ("text", "audio", "vision")):
        traj = np.stack([history[e][m][:n] for e in epochs])
        fused = history[epochs[0]]["fusion"][:n]
        for j in range(traj.shape[1]):
            line, = ax.plot(epochs, traj[:, j], marker=".")
            ax.axhline(fused[j], color=line.get_color(), lw=0.6, ls=":")
        ax.set_title(f"generated {m} labels (dotted: y_m)")
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("label")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def apply_overrides(model_cfg: ModelConfig, cfg: TrainConfig, pairs: list[str]) -> tuple[ModelConfig, TrainConfig]:
    """KEY=VALUE pairs (JSON values) replacing fields of the model or training config."""
    for pair in pairs:
        key, _, raw = pair.partition("=")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        target = next((c for c in (model_cfg, cfg) if key in {f.name for f in fields(c)}), None)
        if target is None or key in ("text_encoder", "dataset"):
            raise SystemExit(f"--set {pair}: no such model or training option")
        setattr(target, key, value)
    return model_cfg, cfg


def run_seed(args: argparse.Namespace, data: FeatureFile, seed: int, out: Path, score: Score = mae_of_m,
             ctx: Context = SINGLE, device: torch.device | None = None,
             branch_score: BranchScore | None = None) -> RunResult:
    """One seed. Distributed, every rank trains; rank 0 alone writes the log, labels and checkpoint."""
    set_seed(seed)
    text_cfg = load_text_encoder_config(str(args.text_encoder))
    _, audio_dim, vision_dim = data.feature_dims
    model_cfg, cfg = dataset_configs(args.dataset, text_cfg, audio_dim, vision_dim, seed=seed,
                                     max_epochs=args.max_epochs, exclude_zero=args.exclude_zero,
                                     step_remainder=args.step_remainder, batch_size=args.batch_size,
                                     bf16=args.bf16 or None)
    model_cfg, cfg = apply_overrides(model_cfg, cfg, args.set)
    model = SelfMM.from_pretrained_text(model_cfg, str(args.text_encoder))
    if device is None and args.device:
        device = torch.device(args.device)
    trainer = Trainer(model, cfg, data, device, score, ctx, branch_score)
    if ctx.distributed:
        set_seed(seed + ctx.rank)  # the same initial weights everywhere, then each rank its own dropout masks
    history: dict[int, dict[str, np.ndarray]] = {}
    if ctx.main:
        out.mkdir(parents=True, exist_ok=True)
    log_file = open(out / "log.jsonl", "w") if ctx.main else None

    def log(record: dict) -> None:
        if log_file is None:
            return
        log_file.write(json.dumps(record) + "\n")
        log_file.flush()
        v = record["valid"]
        print(f"seed {seed} epoch {record['epoch']}: loss M {record['loss_M']:.4f} T {record['loss_T']:.4f} "
              f"A {record['loss_A']:.4f} V {record['loss_V']:.4f} | valid MAE {v['MAE']:.4f} "
              f"Corr {v['Corr']:.4f} score {v['score']:.4f} | best epoch {record['best_epoch']}", file=sys.stderr)

    def keep_labels(epoch: int, ulgm: ULGM) -> None:
        history[epoch] = {m: y.cpu().numpy().copy() for m, y in ulgm.labels.items()}

    best_epoch, epochs, valid = trainer.fit(log, progress=not args.quiet and ctx.main,
                                            on_epoch=keep_labels if args.save_labels and ctx.main else None)
    if log_file is not None:
        log_file.close()
    if trainer.assembly and ctx.main:
        print(f"seed {seed}: kept each branch at its own epoch {trainer.assembly}, valid score {valid['score']:.4f}",
              file=sys.stderr)
    test = trainer.evaluate("test")
    ckpt = out / "best.pt"
    if ctx.main:
        if args.save_labels:
            np.savez_compressed(out / "labels.npz", **{f"{m}_epoch{e}": y for e, d in history.items()
                                                       for m, y in d.items()}, ids=data.splits["train"].ids)
            plot_labels(history, out / "labels.png")
        save_checkpoint(ckpt, trainer.model, cfg, data, encoder_dir=args.text_encoder, data_path=args.data,
                        result={"seed": seed, "best_epoch": best_epoch, "epochs": epochs, "valid": valid, "test": test,
                                "processes": ctx.world, "branch_epochs": trainer.assembly})
    return RunResult(seed, best_epoch, epochs, valid, test, ckpt, trainer.assembly)


@record  # under torchrun: the failed rank's traceback in torchrun's summary
def main(argv: list[str] | None = None, score: Score = mae_of_m, branch_score: BranchScore | None = None) -> None:
    """The command line; `score` selects the epoch of each seed and the seed that is copied to best.pt;
    `branch_score`, where given, lets each branch keep its own best epoch (Trainer.keep_best_assembly)."""
    p = argparse.ArgumentParser(prog="python -m selfmm.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=DATASETS, help="picks hyper-parameters and metrics")
    p.add_argument("--data", required=True, type=Path, help="MMSA-format feature file (trusted pickle)")
    p.add_argument("--text-encoder", required=True, type=Path, help="local BERT-architecture encoder folder")
    p.add_argument("--seeds", type=int, nargs="+", default=[1111, 1112, 1113, 1114, 1115])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--max-epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None,
                   help="override the dataset's batch size (the global batch: split over the processes)")
    p.add_argument("--exclude-zero", action=argparse.BooleanOptionalAction, default=False,
                   help="leave zero labels out of the positive centre (MMSA v2); default: the published table's")
    p.add_argument("--step-remainder", action="store_true",
                   help="fix the reference's bug: also step on the last, partial group of batches of an epoch")
    p.add_argument("--save-labels", action="store_true", help="save generated labels per epoch and plot them")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override a model or training option, e.g. a_lstm_hidden=32 normalize_inputs=true")
    p.add_argument("--device", default=None, help="cpu or cuda; under torchrun cuda means cuda:LOCAL_RANK")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (for GPUs; off by default, as the paper)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)

    ctx, device = distributed.init(args.device)
    try:
        data = load_feature_file(args.data)
        if ctx.main:
            args.out.mkdir(parents=True, exist_ok=True)
        runs = [run_seed(args, data, seed, args.out / f"seed-{seed}", score, ctx, device, branch_score)
                for seed in args.seeds]
        if ctx.main:
            write_results(args, runs)
        distributed.barrier(ctx)
    except Exception as exc:
        distributed.report_failure(ctx, exc)
        raise
    finally:
        distributed.close(ctx)


def write_results(args: argparse.Namespace, runs: list[RunResult]) -> None:
    best = min(runs, key=lambda r: r.valid.get("score", float("inf")))  # the best epoch's selection score
    shutil.copy(best.checkpoint, args.out / "best.pt")
    results = {"dataset": args.dataset, "data": str(args.data), "seeds": {r.seed: {"best_epoch": r.best_epoch,
               "epochs": r.epochs, "valid": r.valid, "test": r.test, "branch_epochs": r.branch_epochs} for r in runs},
               "test_x100": summarize([r.test for r in runs]), "best_seed": best.seed}
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    table = results["test_x100"]
    print("test (x100, mean ± std over seeds): " + "  ".join(f"{k} {v['mean']:.2f}±{v['std']:.2f}" for k, v in table.items()))


if __name__ == "__main__":
    main()
