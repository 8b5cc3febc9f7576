"""Single-modality baselines on the default model's splits, to judge what Self-MM's multi-task training adds.

    python -m scripts.baselines --corpus runs/default/corpus.pkl [--epochs 6]

text:  all-MiniLM-L6-v2 [CLS] -> linear, fine-tuned with an L1 loss on MOSI train, best epoch by dev MAE,
       MOSI test metrics (MMSA's).
audio: clip statistics (mean and std of every audio feature column) -> logistic regression for the valence
       sign and ridge regression for the valence, trained on RAVDESS actors 1-16, tested on actors 21-24.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from selfmm.data import Split, load_feature_file
from selfmm.metrics import mosi_metrics
from scripts.build_default_model import audio_scores, fit_mosi_text, source_rows


def clip_stats(split: Split, idx: np.ndarray) -> np.ndarray:
    out = []
    for i in idx:
        x = split.audio[i, : split.audio_lengths[i]]
        out.append(np.concatenate([x.mean(0), x.std(0)]))
    return np.array(out)


def audio_baseline(data) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    tr, te = data["train"], data["test"]
    itr, ite = source_rows(tr.ids, "ravdess"), source_rows(te.ids, "ravdess")
    xtr, xte, ytr, yte = clip_stats(tr, itr), clip_stats(te, ite), tr.labels[itr], te.labels[ite]
    nz = ytr != 0
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(xtr[nz], ytr[nz] > 0)
    reg = make_pipeline(StandardScaler(), Ridge(alpha=10.0)).fit(xtr, ytr)
    scores = audio_scores(reg.predict(xte), yte)
    nzt = yte != 0
    scores["sign_acc_non_neutral_logreg"] = round(float(np.mean(clf.predict(xte[nzt]) == (yte[nzt] > 0))), 4)
    return scores


def text_baseline(data, epochs: int, encoder_dir: Path | None = None) -> dict[str, float]:
    """The plain text regressor on the MOSI rows: fine-tuned on train, best epoch by dev MAE, test metrics."""
    from selfmm.features.text import default_encoder_dir
    from selfmm.text_pretrain import predict

    model, _, te, ite = fit_mosi_text(data, encoder_dir or default_encoder_dir(), epochs)
    return mosi_metrics(predict(model, te.text_ids[ite], te.text_mask[ite]), te.labels[ite])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="runs/default/corpus.pkl")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--skip-text", action="store_true")
    p.add_argument("--text-encoder", type=Path, nargs="*", default=[],
                   help="also run the text baseline from these encoder folders (e.g. runs/default/encoder)")
    args = p.parse_args()
    torch.set_num_threads(2)
    data = load_feature_file(args.corpus)
    results = {"audio_only (RAVDESS actors 21-24)": audio_baseline(data)}
    print(json.dumps(results, indent=1))
    if not args.skip_text:
        results["text_only (MOSI test)"] = text_baseline(data, args.epochs)
        for enc in args.text_encoder:
            results[f"text_only from {enc} (MOSI test)"] = text_baseline(data, args.epochs, encoder_dir=enc)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
