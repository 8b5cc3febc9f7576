"""ULGM: the unimodal label generation module of Self-MM, and the loss it weights.

Memory over the whole training split (indexed by position in the split): the last feature vector of every
sample for each head, the generated label of every sample for each modality, and the positive / negative class
centres recomputed from that memory after every batch. Formulas follow the reference code (docs/method.md maps
each line); the two guards (empty class, non-finite features) and presence masks are ours and are no-ops when
the data are complete and finite.
"""
from __future__ import annotations

import torch
from torch import Tensor

MIN = 1e-8
UNIMODAL = ("text", "audio", "vision")
ALL = ("fusion",) + UNIMODAL


class ULGM:
    def __init__(self, labels: Tensor, dims: dict[str, int], H: float, exclude_zero: bool = False,
                 present: dict[str, Tensor] | None = None, given: dict[str, Tensor] | None = None):
        """`labels`: the multimodal labels y_m of the train split; `dims`: feature size per head (fusion, text,
        audio, vision); `present`: per modality, which samples have it (all by default); `given`: per modality,
        unimodal labels the corpus states (NaN where it does not). A given label is used as is, with weight 1,
        and never regenerated (our extension, off in the paper's setting)."""
        n = labels.shape[0]
        self.H = H
        self.exclude_zero = exclude_zero
        self.labels = {m: labels.detach().float().clone() for m in ALL}  # all initialised to y_m
        self.features = {m: torch.zeros(n, dims[m]) for m in ALL}
        self.present = {m: torch.ones(n, dtype=torch.bool) for m in ALL}
        for m, mask in (present or {}).items():
            self.present[m] = mask.bool().clone()
        self.fixed = {m: torch.zeros(n, dtype=torch.bool) for m in ALL}
        for m, y in (given or {}).items():
            known = torch.isfinite(y)
            self.labels[m][known] = y[known].float()
            self.fixed[m] = known.clone()
        self.centres = {m: (torch.zeros(dims[m]), torch.zeros(dims[m])) for m in ALL}  # (pos, neg)
        self.empty_classes = 0  # how often a class was empty and its previous centre kept

    def to(self, device: torch.device | str) -> "ULGM":
        for d in (self.labels, self.features, self.present, self.fixed):
            for m in d:
                d[m] = d[m].to(device)
        self.centres = {m: (p.to(device), q.to(device)) for m, (p, q) in self.centres.items()}
        return self

    # -- loss -------------------------------------------------------------------------------------------
    def weights(self, idx: Tensor) -> dict[str, Tensor]:
        """tanh(|y_s - y_m|) per unimodal head (so 0 in epoch 1), 1 for a given label, 0 where the modality is
        absent."""
        y_m = self.labels["fusion"][idx]
        return {m: torch.where(self.fixed[m][idx], 1.0, torch.tanh((self.labels[m][idx] - y_m).abs()))
                * self.present[m][idx] for m in UNIMODAL}

    def loss(self, outputs: dict[str, Tensor], idx: Tensor, batch_size: int | None = None
             ) -> tuple[Tensor, dict[str, float]]:
        """L = mean|M - y_m| + sum_s mean(w_s * |s - y_s|), with this batch's labels before their update.
        `batch_size` (distributed training: the global batch's size) makes each mean this rank's sum over it,
        so that the losses, and gradients, summed over ranks are the global batch's."""
        def reduce(x: Tensor) -> Tensor:
            return x.mean() if batch_size is None else x.sum() / batch_size

        weights = self.weights(idx)
        parts = {"M": reduce((outputs["M"].view(-1) - self.labels["fusion"][idx]).abs())}
        for head, m in (("T", "text"), ("A", "audio"), ("V", "vision")):
            parts[head] = reduce(weights[m] * (outputs[head].view(-1) - self.labels[m][idx]).abs())
        return sum(parts.values()), {k: float(v.detach()) for k, v in parts.items()}

    # -- memory updates, in the reference's order: labels (from epoch 2), features, centres ----------------
    def step(self, features: dict[str, Tensor], idx: Tensor, epoch: int) -> None:
        """All ULGM work after a batch's backward pass. `features`: Feature_f/t/a/v keyed by head name."""
        features = {m: f.detach().float() for m, f in features.items()}
        if epoch > 1:
            self.update_labels(features, idx, epoch)
        self.update_features(features, idx)
        self.update_centres()

    def update_features(self, features: dict[str, Tensor], idx: Tensor) -> None:
        for m in ALL:
            finite = torch.isfinite(features[m]).all(dim=1)  # keep the previous row for a non-finite one
            self.features[m][idx[finite]] = features[m][finite]

    def update_centres(self) -> None:
        for m in ALL:
            y = self.labels[m]
            usable = self.present[m] & torch.isfinite(self.features[m]).all(dim=1)
            pos = usable & ((y > 0) if self.exclude_zero else (y >= 0))
            neg = usable & (y < 0)
            old_pos, old_neg = self.centres[m]
            self.centres[m] = (self._mean(self.features[m], pos, old_pos), self._mean(self.features[m], neg, old_neg))

    def _mean(self, feats: Tensor, mask: Tensor, previous: Tensor) -> Tensor:
        if not bool(mask.any()):
            self.empty_classes += 1
            return previous
        return feats[mask].mean(dim=0)

    def relative_distance(self, m: str, feats: Tensor) -> Tensor:
        """delta = (||F - C_neg|| - ||F - C_pos||) / (||F - C_pos|| + MIN), plain L2 norms as the code."""
        pos, neg = self.centres[m]
        d_p = torch.norm(feats - pos, dim=-1)
        d_n = torch.norm(feats - neg, dim=-1)
        return (d_n - d_p) / (d_p + MIN)

    def update_labels(self, features: dict[str, Tensor], idx: Tensor, epoch: int) -> None:
        y_m = self.labels["fusion"][idx]
        delta_f = self.relative_distance("fusion", features["fusion"])
        for m in UNIMODAL:
            delta_s = self.relative_distance(m, features[m])
            alpha = delta_s / (delta_f + MIN)
            new = (0.5 * alpha * y_m + 0.5 * (y_m + delta_s - delta_f)).clamp(-self.H, self.H)
            updated = (epoch - 1) / (epoch + 1) * self.labels[m][idx] + 2 / (epoch + 1) * new
            # absent, given or non-finite: keep the old label
            ok = self.present[m][idx] & ~self.fixed[m][idx] & torch.isfinite(updated)
            self.labels[m][idx] = torch.where(ok, updated, self.labels[m][idx])

    def label_stats(self) -> dict[str, dict[str, float]]:
        """Mean and spread of the generated labels per modality, over the samples that have it."""
        out = {}
        for m in UNIMODAL:
            y = self.labels[m][self.present[m]]
            out[m] = {"mean": float(y.mean()) if len(y) else 0.0, "std": float(y.std()) if len(y) > 1 else 0.0}
        return out
