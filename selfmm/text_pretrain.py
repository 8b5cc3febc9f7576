"""A text encoder regressed alone on sentiment-rated sentences: the text-only baseline, and the intermediate
fine-tuning that gives Self-MM's text branch a head start when the multimodal corpus has little text.

The regressor is the encoder's last-layer [CLS] vector (as in `selfmm.model.TextEncoder`) -> one linear
layer, trained with an L1 loss (Self-MM's loss) and Adam. `save_encoder` writes a folder that
`python -m selfmm.train --text-encoder DIR` starts from: the head is dropped, the tokenizer is copied.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


@dataclass
class TextFitConfig:
    epochs: int = 1
    batch_size: int = 32
    lr_encoder: float = 5e-5  # MMSA's learning_rate_bert for MOSI
    lr_head: float = 1e-3
    seed: int = 1111


class TextRegressor(nn.Module):
    """[CLS] of a BERT-architecture encoder -> linear -> one score."""

    def __init__(self, encoder_dir: str | Path, seed: int | None = None):
        """`seed` seeds torch's global RNG first: the head's initial weights come from it, and torch's default
        seed is random per process, so without a seed two runs give two different models."""
        from transformers import BertModel
        from transformers.utils import logging as hf_logging

        super().__init__()
        if seed is not None:
            torch.manual_seed(seed)
        hf_logging.set_verbosity_error()  # the unused pooler weights are expected
        self.encoder_dir = Path(encoder_dir)
        self.bert = BertModel.from_pretrained(str(encoder_dir), add_pooling_layer=False)
        self.head = nn.Linear(self.bert.config.hidden_size, 1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n = max(1, int(mask.sum(1).max()))  # trim the batch's padding: the speed-up is large on short texts
        hidden = self.bert(input_ids=ids[:, :n], attention_mask=mask[:, :n]).last_hidden_state
        return self.head(hidden[:, 0]).view(-1)


def predict(model: TextRegressor, ids: np.ndarray, mask: np.ndarray, batch_size: int = 128) -> np.ndarray:
    model.eval()
    order = np.argsort(mask.sum(1))  # similar lengths together, so trimming pays off
    out = np.empty(len(ids), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(ids), batch_size):
            b = order[start:start + batch_size]
            out[b] = model(torch.from_numpy(ids[b]), torch.from_numpy(mask[b])).numpy()
    return out


def fit(model: TextRegressor, ids: np.ndarray, mask: np.ndarray, labels: np.ndarray, cfg: TextFitConfig,
        valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        log: Callable[[str], None] = print) -> list[dict]:
    """Train for cfg.epochs; with `valid` (ids, mask, labels) keep the epoch of lowest validation MAE."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    opt = torch.optim.Adam([{"params": model.bert.parameters(), "lr": cfg.lr_encoder},
                            {"params": model.head.parameters(), "lr": cfg.lr_head}])
    y = torch.from_numpy(labels.astype(np.float32))
    history, best, best_state = [], float("inf"), None
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        losses = []
        for b in np.array_split(rng.permutation(len(ids)), max(1, len(ids) // cfg.batch_size)):
            loss = (model(torch.from_numpy(ids[b]), torch.from_numpy(mask[b])) - y[b]).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        row = {"epoch": epoch, "train_l1": round(float(np.mean(losses)), 4)}
        if valid is not None:
            row["valid_mae"] = round(float(np.mean(np.abs(predict(model, valid[0], valid[1]) - valid[2]))), 4)
            if row["valid_mae"] < best:
                best, best_state = row["valid_mae"], {k: v.clone() for k, v in model.state_dict().items()}
        history.append(row)
        log(f"text regressor {row}")
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def save_encoder(model: TextRegressor, out_dir: str | Path) -> Path:
    """The fine-tuned encoder (no head) with the original tokenizer files, ready for `--text-encoder`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.bert.save_pretrained(str(out))
    for name in TOKENIZER_FILES:
        if (model.encoder_dir / name).is_file():
            shutil.copyfile(model.encoder_dir / name, out / name)
    return out
