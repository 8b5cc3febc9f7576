"""How the default model is judged: held-out figures per head and data source, the selection scores that pick
its epoch and seed, the probe of channel combinations no training sample has, and the predictors they score."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from selfmm import contract
from selfmm.branches import BranchScore
from selfmm.contract import HEADS
from selfmm.recipe.splits import AUDIO_GATE, SOURCES, source_rows


def emotion_of(sample_id: str) -> str:
    """The acted or posed emotion of a corpus row, from its id; "" for MOSI."""
    from selfmm.corpora import EMODB_EMOTIONS, RAVDESS_EMOTIONS

    source, _, stem = str(sample_id).partition("$_$")
    if source == "ravdess":
        return RAVDESS_EMOTIONS[int(stem.split("-")[2])]
    if source == "emodb":
        return EMODB_EMOTIONS[stem[5]]
    if source in ("fer", "ckplus"):
        return stem.split("_", 1)[1]
    return ""


def audio_scores(pred: np.ndarray, true: np.ndarray, emotions: np.ndarray | None = None) -> dict[str, float]:
    """A valence head on an emotion corpus: the balanced valence-sign accuracy (happy against the negative
    emotions; with `emotions`), the sign accuracy on all non-neutral rows, MAE and Pearson correlation."""
    from selfmm.metrics import valence_sign_accuracy

    nz = true != 0
    out = {"sign_acc_non_neutral": round(float(np.mean((pred[nz] > 0) == (true[nz] > 0))), 4),
           "MAE": round(float(np.mean(np.abs(pred - true))), 4),
           "Corr": round(float(np.corrcoef(pred, true)[0, 1]), 4),
           "majority_non_neutral": round(float(max(np.mean(true[nz] > 0), np.mean(true[nz] < 0))), 4)}
    if emotions is not None:
        out = {"valence_sign": valence_sign_accuracy(pred, emotions), **out}
    return out


def text_with_audio_gate(outputs: dict[str, np.ndarray], labels: np.ndarray, ids) -> float:
    """Selection score of `--select text-with-audio-gate`, lower is better: the MOSI dev MAE of M among the epochs
    whose audio head reaches issue 6's target sign accuracy (AUDIO_GATE) on the validation actors; an epoch below
    the gate scores 10 + the pooled validation MAE of M (the trainer's default), so it is kept only while none
    has passed. Why: the pooled MAE lets RAVDESS's noisier 240 clips pick the epoch; this states the two targets
    as they are, the text side to optimise, the audio side to hold."""
    mosi, rav = source_rows(ids, "mosi"), source_rows(ids, "ravdess")
    if audio_scores(outputs["A"][rav], labels[rav])["sign_acc_non_neutral"] >= AUDIO_GATE:
        return float(np.mean(np.abs(outputs["M"][mosi] - labels[mosi])))
    return 10.0 + float(np.mean(np.abs(outputs["M"] - labels)))


def per_source(outputs: dict[str, np.ndarray], labels: np.ndarray, ids) -> float:
    """Selection score of `--select per-source`, lower is better: the mean over the data sources of the validation
    split of M's MAE on each. Why: pooled, FER's 1,200 faces would outweigh MOSI's 229 transcripts five to one;
    each source is one thing the gauges must read."""
    return float(np.mean(source_maes(outputs["M"], labels, ids, SOURCES)))


def source_maes(pred: np.ndarray, labels: np.ndarray, ids, sources) -> list[float]:
    """The MAE of `pred` on each of `sources` that has rows in the split, in that order."""
    return [float(np.mean(np.abs(pred[r] - labels[r]))) for r in (source_rows(ids, s) for s in sources) if len(r)]


PER_SOURCE_RULE = ("the epoch and seed of lowest mean over the validation sources (MOSI dev, RAVDESS actors 17-20, "
                   "EmoDB speakers 12-13, FER2013 PublicTest) of M's MAE on each")


def branch_scores(outputs: dict[str, np.ndarray], labels: np.ndarray, ids) -> dict[str, float]:
    """Each branch's validation score for `--select per-branch` (selfmm.branches), lower is better: the MAE of its
    own head on the sources that inform it, each source weighing the same (T on MOSI dev; A on RAVDESS actors 17-20
    and EmoDB speakers 12-13; V on FER2013 PublicTest). A branch with no such rows is left out."""
    out = {}
    for branch, head, sources in (("text", "T", ("mosi",)), ("audio", "A", ("ravdess", "emodb")),
                                  ("vision", "V", ("fer",))):
        maes = source_maes(outputs[head], labels, ids, sources)
        if maes:
            out[branch] = float(np.mean(maes))
    return out


@dataclass(frozen=True)
class Selection:
    """A `--select` rule: the trainer's selection score (None: its default), optional per-branch scores
    (selfmm.branches) and what the card says of it."""
    score: Callable[[dict[str, np.ndarray], np.ndarray, np.ndarray], float] | None
    rule: str
    branch_score: BranchScore | None = None


SELECTIONS = {
    "pooled": Selection(None, "the epoch and seed of lowest validation MAE of M over all validation rows (MMSA's "
                              "criterion)"),
    "text-with-audio-gate": Selection(text_with_audio_gate, "the epoch and seed of lowest MOSI dev MAE of M among the "
                                      f"epochs whose audio head reaches {AUDIO_GATE:.0%} valence sign accuracy on "
                                      "RAVDESS actors 17-20"),
    "per-source": Selection(per_source, PER_SOURCE_RULE),
    "per-branch": Selection(per_source, PER_SOURCE_RULE.replace("the epoch and seed", "the seed") + "; within a seed, "
                            "the text, audio and vision branches each at the epoch of lowest validation MAE of its own "
                            "head (T on MOSI dev, A on both speech corpora, V on FER2013 PublicTest) and the fusion "
                            "head from one of those epochs, where that assembly scores lower than the best single "
                            "epoch", branch_scores),
}


def held_out_metrics(outputs: dict[str, np.ndarray], ids, labels: np.ndarray) -> dict[str, dict[str, float]]:
    """MOSI metrics of M and T on the MOSI rows; on each emotion corpus its own head (A for speech, V for faces)
    and M, with the balanced valence-sign accuracy."""
    from selfmm.metrics import mosi_metrics

    out = {}
    mosi = source_rows(ids, "mosi")
    if len(mosi):
        out.update(M_mosi=mosi_metrics(outputs["M"][mosi], labels[mosi]),
                   T_mosi=mosi_metrics(outputs["T"][mosi], labels[mosi]))
    for source, head in (("ravdess", "A"), ("emodb", "A"), ("fer", "V"), ("ckplus", "V")):
        rows = source_rows(ids, source)
        if len(rows):
            emotions = np.array([emotion_of(ids[i]) for i in rows])
            for h in (head, "M"):
                out[f"{h}_{source}"] = audio_scores(outputs[h][rows], labels[rows], emotions)
    return out


COMBINATIONS = {"T+A": "ta", "T+V": "tv", "A+V": "av", "T+A+V": "tav"}


def combination_scores(predict, split, n: int = 600, seed: int = 0, kinds=tuple(COMBINATIONS),
                       vision_dim: int | None = None) -> dict[str, dict[str, float]]:
    """M on combinations no training sample has: a MOSI test transcript, a voice clip of a held-out speaker
    (RAVDESS or EmoDB test) and a FER2013 PrivateTest face, drawn at random and fed together. Reports how often M
    lies on [-3, 3] and between its lowest and highest channel, and, where the channels disagree in sign, how often
    M's sign follows each. predict(feeds) -> {"M", "T", "A", "V"} arrays; vision_dim: for a model whose vision
    input differs from the split's (faces then stay absent)."""
    rng = np.random.default_rng(seed)
    pools = {"t": source_rows(split.ids, "mosi"),
             "a": np.concatenate([source_rows(split.ids, "ravdess"), source_rows(split.ids, "emodb")]),
             "v": source_rows(split.ids, "fer")}
    out = {}
    for kind in kinds:
        have = COMBINATIONS[kind]
        if any(len(pools[m]) == 0 for m in have):
            continue
        # one draw per non-empty pool, in this order, so that a corpus with every source always gives the same rows
        pick = {m: rng.choice(pools[m], n) for m in "tav" if len(pools[m])}
        heads = {h: [] for h in HEADS}
        for i in range(0, n, 64):
            rows = {m: r[i:i + 64] for m, r in pick.items()}
            b = len(rows[have[0]])
            ta = max(1, int(split.audio_lengths[rows["a"]].max())) if "a" in have else 1
            tv = max(1, int(split.vision_lengths[rows["v"]].max())) if "v" in have else 1
            ids, mask = ((split.text_ids[rows["t"]], split.text_mask[rows["t"]]) if "t" in have else
                         (np.zeros((b, split.text_ids.shape[1]), np.int64),) * 2)
            feeds = contract.feeds(ids, mask,
                                   split.audio[rows["a"], :ta] if "a" in have else
                                   np.zeros((b, 1, split.audio.shape[2])),
                                   split.audio_lengths[rows["a"]] if "a" in have else np.zeros(b),
                                   split.vision[rows["v"], :tv] if "v" in have else
                                   np.zeros((b, 1, vision_dim or split.vision.shape[2])),
                                   split.vision_lengths[rows["v"]] if "v" in have else np.zeros(b))
            for h, y in predict(feeds).items():
                heads[h].append(np.asarray(y).reshape(-1))
        y = {h: np.concatenate(v) for h, v in heads.items()}
        channels = np.stack([y[h] for h, m in zip("TAV", "tav") if m in have], axis=1)
        low, high = channels.min(1), channels.max(1)
        conflict = (channels.max(1) > 0) & (channels.min(1) < 0)
        result = {"n": n, "on_scale": round(float(np.mean(np.abs(y["M"]) <= 3.0)), 4),
                  "between_channels": round(float(np.mean((y["M"] >= low - 1e-4) & (y["M"] <= high + 1e-4))), 4),
                  "max_abs_M": round(float(np.abs(y["M"]).max()), 3), "sign_conflicts": int(conflict.sum())}
        for h, m in zip("TAV", "tav"):
            if m in have and conflict.any():
                result[f"M_sign_follows_{h}"] = round(float(np.mean(np.sign(y["M"][conflict]) ==
                                                                    np.sign(y[h][conflict]))), 4)
        out[kind] = result
    return out


def torch_predict(model):
    """predict(feeds) for combination_scores from a PyTorch SelfMM."""
    import torch

    @torch.no_grad()
    def predict(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = model.eval()(**{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()})
        return {h: out[h].view(-1).numpy() for h in HEADS}
    return predict


def onnx_predict(path: Path):
    """predict(feeds) for combination_scores from an ONNX file."""
    s = contract.open_session(path)
    return lambda feeds: dict(zip(HEADS, s.run(list(HEADS), feeds)))


def torch_metrics(checkpoint: Path, corpus: Path, split: str = "test") -> dict:
    """Held-out metrics of a checkpoint computed with PyTorch (the export recomputes them with ONNX Runtime)."""
    import torch

    from selfmm.data import load_feature_file, make_loader
    from selfmm.train import load_checkpoint, predict

    model, _ = load_checkpoint(checkpoint)
    data = load_feature_file(corpus)[split]
    outputs, labels = predict(model, make_loader(data, 64, shuffle=False), torch.device("cpu"))
    return held_out_metrics(outputs, data.ids, labels)


def sign_classifier(x: np.ndarray, valence: np.ndarray, c: float = 1.0):
    """Standardised inputs -> logistic regression for the valence sign, fitted on the non-neutral rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    nz = valence != 0
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=c)).fit(x[nz], valence[nz] > 0)


def sign_accuracy(classifier, x: np.ndarray, valence: np.ndarray) -> float:
    """Valence sign accuracy on the non-neutral rows."""
    nz = valence != 0
    return round(float(np.mean(classifier.predict(x[nz]) == (valence[nz] > 0))), 4)
