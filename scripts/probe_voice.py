"""Probe: does a voice valence classifier carry from one corpus to the other (RAVDESS English, EmoDB German), and
which normalisation helps? Prints figures; trains nothing that ships.

    python -m scripts.probe_voice --data ../shared/data --work runs/default [--copies 2]

Clip statistics (mean and std over the clip of the audio frames the default model reads: Whisper tiny.en encoder
states at 10 frames/s, cached by the builder's corpus stage) -> standardisation -> logistic regression (balanced
classes) for happy against anger/disgust/fear/sad. Scored by the balanced valence-sign accuracy. Normalisations:
  none         one scaler fitted on the training clips
  per-corpus   each corpus standardised with its own statistics (needs a batch of clips from the target domain)
  per-speaker  each speaker's clips standardised with that speaker's statistics (needs clips of the speaker)
  std-only     only the clip's standard deviations (blind to a constant offset of the channel)
Directions: train on all of one corpus, test on all of the other (leave one corpus out); and combined, trained on
the training speakers of both, tested on the test speakers of each (the default model's splits).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from selfmm import corpora
from selfmm.corpora import NEGATIVE, POSITIVE
from selfmm.metrics import valence_sign_accuracy
from selfmm.recipe.corpus import ChainCopy, speech_cache, speech_features
from selfmm.recipe.splits import AUDIO, EMODB_SPLIT, RAVDESS_SPLIT


def clip_table(data: Path, work: Path, copies: int = 0) -> dict[str, np.ndarray]:
    """One row per clip and copy: copy 0 is the clip as recorded, copies 1.. went through a random recording
    chain (selfmm.augment), each cached beside the clean frames."""
    from selfmm.features.pipeline import audio_extractor

    rows: dict[str, list] = {"x": [], "corpus": [], "speaker": [], "emotion": [], "split": [], "copy": []}
    extractor = audio_extractor(AUDIO)
    for corpus, reader, split in (("ravdess", corpora.ravdess, RAVDESS_SPLIT), ("emodb", corpora.emodb, EMODB_SPLIT)):
        utterances = reader(data / corpus)
        split_of = {s: name for name, speakers in split.items() for s in speakers}
        for copy in range(copies + 1):
            frames = speech_features(utterances, extractor, speech_cache(work, corpus, AUDIO, copy),
                                     ChainCopy(copy) if copy else None)
            for u in utterances:
                if u.path.stem in frames:
                    f = frames[u.path.stem]
                    rows["x"].append(np.concatenate([f.mean(0), f.std(0)]))
                    rows["corpus"].append(corpus)
                    rows["speaker"].append(f"{corpus}{u.speaker}")
                    rows["emotion"].append(u.emotion)
                    rows["split"].append(split_of[u.speaker])
                    rows["copy"].append(copy)
    return {k: np.array(v) for k, v in rows.items()}


def standardise(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for g in np.unique(groups):
        m = groups == g
        out[m] = (x[m] - x[m].mean(0)) / (x[m].std(0) + 1e-6)
    return out


def fit_score(x: np.ndarray, emotion: np.ndarray, train: np.ndarray, tests: dict[str, np.ndarray],
              c: float) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    use = train & np.isin(emotion, POSITIVE + NEGATIVE)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000, class_weight="balanced"))
    clf.fit(x[use], np.isin(emotion[use], POSITIVE))
    return {name: valence_sign_accuracy(clf.decision_function(x[m]), emotion[m]) for name, m in tests.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--work", type=Path, default=Path("runs/default"))
    p.add_argument("--copies", type=int, default=0,
                   help="recording-chain copies of every clip added to the training clips (tests stay clean)")
    args = p.parse_args()
    t = clip_table(args.data, args.work, args.copies)
    dim = t["x"].shape[1] // 2
    chained = np.where(t["copy"] > 0, "/chain", "")
    variants = {"none": t["x"], "per-corpus": standardise(t["x"], np.char.add(t["corpus"], chained)),
                "per-speaker": standardise(t["x"], np.char.add(t["speaker"], chained)), "std-only": t["x"][:, dim:]}
    clean = t["copy"] == 0
    rav, emo = t["corpus"] == "ravdess", t["corpus"] == "emodb"
    train_both = t["split"] == "train"
    print(f"balanced valence-sign accuracy, happy vs anger/disgust/fear/sad (chance 50 %); training clips with "
          f"{args.copies} recording-chain copies each, test clips as recorded")
    print(f"{'normalisation':12} {'C':>5} | {'RAVDESS->EmoDB':>14} {'EmoDB->RAVDESS':>14} | combined, held-out speakers: "
          f"{'RAVDESS valid':>13} {'EmoDB valid':>11} {'RAVDESS test':>12} {'EmoDB test':>10}")
    for name, x in variants.items():
        for c in (0.01, 0.1, 1.0):
            r2e = fit_score(x, t["emotion"], rav, {"e": emo & clean}, c)["e"]
            e2r = fit_score(x, t["emotion"], emo, {"r": rav & clean}, c)["r"]
            both = fit_score(x, t["emotion"], train_both, {
                "rv": rav & clean & (t["split"] == "valid"), "ev": emo & clean & (t["split"] == "valid"),
                "rt": rav & clean & (t["split"] == "test"), "et": emo & clean & (t["split"] == "test")}, c)
            print(f"{name:12} {c:>5} | {r2e:>14.1%} {e2r:>14.1%} | {'':28} {both['rv']:>13.1%} {both['ev']:>11.1%} "
                  f"{both['rt']:>12.1%} {both['et']:>10.1%}")

if __name__ == "__main__":
    main()
