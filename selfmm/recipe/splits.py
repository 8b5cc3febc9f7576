"""The data sources of the default model and how each is split, by speaker or by official usage, so that test
rows come from people the model never heard or saw."""
from __future__ import annotations

import numpy as np

RAVDESS_SPLIT = {"train": [f"{a:02d}" for a in range(1, 17)], "valid": ["17", "18", "19", "20"],
                 "test": ["21", "22", "23", "24"]}
# EmoDB by speaker, each side with a woman and a man: 03, 10, 11, 12, 15 are men; 08, 09, 13, 14, 16 women.
EMODB_SPLIT = {"train": ["03", "08", "09", "10", "11", "14"], "valid": ["12", "13"], "test": ["15", "16"]}
# FER2013 rows in the corpus: (official usage, stratified sample size or 0 for all). The face CNN trains on all
# of Training; Self-MM's vision head needs fewer, and every row costs padded audio memory.
FER_ROWS = {"train": ("Training", 6000), "valid": ("PublicTest", 1200), "test": ("PrivateTest", 0)}
MAX_STILL_FRAMES = 50
SOURCES = ("mosi", "ravdess", "emodb", "fer", "ckplus")
MOSI_MODES = {"train": "train", "dev": "valid", "valid": "valid", "test": "test"}
AUDIO = "whisper-encoder"  # the audio features: Whisper tiny.en's encoder states (docs/default-model.md)
AUDIO_GATE = 0.70  # issue 6's target for A: valence sign accuracy on held-out actors' non-neutral clips


def source_rows(ids, prefix: str) -> np.ndarray:
    """Row indices of a split whose sample id comes from data source `prefix` (ids are "source$_$stem")."""
    return np.array([i for i, s in enumerate(ids) if str(s).startswith(prefix + "$_$")], dtype=np.int64)

