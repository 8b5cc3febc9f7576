"""Training on several processes (GPUs or machines) without changing what Self-MM computes.

    torchrun --nproc_per_node N -m selfmm.train ...

Each step trains on one *global* batch, the batch the single-process loader would draw from the same seed;
rank r takes the r-th of `world` near-equal slices of it. Every rank keeps the whole ULGM memory and applies
the same update with the features and indices gathered from all ranks, so the label maps and centres stay
those of one process. Gradients are summed over ranks before each Adam step (each rank's loss is its share of
the global batch's mean), so a step sees the gradient of the global batch. Evaluation splits a split into
contiguous blocks and gathers the predictions, so metrics are those of the whole split.

Why not DistributedSampler and DistributedDataParallel: DistributedSampler draws its own permutation and pads
the split with repeated samples (whose ULGM labels would then move twice an epoch); DDP reduces gradients on
every synchronised backward and needs every parameter used on every rank, which a short last batch (fewer
samples than ranks) or a batch without text breaks. Self-MM steps once per 4 batches, so one gradient
reduction per step is all DDP would do with `no_sync` anyway.

Without torchrun's environment (WORLD_SIZE unset or 1) nothing here runs a collective and the trainer
behaves exactly as before.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn, Tensor
from torch.utils.data import DataLoader, default_collate

from selfmm.data import MMSADataset, Split

BUCKET = 1 << 24  # elements per gradient all-reduce (64 MiB of float32)


class DistributedError(RuntimeError):
    """A setting that cannot be trained on this many processes, or a rank that failed."""


@dataclass(frozen=True)
class Context:
    """Where this process stands: rank among `world` processes, its GPU index on its machine, the backend."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0 alone writes logs, checkpoints and results."""
        return self.rank == 0


SINGLE = Context()


def init(device: str | None = None, timeout_minutes: float = 30.0) -> tuple[Context, torch.device | None]:
    """The context from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) and this
    rank's device: cuda:LOCAL_RANK with NCCL when CUDA is available (or `device` asks for it), the CPU with
    gloo otherwise. A lone process gets (SINGLE, the requested device or None) and no process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE, torch.device(device) if device else None
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    kind = torch.device(device).type if device else ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise DistributedError(f"rank {rank}: LOCAL_RANK {local_rank} but {torch.cuda.device_count()} GPUs on "
                                   "this machine; start at most one process per GPU (--nproc_per_node)")
        torch.cuda.set_device(local_rank)
        backend, where = "nccl", torch.device("cuda", local_rank)
    else:
        backend, where = "gloo", torch.device(kind)
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(minutes=timeout_minutes))
    return Context(rank, world, local_rank, backend), where


def close(ctx: Context) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def per_rank_batch(global_batch: int, world: int) -> int:
    """The batch each rank trains on: the global batch (MMSA's batch size) split evenly, so that a step sees
    the same samples whatever the number of processes."""
    if global_batch % world:
        raise DistributedError(f"the batch size {global_batch} is not divisible by the {world} processes; use a "
                               f"number of processes that divides it (or --batch-size a multiple of {world})")
    return global_batch // world


def shares(n: int, world: int) -> list[int]:
    """Sizes of the `world` near-equal slices of n items (torch.tensor_split's), known to every rank."""
    return [n // world + (r < n % world) for r in range(world)]


def slice_of(ctx: Context, n: int) -> slice:
    sizes = shares(n, ctx.world)
    start = sum(sizes[: ctx.rank])
    return slice(start, start + sizes[ctx.rank])


class ShardedLoader:
    """Global batches in exactly the single-process loader's order (same sampler, same seeded generator, so
    the same draws). Each rank yields its slice as a collated batch (None where a short last batch leaves it
    none), the global batch's positions in the split, and every rank's slice size."""

    def __init__(self, split: Split, global_batch: int, seed: int, ctx: Context):
        generator = torch.Generator()
        generator.manual_seed(seed)
        # A loader over positions draws the permutation exactly as make_loader's loader over the samples does.
        self.order = DataLoader(range(len(split)), batch_size=global_batch, shuffle=True, num_workers=0,
                                drop_last=False, generator=generator)
        self.dataset = MMSADataset(split)
        self.ctx = ctx

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[tuple[dict[str, Tensor] | None, Tensor, list[int]]]:
        for positions in self.order:
            sizes = shares(len(positions), self.ctx.world)
            mine = positions[slice_of(self.ctx, len(positions))].tolist()
            yield (default_collate([self.dataset[i] for i in mine]) if mine else None), positions, sizes


def gather_rows(x: Tensor, sizes: list[int], ctx: Context) -> Tensor:
    """Concatenate every rank's rows (rank order) on every rank; `sizes[r]` rows come from rank r."""
    if not ctx.distributed:
        return x
    rows = max(sizes)
    padded = torch.zeros((rows, *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[: len(x)] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)])


def all_reduce_gradients(params: list[nn.Parameter], ctx: Context) -> None:
    """Sum the gradients over ranks. A parameter none of the ranks gave a gradient keeps `grad=None` (so Adam
    leaves it alone, as one process would); one that some ranks lack counts zero there."""
    if not ctx.distributed or not params:
        return
    device = params[0].device
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=device)
    dist.all_reduce(has)
    bucket: list[nn.Parameter] = []
    for p, h in zip(params, has.tolist()):
        if h == 0:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        bucket.append(p)
        if sum(q.numel() for q in bucket) >= BUCKET:
            _reduce_bucket(bucket)
            bucket = []
    _reduce_bucket(bucket)


def _reduce_bucket(bucket: list[nn.Parameter]) -> None:
    if not bucket:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in bucket])
    dist.all_reduce(flat)
    for p, g in zip(bucket, flat.split([p.numel() for p in bucket])):
        p.grad.copy_(g.view_as(p.grad))


def broadcast_state(module: nn.Module, ctx: Context) -> None:
    """Rank 0's parameters and buffers on every rank (they start equal from one seed; this makes it certain)."""
    if ctx.distributed:
        for t in module.state_dict().values():
            dist.broadcast(t, 0)


def sum_over_ranks(values: dict[str, float], ctx: Context, device: torch.device) -> dict[str, float]:
    if not ctx.distributed:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(values, t.tolist()))


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def report_failure(ctx: Context, exc: BaseException) -> None:
    """One line on stderr naming the failed rank; torchrun then stops the other ranks and prints the trace."""
    where = f"rank {ctx.rank} of {ctx.world}" if ctx.distributed else "training"
    print(f"selfmm.train: {where} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
