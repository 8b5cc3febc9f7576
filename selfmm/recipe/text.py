"""The text encoder's stages before Self-MM: fine-tuning alone on rated sentences (VADER), and the text-only
recipe on MOSI's transcripts (also the text baseline)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from selfmm.recipe.corpus import VADER_SCALE, meld_sentences, vader_sentences
from selfmm.recipe.splits import source_rows

PRETRAIN_EPOCHS = 1  # a second epoch raised the MOSI dev MAE (0.786 -> 0.836)
MOSI_TEXT_EPOCHS = 6  # the text-only recipe of issue 6's floor: 6 epochs, best by dev MAE


def pretrain_encoder(data: Path, corpus: Path, out: Path, sources: str = "vader",
                     epochs: int = PRETRAIN_EPOCHS) -> dict:
    """Fine-tune MiniLM alone on VADER (and MELD, sources="vader+meld") with an L1 loss, keeping the epoch of
    lowest MOSI dev MAE."""
    from selfmm.data import load_feature_file
    from selfmm.features.text import TextTokenizer, default_encoder_dir
    from selfmm.metrics import mosi_metrics
    from selfmm.text_pretrain import TextFitConfig, TextRegressor, fit, predict, save_encoder

    texts, labels = vader_sentences(data)
    if sources == "vader+meld":
        more = meld_sentences(data)
        texts, labels = texts + more[0], np.concatenate([labels, more[1]])
    ids, mask = TextTokenizer().encode_batch(texts)
    splits = load_feature_file(corpus)
    dev, test = splits["valid"], splits["test"]
    idev, itest = source_rows(dev.ids, "mosi"), source_rows(test.ids, "mosi")
    cfg = TextFitConfig(epochs=epochs)
    model = TextRegressor(default_encoder_dir(), seed=cfg.seed)
    history = fit(model, ids, mask, labels, cfg,
                  valid=(dev.text_ids[idev], dev.text_mask[idev], dev.labels[idev]))
    save_encoder(model, out)
    data_name = {"vader": "VADER ground truth, all four sets",
                 "vader+meld": "VADER ground truth, all four sets, and MELD train"}[sources]
    report = {"data": data_name, "sources": sources, "sentences": len(texts), "label_scale": VADER_SCALE,
              "history": history, "mosi_test_zero_shot": mosi_metrics(
                  predict(model, test.text_ids[itest], test.text_mask[itest]), test.labels[itest])}
    (out / "pretrain.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return report


def fit_mosi_text(data, encoder_dir: Path, epochs: int = MOSI_TEXT_EPOCHS, seed: int = 1111):
    """The text-only recipe on the MOSI rows of the corpus `data` (a FeatureFile): the encoder [CLS] -> linear, L1
    on the train transcripts, batch 16, the epoch of lowest dev MAE kept. Returns (regressor, history, test split,
    test rows)."""
    from selfmm.text_pretrain import TextFitConfig, TextRegressor, fit

    tr, va, te = data["train"], data["valid"], data["test"]
    itr, iva, ite = source_rows(tr.ids, "mosi"), source_rows(va.ids, "mosi"), source_rows(te.ids, "mosi")
    model = TextRegressor(encoder_dir, seed=seed)
    history = fit(model, tr.text_ids[itr], tr.text_mask[itr], tr.labels[itr],
                  TextFitConfig(epochs=epochs, batch_size=16, seed=seed),
                  valid=(va.text_ids[iva], va.text_mask[iva], va.labels[iva]))
    return model, history, te, ite


def warm_up_on_mosi(corpus: Path, encoder_dir: Path, out: Path, epochs: int = MOSI_TEXT_EPOCHS) -> dict:
    """Stage `warmup`: the encoder fine-tuned alone on MOSI's train transcripts (`fit_mosi_text`), so that Self-MM
    starts from the text-only model instead of re-learning MOSI's text while its other heads are still random.
    The report keeps the earlier stage's history and adds this one's."""
    from selfmm.data import load_feature_file
    from selfmm.metrics import mosi_metrics
    from selfmm.text_pretrain import predict, save_encoder

    model, history, te, ite = fit_mosi_text(load_feature_file(corpus), encoder_dir, epochs)
    save_encoder(model, out)
    previous = encoder_dir / "pretrain.json"
    report = json.loads(previous.read_text()) if previous.is_file() else {}
    report["mosi_warmup"] = {"data": "CMU-MOSI train transcripts (the text-only baseline's recipe)",
                             "epochs": epochs, "history": history,
                             "best_epoch": 1 + int(np.argmin([h["valid_mae"] for h in history])),
                             "mosi_test": mosi_metrics(predict(model, te.text_ids[ite], te.text_mask[ite]),
                                                       te.labels[ite])}
    (out / "pretrain.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report["mosi_warmup"], indent=1))
    return report
