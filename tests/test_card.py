"""The model card (export/card.py): built from the checkpoint's card and the command line's, heads stated or
inferred from the training split."""
from __future__ import annotations

from tests.support.tiny_model import TINY_BERT


def test_card_takes_the_checkpoint_card_and_cli_extra(tmp_path):
    from export.card import build_card

    ckpt = {"model_config": {"text_encoder": TINY_BERT, "audio_in": 5, "vision_in": 20},
            "train_config": {"dataset": "sims"}, "feature_specs": None, "text_encoder": {"name": "enc"},
            "data": {"file": "x.pkl"}, "result": {"test": {"MAE": 0.4}},
            "card": {"name": "from-checkpoint", "license": "CC-BY-4.0", "heads": {"A": True}, "intended_use": "demo",
                     "metrics": {"note": "from the checkpoint"}}}
    card = build_card(ckpt, extra={"name": "from-cli", "heads": {"T": {"calibrated": True, "note": "real text"}},
                                   "text_encoder": {"name": "all-MiniLM-L6-v2"}},
                      parity={}, metrics={"checkpoint": {"MAE": 0.4}}, quantization=None, tokenizer_sha256="ab",
                      eval_len=None, repo=tmp_path, onnx_info={})
    assert card["name"] == "from-cli" and card["license"] == "CC-BY-4.0" and card["intended_use"] == "demo"
    assert card["text_encoder"]["name"] == "all-MiniLM-L6-v2" and card["text_encoder"]["max_length"] == 39  # SIMS
    assert card["heads"]["T"]["calibrated"] and not card["heads"]["A"]["calibrated"]  # CLI heads replace the checkpoint's
    assert card["label_range"] == [-1.0, 1.0] and card["feature_spec_hashes"] == {m: None for m in ("text", "audio", "vision")}
    assert card["training_data"][0]["file"] == "x.pkl" and card["export"]["commit"] is None  # not a git checkout


def test_unstated_heads_follow_what_the_training_split_had():
    from export.card import _heads

    heads = _heads({"T": True}, {"text": 10, "audio": 4, "vision": 0})
    assert heads["T"] == {"calibrated": True, "note": ""}
    assert heads["A"]["calibrated"] and "4 training samples" in heads["A"]["note"]
    assert not heads["V"]["calibrated"] and "no vision data" in heads["V"]["note"]
    assert heads["M"]["calibrated"]
    unknown = _heads({}, None)  # an older checkpoint that does not say
    assert not any(h["calibrated"] for h in unknown.values()) and "not stated" in unknown["A"]["note"]
