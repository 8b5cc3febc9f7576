"""Single-modality baselines on the default model's splits, to judge what Self-MM's multi-task training adds.

    python -m scripts.baselines --corpus runs/default/corpus.pkl [--epochs 6]

text:  all-MiniLM-L6-v2 [CLS] -> linear, fine-tuned with an L1 loss on MOSI train, best epoch by dev MAE,
       MOSI test metrics (MMSA's).
audio: clip statistics (mean and std of every audio feature column) -> logistic regression for the valence
       sign and ridge regression for the valence, trained on RAVDESS actors 1-16, tested on actors 21-24.
audio LSTM (--audio-lstm-seeds): Self-MM's audio branch alone (standardised frames -> the reference's LSTM
       subnet -> its head, the default model's sizes), L1 on the valence, 30 epochs per seed, the epoch of best
       sign accuracy on the validation actors 17-20 kept. It shows how far these audio features carry A, and how
       much of that depends on the seed and the epoch, without the rest of Self-MM.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from selfmm.data import Split, load_feature_file
from selfmm.metrics import mosi_metrics
from selfmm.recipe.scores import audio_scores, sign_accuracy, sign_classifier
from selfmm.recipe.splits import AUDIO_GATE, source_rows
from selfmm.recipe.text import fit_mosi_text


def clip_stats(split: Split, idx: np.ndarray) -> np.ndarray:
    out = []
    for i in idx:
        x = split.audio[i, : split.audio_lengths[i]]
        out.append(np.concatenate([x.mean(0), x.std(0)]))
    return np.array(out)


def audio_baseline(data) -> dict[str, float]:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    tr, va, te = data["train"], data["valid"], data["test"]
    itr, iva, ite = (source_rows(s.ids, "ravdess") for s in (tr, va, te))
    xtr, xte, ytr, yte = clip_stats(tr, itr), clip_stats(te, ite), tr.labels[itr], te.labels[ite]
    clf = sign_classifier(xtr, ytr)
    reg = make_pipeline(StandardScaler(), Ridge(alpha=10.0)).fit(xtr, ytr)
    scores = audio_scores(reg.predict(xte), yte)
    scores["sign_acc_non_neutral_logreg"] = sign_accuracy(clf, xte, yte)
    scores["sign_acc_non_neutral_logreg_valid_actors"] = sign_accuracy(clf, clip_stats(va, iva), va.labels[iva])
    return scores


def ravdess_tensors(split: Split) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    rows = source_rows(split.ids, "ravdess")
    return (torch.from_numpy(split.audio[rows]).float(), torch.from_numpy(split.audio_lengths[rows]).long(),
            split.labels[rows].astype(np.float32))


def audio_lstm_baseline(data, seeds: list[int], epochs: int = 30) -> dict[str, dict]:
    """Per seed: the best validation epoch with its validation and test sign accuracy, the median validation
    accuracy over epochs 10 onwards and how many epochs reach AUDIO_GATE."""
    from selfmm.model import Head, SequenceEncoder, frame_stats

    (xtr, ltr, ytr), (xva, lva, yva), (xte, lte, yte) = (ravdess_tensors(data[s]) for s in ("train", "valid", "test"))
    mean, std = frame_stats(xtr, ltr)  # as the model standardises its audio input (normalize_inputs)
    xtr, xva, xte = ((x - mean) / std for x in (xtr, xva, xte))
    out = {}
    for seed in seeds:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        # the default model's audio sizes: a_lstm_hidden 32, audio_out 16, post_audio_dim 32, its dropouts
        encoder, head = SequenceEncoder(xtr.shape[2], 32, 16, 0.0), Head(16, 32, 0.1)
        predict = lambda x, lengths: head(encoder(x, lengths))[0].view(-1)  # noqa: E731
        opt = torch.optim.Adam([{"params": encoder.parameters(), "lr": 5e-3, "weight_decay": 1e-3},
                                {"params": head.parameters(), "lr": 1e-3, "weight_decay": 1e-3}])
        valid, test = [], []
        for _ in range(epochs):
            encoder.train(), head.train()
            for b in np.array_split(rng.permutation(len(ytr)), max(1, len(ytr) // 16)):
                loss = (predict(xtr[b], ltr[b]) - torch.from_numpy(ytr[b])).abs().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            encoder.eval(), head.eval()
            with torch.no_grad():
                valid.append(audio_scores(predict(xva, lva).numpy(), yva)["sign_acc_non_neutral"])
                test.append(audio_scores(predict(xte, lte).numpy(), yte)["sign_acc_non_neutral"])
        best = int(np.argmax(valid))
        out[str(seed)] = {"best_epoch": best + 1, "valid": valid[best], "test": test[best],
                          "valid_median_from_epoch_10": round(float(np.median(valid[9:])), 4),
                          f"epochs_at_or_above_{AUDIO_GATE:.2f}": int(np.sum(np.array(valid) >= AUDIO_GATE))}
    return out


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
    p.add_argument("--audio-lstm-seeds", type=int, nargs="*", default=[],
                   help="also train Self-MM's audio branch alone with these seeds (about 10 s each)")
    p.add_argument("--text-encoder", type=Path, nargs="*", default=[],
                   help="also run the text baseline from these encoder folders (e.g. runs/default/encoder)")
    args = p.parse_args()
    torch.set_num_threads(2)
    data = load_feature_file(args.corpus)
    results = {"audio_only (RAVDESS actors 21-24)": audio_baseline(data)}
    if args.audio_lstm_seeds:
        results["audio_lstm (sign accuracy, RAVDESS actors 17-20 / 21-24)"] = audio_lstm_baseline(
            data, args.audio_lstm_seeds)
    print(json.dumps(results, indent=1))
    if not args.skip_text:
        results["text_only (MOSI test)"] = text_baseline(data, args.epochs)
        for enc in args.text_encoder:
            results[f"text_only from {enc} (MOSI test)"] = text_baseline(data, args.epochs, encoder_dir=enc)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
