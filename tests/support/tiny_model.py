"""A tiny Self-MM (two-layer BERT, synthetic data with absent modalities) and its export through the CLI:
the model that the export and artifact tests share (the session fixture `tiny_export` is in conftest.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from selfmm import contract
from selfmm.config import dataset_configs
from selfmm.data import load_feature_file, save_feature_file, synth_feature_file
from selfmm.features.spec import FeatureSpec
from selfmm.model import SelfMM
from selfmm.train import Trainer, save_checkpoint, set_seed

REPO = Path(__file__).resolve().parents[2]
VOCAB = 1300  # the synthetic generator needs ids up to 1200
TINY_BERT = dict(model_type="bert", vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=64)
TEXT_LEN, AUDIO_DIM, VISION_DIM = 12, 5, 20  # synth "mosi" dims
HEADS = contract.HEADS
CARD_EXTRA = {"name": "tiny-synth", "license": "MIT", "heads": {"M": True, "T": {"calibrated": True, "note": "synth"}},
              "training_data": [{"name": "synthetic", "provenance": "selfmm.data synth, seed 0"}]}


def write_tokenizer(folder: Path) -> Path:
    """A word-level tokenizer for the synthetic text ("w1234" -> id 1234), with BERT's special ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    special = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]"}
    vocab = {special.get(i, f"w{i}" if i >= 1000 else f"[unused{i}]"): i for i in range(VOCAB)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.BertProcessing(("[SEP]", 102), ("[CLS]", 101))
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    return folder


def synth_specs(audio_version: str = "1") -> dict[str, dict]:
    return {
        "text": FeatureSpec("word-level-test", "1", "text", dim=TEXT_LEN, params={"max_length": TEXT_LEN}).to_dict(),
        "audio": FeatureSpec("synth-audio", audio_version, "audio", rate=16000, hop=800, fps=20, dim=AUDIO_DIM,
                             columns=tuple(f"a{i}" for i in range(AUDIO_DIM))).to_dict(),
        "vision": FeatureSpec("synth-vision", "1", "vision", fps=10, dim=VISION_DIM,
                              columns=tuple(f"v{i}" for i in range(VISION_DIM))).to_dict(),
    }


def make_checkpoint(folder: Path, epochs: int = 1) -> tuple[Path, Path]:
    """Train the tiny model briefly on synthetic data (a fifth of samples lack audio, a fifth vision)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = synth_feature_file("mosi", 48, 16, 24, seed=0, missing_rate=0.2, text_vocab=VOCAB, text_len=TEXT_LEN,
                              audio_len=16, vision_len=10)
    data["specs"] = synth_specs()
    data_path = folder / "synth.pkl"
    save_feature_file(data_path, data)
    file = load_feature_file(data_path)
    set_seed(0)
    model_cfg, cfg = dataset_configs("mosi", TINY_BERT, AUDIO_DIM, VISION_DIM, max_epochs=epochs, batch_size=8)
    trainer = Trainer(SelfMM(model_cfg), cfg, file, torch.device("cpu"))
    best_epoch, n, valid = trainer.fit()
    ckpt = folder / "best.pt"
    save_checkpoint(ckpt, trainer.model, cfg, file, encoder_dir=write_tokenizer(folder / "tiny-bert"),
                    data_path=data_path, result={"seed": 0, "best_epoch": best_epoch, "epochs": n, "valid": valid,
                                                 "test": trainer.evaluate("test")})
    return ckpt, data_path


def run_export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "export", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=900)
