"""Single-modality baselines on the default model's splits, to judge what Self-MM's multi-task training adds.

    python -m scripts.baselines --corpus runs/default/corpus.pkl [--epochs 6]

text:  all-MiniLM-L6-v2 [CLS] -> linear, fine-tuned with an L1 loss on MOSI train, best epoch by dev MAE,
       MOSI test metrics (MMSA's).
audio: clip statistics (mean and std of every audio feature column) -> logistic regression for the valence
       sign and ridge regression for the valence, trained on RAVDESS actors 1-16, tested on actors 21-24.
branches (--branch-seeds): Self-MM's audio branch (RAVDESS and EmoDB) and vision branch (FER2013; CK+ as a
       test) alone, each with the reference's LSTM subnet and with the mean of the frames (`av_encoder`), the
       default model's sizes, L1 on the valence, 30 epochs per seed, the epoch of best mean validation
       valence-sign accuracy kept. It compares the two subnets on the same frames without the rest of Self-MM.
       (Earlier versions had --audio-lstm-seeds: the LSTM on RAVDESS alone, docs/experiments.md.)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from selfmm.config import AV_ENCODERS
from selfmm.data import Split, load_feature_file
from selfmm.metrics import mosi_metrics
from selfmm.recipe.scores import audio_scores, sign_accuracy, sign_classifier
from selfmm.recipe.splits import source_rows
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


# The branches Self-MM trains on the default corpus: the modality, the sources that carry its label, the default
# model's sizes (encoder hidden, encoder out, head dim, dropout; DEMO_OVERRIDES) and the test-only sources.
BRANCHES = {"audio": (("ravdess", "emodb"), (32, 16, 32, 0.1), ()),
            "vision": (("fer",), (32, 32, 32, 0.0), ("ckplus",))}


def branch_tensors(split: Split, modality: str, sources) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    rows = np.concatenate([source_rows(split.ids, s) for s in sources])
    x, lengths = getattr(split, modality)[rows], getattr(split, f"{modality}_lengths")[rows]
    return (torch.from_numpy(x).float(), torch.from_numpy(lengths).long(), split.labels[rows].astype(np.float32),
            split.ids[rows])


def branch_baseline(data, modality: str, kind: str, seeds: list[int], sources=None, epochs: int = 30
                    ) -> dict[str, dict]:
    """Self-MM's audio or vision branch alone (standardised frames -> `kind` subnet -> its head), L1 on the
    valence of `sources` (default: all the branch's sources); per seed, the epoch of best mean validation
    valence-sign accuracy over those sources, with the validation figures and the test figures of every source
    there (with one source of two, the other's test is the leave-one-corpus-out figure)."""
    from selfmm.metrics import valence_sign_accuracy
    from selfmm.model import Head, frame_stats, sequence_encoder
    from selfmm.recipe.scores import emotion_of

    all_sources, (hidden, out_size, dim, dropout), test_only = BRANCHES[modality]
    sources = sources or all_sources
    (xtr, ltr, ytr, _), valid = (branch_tensors(data[s], modality, sources) for s in ("train", "valid"))
    tests = {s: branch_tensors(data["test"], modality, [s]) for s in (*all_sources, *test_only)}
    mean, std = frame_stats(xtr, ltr)  # as the model standardises its input (normalize_inputs)
    xtr = (xtr - mean) / std
    # each evaluation set once, standardised, with its emotions and its rows per source
    evals = {name: ((x - mean) / std, lengths, np.array([emotion_of(i) for i in ids]),
                    {src: source_rows(ids, src) for src in dict.fromkeys(str(i).split("$_$")[0] for i in ids)})
             for name, (x, lengths, _, ids) in [("valid", valid), *tests.items()]}

    def scores(model, name: str) -> dict[str, float]:
        x, lengths, emotions, rows = evals[name]
        with torch.no_grad():
            pred = model(x, lengths).numpy()
        return {src: valence_sign_accuracy(pred[r], emotions[r]) for src, r in rows.items()}

    out = {}
    for seed in seeds:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        encoder, head = sequence_encoder(kind, xtr.shape[2], hidden, out_size, dropout), Head(out_size, dim, dropout)
        model = lambda x, lengths: head(encoder(x, lengths))[0].view(-1)  # noqa: E731
        opt = torch.optim.Adam([{"params": encoder.parameters(), "lr": 5e-3, "weight_decay": 1e-3},
                                {"params": head.parameters(), "lr": 1e-3, "weight_decay": 1e-3}])
        history = []
        for _ in range(epochs):
            encoder.train(), head.train()
            for b in np.array_split(rng.permutation(len(ytr)), max(1, len(ytr) // 16)):
                loss = (model(xtr[b], ltr[b]) - torch.from_numpy(ytr[b])).abs().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            encoder.eval(), head.eval()
            history.append({"valid": scores(model, "valid"), "test": {k: v for s in tests for k, v in scores(model, s).items()}})
        best = int(np.argmax([np.mean(list(h["valid"].values())) for h in history]))
        out[str(seed)] = {"best_epoch": best + 1, **history[best]}
    return out


def branch_summary(results: dict[str, dict]) -> str:
    """One line per branch run: the mean over seeds (and the range) of each validation and test figure."""
    lines = []
    for name, seeds in results.items():
        if "branch" not in name:
            continue
        runs = list(seeds.values())
        parts = []
        for part in ("valid", "test"):
            cells = [f"{src} {100 * np.mean(v):.1f} ({100 * min(v):.1f}-{100 * max(v):.1f})"
                     for src, v in ((s, [r[part][s] for r in runs]) for s in runs[0][part])]
            parts.append(f"{part}: " + ", ".join(cells))
        lines.append(f"{name}, {len(runs)} seeds, epochs {[r['best_epoch'] for r in runs]}\n  " + "\n  ".join(parts))
    return "\n".join(lines)


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
    p.add_argument("--branch-seeds", type=int, nargs="*", default=[],
                   help="also train Self-MM's audio and vision branches alone, LSTM and mean subnets, these seeds")
    p.add_argument("--loco", action="store_true", help="with --branch-seeds: also train the audio branch on each "
                   "corpus alone (leave one corpus out)")
    p.add_argument("--modalities", nargs="+", default=list(BRANCHES), help="with --branch-seeds: which branches")
    p.add_argument("--subnets", nargs="+", choices=list(AV_ENCODERS), default=list(AV_ENCODERS),
                   help="with --branch-seeds: which frame encoders")
    p.add_argument("--text-encoder", type=Path, nargs="*", default=[],
                   help="also run the text baseline from these encoder folders (e.g. runs/default/encoder)")
    args = p.parse_args()
    torch.set_num_threads(2)
    data = load_feature_file(args.corpus)
    results = {"audio_only (RAVDESS actors 21-24)": audio_baseline(data)}
    for modality in args.modalities if args.branch_seeds else ():
        for kind in args.subnets:
            results[f"{modality} branch, {kind} (balanced valence sign)"] = branch_baseline(
                data, modality, kind, args.branch_seeds)
            for source in BRANCHES[modality][0] if modality == "audio" and args.loco else ():  # leave one corpus out
                results[f"{modality} branch, {kind}, trained on {source} alone"] = branch_baseline(
                    data, modality, kind, args.branch_seeds, sources=(source,))
        print(json.dumps(results, indent=1), flush=True)
    print(json.dumps(results, indent=1))
    if args.branch_seeds:
        print(branch_summary(results))
    if not args.skip_text:
        results["text_only (MOSI test)"] = text_baseline(data, args.epochs)
        for enc in args.text_encoder:
            results[f"text_only from {enc} (MOSI test)"] = text_baseline(data, args.epochs, encoder_dir=enc)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
