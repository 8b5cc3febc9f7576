"""The text tokenizer the model was trained with."""
from __future__ import annotations

import shutil

import numpy as np


def test_tokenizer(tmp_path):
    from selfmm.features import TextTokenizer
    from selfmm.features.text import default_encoder_dir

    tok = TextTokenizer()
    ids, mask = tok.encode("I really love this movie")
    assert ids.dtype == mask.dtype == np.int64 and ids.shape == mask.shape == (50,)
    n = int(mask.sum())
    assert ids[0] == tok.cls_id and ids[n - 1] == tok.sep_id and n == 7 and not ids[n:].any()
    ids, mask = tok.encode("word " * 200)
    assert mask.all() and ids[-1] == tok.sep_id
    ids, mask = tok.encode("   ")
    assert not ids.any() and not mask.any()
    # The spec names the vocabulary by content: a copy (as shipped in a model artifact) is the same spec.
    copy = tmp_path / "tokenizer.json"
    shutil.copy(default_encoder_dir() / "tokenizer.json", copy)
    assert TextTokenizer(copy).spec.hash() == tok.spec.hash()
    assert TextTokenizer(copy, max_length=40).spec.hash() != tok.spec.hash()
