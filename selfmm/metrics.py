"""Regression metrics exactly as MMSA's `metricsTop` computes them, so numbers compare with published tables.

Behaviour kept on purpose (see reference section 4):
- inputs are flattened and cast to float32, like the torch tensors MMSA converts (bin edges such as 0.1 are
  then compared in float32, which decides samples that sit exactly on an edge);
- `np.round` rounds half to even (2.5 -> 2, -0.5 -> -0), which decides Mult_acc_5/7 on labels like 2.5;
- weighted F1 with the (true, pred) argument order that MMSA uses since April 2021;
- every value is rounded to 4 decimals, as MMSA's current `metricsTop` does for MOSI, MOSEI and SIMS (the
  authors' Self-MM repository left SIMS values unrounded; MMSA rounds them since January 2022, commit 7ea76ad).

Degenerate inputs, where MMSA would return NaN or crash, give 0.0 so that logs and JSON stay numeric:
a constant prediction or label vector (Pearson correlation undefined) gives Corr 0.0, and a test set whose
labels are all exactly 0 (empty "Non0" subset) gives Non0_acc_2 and Non0_F1_score 0.0.
"""

from typing import Callable

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

Metrics = dict[str, float]

SIMS_BINS_2 = (-1.01, 0.0, 1.01)
SIMS_BINS_3 = (-1.01, -0.1, 0.1, 1.01)
SIMS_BINS_5 = (-1.01, -0.7, -0.1, 0.1, 0.7, 1.01)


def _flat(x) -> np.ndarray:
    """Any array-like or (CPU/GPU, grad or not) tensor -> flat float32 numpy array."""
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32).reshape(-1)


def _inputs(pred, true) -> tuple[np.ndarray, np.ndarray]:
    pred, true = _flat(pred), _flat(true)
    if pred.shape != true.shape or pred.size == 0:
        raise ValueError(f"pred and true must be non-empty and equally long, got {pred.size} and {true.size}")
    return pred, true


def _corr(pred: np.ndarray, true: np.ndarray) -> float:
    """Pearson correlation; 0.0 where it is undefined (a constant vector or a single sample)."""
    if pred.size < 2:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        c = float(np.corrcoef(pred, true)[0, 1])
    return c if np.isfinite(c) else 0.0


def _weighted_f1(true: np.ndarray, pred: np.ndarray) -> float:
    # zero_division=0 is what sklearn's default does, without the warning.
    return float(f1_score(true, pred, average="weighted", zero_division=0))


def _class_acc(pred: np.ndarray, true: np.ndarray) -> float:
    """Share of samples whose rounded (half to even) values agree."""
    return float(np.mean(np.round(pred) == np.round(true)))


def mosi_metrics(pred, true) -> Metrics:
    """MOSI / MOSEI metrics (MMSA `__eval_mosei_regression`, exclude_zero=False)."""
    pred, true = _inputs(pred, true)
    acc7 = _class_acc(np.clip(pred, -3.0, 3.0), np.clip(true, -3.0, 3.0))
    acc5 = _class_acc(np.clip(pred, -2.0, 2.0), np.clip(true, -2.0, 2.0))
    mae = float(np.mean(np.abs(pred - true)))  # unclipped, like MMSA

    # Has0: negative vs non-negative over all samples.
    has0_true, has0_pred = true >= 0, pred >= 0
    has0_acc = float(accuracy_score(has0_true, has0_pred))
    has0_f1 = _weighted_f1(has0_true, has0_pred)

    # Non0: negative vs positive over the samples whose label is not exactly 0.
    nz = true != 0
    if nz.any():
        non0_true, non0_pred = true[nz] > 0, pred[nz] > 0
        non0_acc = float(accuracy_score(non0_true, non0_pred))
        non0_f1 = _weighted_f1(non0_true, non0_pred)
    else:
        non0_acc = non0_f1 = 0.0

    out = {
        "Has0_acc_2": has0_acc,
        "Has0_F1_score": has0_f1,
        "Non0_acc_2": non0_acc,
        "Non0_F1_score": non0_f1,
        "Mult_acc_5": acc5,
        "Mult_acc_7": acc7,
        "MAE": mae,
        "Corr": _corr(pred, true),
    }
    # numpy's rounding (MMSA rounds numpy scalars); it can differ from Python's round() on exact ties.
    return {k: float(np.round(v, 4)) for k, v in out.items()}


mosei_metrics = mosi_metrics  # MMSA uses the same function for both


def sims_bins(x: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Class index of each value for left-open bins (edges[i], edges[i+1]]; x must already lie in [-1, 1]."""
    x = np.asarray(x, dtype=np.float32)
    # float32 edges: MMSA compares float32 arrays with Python floats, which numpy does in float32.
    return np.searchsorted(np.asarray(edges, dtype=np.float32), x, side="left") - 1


def sims_metrics(pred, true) -> Metrics:
    """CH-SIMS metrics (MMSA `__eval_sims_regression`): everything, MAE and Corr included, after clipping
    to [-1, 1]; 0 counts as negative in the 2-class bins."""
    pred, true = _inputs(pred, true)
    pred, true = np.clip(pred, -1.0, 1.0), np.clip(true, -1.0, 1.0)
    p2, t2 = sims_bins(pred, SIMS_BINS_2), sims_bins(true, SIMS_BINS_2)
    p3, t3 = sims_bins(pred, SIMS_BINS_3), sims_bins(true, SIMS_BINS_3)
    p5, t5 = sims_bins(pred, SIMS_BINS_5), sims_bins(true, SIMS_BINS_5)
    out = {
        "Mult_acc_2": float(np.mean(p2 == t2)),
        "Mult_acc_3": float(np.mean(p3 == t3)),
        "Mult_acc_5": float(np.mean(p5 == t5)),
        "F1_score": _weighted_f1(t2, p2),
        "MAE": float(np.mean(np.abs(pred - true))),
        "Corr": _corr(pred, true),
    }
    return {k: float(np.round(v, 4)) for k, v in out.items()}


def metrics_for(dataset: str) -> Callable[..., Metrics]:
    """The metric function MMSA uses for a dataset name (case-insensitive)."""
    table = {"mosi": mosi_metrics, "mosei": mosei_metrics, "sims": sims_metrics}
    try:
        return table[dataset.lower()]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(table)}") from None



def valence_sign_accuracy(pred, emotions) -> float:
    """Balanced accuracy of the valence sign on emotion corpora: the mean of the recall of happy (pred > 0) and
    the recall of the negative emotions (pred < 0); neutral, surprise, calm and boredom are left out. Balanced,
    because the negative emotions outnumber happy about four to one."""
    from selfmm.corpora import NEGATIVE, POSITIVE

    pred, emotions = _flat(pred), np.asarray(emotions).reshape(-1)
    pos, neg = np.isin(emotions, POSITIVE), np.isin(emotions, NEGATIVE)
    if not pos.any() or not neg.any():
        return 0.0
    return round(float((np.mean(pred[pos] > 0) + np.mean(pred[neg] < 0)) / 2), 4)
