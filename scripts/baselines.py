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

import numpy as np
import torch
from torch import nn

from selfmm.data import Split, load_feature_file
from selfmm.metrics import mosi_metrics
from scripts.build_default_model import audio_scores, source_rows


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


def text_baseline(data, epochs: int, seed: int = 1111) -> dict[str, float]:
    from transformers import BertModel

    from selfmm.features.text import default_encoder_dir

    torch.manual_seed(seed)
    encoder = BertModel.from_pretrained(str(default_encoder_dir()), add_pooling_layer=False)
    head = nn.Linear(encoder.config.hidden_size, 1)
    opt = torch.optim.Adam([{"params": encoder.parameters(), "lr": 5e-5}, {"params": head.parameters(), "lr": 1e-3}])

    def predict(split: Split, idx: np.ndarray) -> np.ndarray:
        encoder.eval()
        out = []
        with torch.no_grad():
            for b in np.array_split(idx, max(1, len(idx) // 64)):
                ids, mask = torch.from_numpy(split.text_ids[b]), torch.from_numpy(split.text_mask[b])
                out.append(head(encoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]).view(-1).numpy())
        return np.concatenate(out)

    tr, va, te = data["train"], data["valid"], data["test"]
    itr, iva, ite = source_rows(tr.ids, "mosi"), source_rows(va.ids, "mosi"), source_rows(te.ids, "mosi")
    best, best_state = float("inf"), None
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        encoder.train()
        for b in np.array_split(rng.permutation(itr), len(itr) // 16):
            ids, mask = torch.from_numpy(tr.text_ids[b]), torch.from_numpy(tr.text_mask[b])
            pred = head(encoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]).view(-1)
            loss = (pred - torch.from_numpy(tr.labels[b])).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        mae = float(np.mean(np.abs(predict(va, iva) - va.labels[iva])))
        print(f"text baseline epoch {epoch + 1}: dev MAE {mae:.4f}")
        if mae < best:
            best = mae
            best_state = ({k: v.clone() for k, v in encoder.state_dict().items()},
                          {k: v.clone() for k, v in head.state_dict().items()})
    encoder.load_state_dict(best_state[0])
    head.load_state_dict(best_state[1])
    return mosi_metrics(predict(te, ite), te.labels[ite])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="runs/default/corpus.pkl")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--skip-text", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(2)
    data = load_feature_file(args.corpus)
    results = {"audio_only (RAVDESS actors 21-24)": audio_baseline(data)}
    print(json.dumps(results, indent=1))
    if not args.skip_text:
        results["text_only (MOSI test)"] = text_baseline(data, args.epochs)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
