"""The text regressor that gives the default model's text branch its head start (selfmm.text_pretrain), on the
real all-MiniLM-L6-v2 encoder and real rated sentences."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from selfmm.config import dataset_configs
from selfmm.features.text import TextTokenizer, default_encoder_dir
from selfmm.model import SelfMM, load_text_encoder_config
from selfmm.text_pretrain import TextFitConfig, TextRegressor, fit, predict, save_encoder

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
POSITIVE = ["a wonderful film", "i loved it", "brilliant acting and a great story", "the best movie this year",
            "beautiful and moving", "what a delight"]
NEGATIVE = ["a boring mess", "i hated every minute", "awful acting and a dull story", "the worst movie this year",
            "ugly and tedious", "what a waste of time"]


@pytest.fixture(scope="module")
def sentences():
    ids, mask = TextTokenizer().encode_batch(POSITIVE + NEGATIVE)
    return ids, mask, np.array([2.0] * len(POSITIVE) + [-2.0] * len(NEGATIVE), dtype=np.float32)


def test_fit_learns_the_sign_and_keeps_the_best_validation_epoch(sentences):
    ids, mask, y = sentences
    torch.manual_seed(0)
    model = TextRegressor(default_encoder_dir())
    history = fit(model, ids, mask, y, TextFitConfig(epochs=4, batch_size=4, lr_encoder=1e-4),
                  valid=(ids, mask, y), log=lambda _: None)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["train_l1"] < history[0]["train_l1"]
    pred = predict(model, ids, mask)
    assert np.mean(np.abs(pred - y)) == pytest.approx(min(h["valid_mae"] for h in history), abs=1e-4)
    assert (np.sign(pred) == np.sign(y)).mean() == 1.0


def test_predict_is_independent_of_batching_and_padding(sentences):
    ids, mask, _ = sentences
    torch.manual_seed(0)
    model = TextRegressor(default_encoder_dir())
    whole = predict(model, ids, mask, batch_size=128)
    one_by_one = predict(model, ids, mask, batch_size=1)
    np.testing.assert_allclose(whole, one_by_one, atol=1e-5)


def test_seeding_before_the_model_makes_a_run_reproducible(sentences):
    """The head's initial weights come from torch's global RNG, whose seed is random per process: the regressor's
    seed makes a run reproducible."""
    ids, mask, y = sentences
    weights = []
    for _ in range(2):
        model = TextRegressor(default_encoder_dir(), seed=7)
        fit(model, ids, mask, y, TextFitConfig(epochs=1, batch_size=6, seed=7), log=lambda _: None)
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_saved_encoder_is_what_selfmm_starts_from(tmp_path, sentences):
    ids, mask, y = sentences
    torch.manual_seed(0)
    model = TextRegressor(default_encoder_dir())
    fit(model, ids, mask, y, TextFitConfig(epochs=1, batch_size=6), log=lambda _: None)
    out = save_encoder(model, tmp_path / "enc")
    assert (out / "tokenizer.json").read_bytes() == (default_encoder_dir() / "tokenizer.json").read_bytes()
    model_cfg, _ = dataset_configs("mosi", load_text_encoder_config(str(out)), 24, 17)
    selfmm = SelfMM.from_pretrained_text(model_cfg, str(out))
    tuned, loaded = model.bert.state_dict(), selfmm.text_model.bert.state_dict()
    assert set(tuned) == set(loaded)
    assert all(torch.equal(tuned[k], loaded[k]) for k in tuned)
    original = TextRegressor(default_encoder_dir()).bert.state_dict()
    assert not all(torch.equal(original[k], tuned[k]) for k in tuned)  # it did change


@pytest.mark.skipif(not (DATA / "vader").is_dir(), reason="../shared/data is not on this machine")
def test_vader_sentences_are_read_whole_and_rescaled():
    from selfmm.recipe.corpus import VADER_SCALE, vader_sentences

    texts, labels = vader_sentences(DATA)
    assert len(texts) == len(labels) == 23_703  # 4,200 + 10,605 + 5,190 + 3,708 (data README)
    assert all(t.strip() for t in texts)
    assert labels.min() >= -4 * VADER_SCALE and labels.max() <= 4 * VADER_SCALE
    assert labels.min() < -2.5 and labels.max() > 2.5  # the rescaled range reaches MOSI's extremes


def test_card_names_the_encoder_and_its_pretraining_data(tmp_path):
    import json

    from selfmm import augment
    from selfmm.data import save_feature_file, synth_feature_file
    from selfmm.recipe.card import card_extra

    corpus = tmp_path / "corpus.pkl"
    save_feature_file(corpus, synth_feature_file("mosi", 4, 4, 4, seed=0))
    plain = card_extra(corpus)
    assert "text_encoder" not in plain and "VADER" not in json.dumps(plain["training_data"])
    assert plain["selection"]["name"] == "pooled" and "MMSA" in plain["selection"]["rule"]
    assert "70%" in card_extra(corpus, selection="text-with-audio-gate")["selection"]["rule"]
    report = {"data": "VADER ground truth, all four sets", "sources": "vader", "sentences": 23703,
              "history": [{"epoch": 1, "train_l1": 0.59, "valid_mae": 0.79}]}
    (tmp_path / "pretrain.json").write_text(json.dumps(report))
    extra = card_extra(corpus, tmp_path / "pretrain.json")
    assert extra["text_encoder"]["name"] == "all-MiniLM-L6-v2 + VADER"
    assert extra["text_encoder"]["intermediate_fine_tuning"]["history"] == report["history"]
    assert [d["name"].split()[0] for d in extra["training_data"]] == ["VADER", "CMU-MOSI", "RAVDESS", "EmoDB"]
    assert "VADER" in extra["description"] and "non-commercial" in extra["license"]
    assert any("still photographs" in n for n in extra["not_covered"]) and "recording_chain" not in extra["corpus"]
    chained = synth_feature_file("mosi", 4, 4, 4, seed=0)
    chained["train"]["id"] = np.array(["ravdess$_$03-01-03-01-01-01-01-chain1", *chained["train"]["id"][1:]])
    save_feature_file(tmp_path / "chained.pkl", chained)
    corpus_card = card_extra(tmp_path / "chained.pkl")["corpus"]
    assert corpus_card["train_recording_chain_copies"] == {"ravdess": 1, "emodb": 0}
    assert corpus_card["recording_chain"]["augment"] == augment.VERSION
    zero_shot = {"MAE": 0.76, "Corr": 0.7}
    (tmp_path / "pretrain.json").write_text(json.dumps({**report, "mosi_test_zero_shot": zero_shot}))
    assert card_extra(corpus, tmp_path / "pretrain.json")["text_encoder"]["mosi_test_zero_shot"] == zero_shot
    warm = {"data": "CMU-MOSI train transcripts", "epochs": 6, "best_epoch": 6,
            "history": [{"epoch": 1, "train_l1": 0.73, "valid_mae": 0.74}]}
    (tmp_path / "pretrain.json").write_text(json.dumps({**report, "mosi_warmup": warm}))
    extra = card_extra(corpus, tmp_path / "pretrain.json")
    assert extra["text_encoder"]["name"] == "all-MiniLM-L6-v2 + VADER + MOSI text"
    assert extra["text_encoder"]["mosi_warmup"]["history"] == warm["history"]
    assert "first" in extra["training_data"][1]["use"] and "MOSI" in extra["description"]
