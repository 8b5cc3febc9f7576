"""A small CNN that reads a 48x48 grey face crop into an expression embedding: the default model's face features.

Trained here on FER2013's Training faces (seven expressions, in the wild), kept by the balanced valence-sign
accuracy on PublicTest, and exported to ONNX so that the app runs it without torch
(selfmm.features.face_embedding). Its penultimate layer is the embedding Self-MM's vision branch reads; the
classifier on top only trains it. The network standardises each image itself (mean 0, std 1), so a webcam's
exposure and FER's photographs meet on one scale.

    python -m selfmm.face_cnn --data ../shared/data --out runs/default/face_cnn
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfmm.corpora import FER_NAMES, Faces, ckplus, fer2013
from selfmm.metrics import valence_sign_accuracy

CLASSES = tuple(FER_NAMES.values())  # FER2013's order
SIZE = 48
INPUT, EMBEDDING, LOGITS = "faces", "embedding", "logits"


@dataclass
class FaceCNNConfig:
    widths: tuple[int, ...] = (32, 64, 128)
    convs: tuple[int, ...] = (1, 1, 2)  # convolutions per width; cheap at full resolution, deeper at 12x12
    embed_dim: int = 64
    dropout: float = 0.3
    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    shift: int = 4  # random translation in pixels (augmentation), with horizontal flips
    seed: int = 0


class FaceCNN(nn.Module):
    """(N, 48, 48) pixel values in [0, 255] -> (embedding (N, D), logits (N, 7))."""

    def __init__(self, cfg: FaceCNNConfig):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for width, convs in zip(cfg.widths, cfg.convs):
            for _ in range(convs):
                layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.embed = nn.Sequential(nn.Linear(channels, cfg.embed_dim), nn.BatchNorm1d(cfg.embed_dim), nn.ReLU())
        self.dropout = nn.Dropout(cfg.dropout)
        self.classify = nn.Linear(cfg.embed_dim, len(CLASSES))

    def forward(self, faces: Tensor) -> tuple[Tensor, Tensor]:
        x = faces.float().unsqueeze(1)
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = x.std(dim=(2, 3), keepdim=True).clamp(min=1.0)
        x = self.features((x - mean) / std).mean(dim=(2, 3))
        embedding = self.embed(x)
        return embedding, self.classify(self.dropout(embedding))


def augment(x: Tensor, shift: int, generator: torch.Generator) -> Tensor:
    """Random horizontal flips and translations of up to `shift` pixels (edge pixels repeated)."""
    n = x.shape[0]
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip[:, None, None], x.flip(-1), x)
    if shift:
        padded = F.pad(x.unsqueeze(1), (shift,) * 4, mode="replicate").squeeze(1)
        dx, dy = torch.randint(0, 2 * shift + 1, (2, n), generator=generator)
        rows = (dy[:, None] + torch.arange(SIZE)[None, :])[:, :, None].expand(n, SIZE, SIZE)
        cols = (dx[:, None] + torch.arange(SIZE)[None, :])[:, None, :].expand(n, SIZE, SIZE)
        x = padded[torch.arange(n)[:, None, None], rows, cols]
    return x


def valence_score(logits: Tensor) -> Tensor:
    """The CNN's own valence reading: the expected valence under its class probabilities."""
    from selfmm.corpora import VALENCE

    values = torch.tensor([VALENCE[c] for c in CLASSES])
    return logits.softmax(-1) @ values


@torch.no_grad()
def run(model: FaceCNN, images: np.ndarray, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, logits) of uint8 images, in eval mode."""
    model.eval()
    emb, logits = [], []
    for i in range(0, len(images), batch_size):
        e, lg = model(torch.from_numpy(images[i:i + batch_size]).float())
        emb.append(e.numpy())
        logits.append(lg.numpy())
    return np.concatenate(emb), np.concatenate(logits)


def evaluate(model: FaceCNN, faces: Faces) -> dict[str, float]:
    """Seven-class accuracy and the balanced valence-sign accuracy of the CNN's own valence reading."""
    _, logits = run(model, faces.images)
    labels = np.array([CLASSES.index(e) if e in CLASSES else -1 for e in faces.emotions])
    known = labels >= 0
    valence = valence_score(torch.from_numpy(logits)).numpy()
    return {"acc7": round(float(np.mean(logits[known].argmax(1) == labels[known])), 4),
            "valence_sign": valence_sign_accuracy(valence, faces.emotions)}


def train(train_faces: Faces, valid_faces: Faces, cfg: FaceCNNConfig, log=print) -> tuple[FaceCNN, list[dict]]:
    """AdamW with a one-cycle schedule; the epoch with the best validation valence-sign accuracy is kept."""
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    model = FaceCNN(cfg)
    x = torch.from_numpy(train_faces.images).float()
    y = torch.tensor([CLASSES.index(e) for e in train_faces.emotions])
    steps = cfg.epochs * ((len(x) + cfg.batch_size - 1) // cfg.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    history, best, best_state = [], -1.0, None
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.time()
        model.train()
        order = torch.randperm(len(x), generator=g)
        total = 0.0
        for i in range(0, len(x), cfg.batch_size):
            rows = order[i:i + cfg.batch_size]
            _, logits = model(augment(x[rows], cfg.shift, g))
            loss = F.cross_entropy(logits, y[rows], label_smoothing=cfg.label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(rows)
        record = {"epoch": epoch, "train_loss": round(total / len(x), 4), **{
            f"valid_{k}": v for k, v in evaluate(model, valid_faces).items()}, "seconds": round(time.time() - t0, 1)}
        history.append(record)
        log(json.dumps(record))
        if record["valid_valence_sign"] > best:
            best = record["valid_valence_sign"]
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model.eval(), history


class _Export(nn.Module):
    def __init__(self, model: FaceCNN):
        super().__init__()
        self.model = model

    def forward(self, faces: Tensor) -> tuple[Tensor, Tensor]:
        return self.model(faces)


def export_onnx(model: FaceCNN, path: Path) -> None:
    """One self-contained ONNX file: faces float32 (N, 48, 48) in [0, 255] -> embedding (N, D), logits (N, 7)."""
    model.eval()
    with torch.no_grad():
        torch.onnx.export(_Export(model), (torch.rand(2, SIZE, SIZE) * 255,), str(path), input_names=[INPUT],
                          output_names=[EMBEDDING, LOGITS], opset_version=17, dynamo=False,
                          dynamic_axes={INPUT: {0: "batch"}, EMBEDDING: {0: "batch"}, LOGITS: {0: "batch"}})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=FaceCNNConfig.epochs)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = FaceCNNConfig(epochs=args.epochs)
    fer = fer2013(args.data / "faces" / "fer2013.npz")
    split = {name: fer.take(np.flatnonzero(fer.groups == name)) for name in ("Training", "PublicTest", "PrivateTest")}
    model, history = train(split["Training"], split["PublicTest"], cfg)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save({"config": asdict(cfg), "state": model.state_dict()}, args.out / "face_cnn.pt")
    export_onnx(model, args.out / "face_cnn.onnx")
    report = {"config": asdict(cfg), "history": history,
              "valid_PublicTest": evaluate(model, split["PublicTest"]),
              "test_PrivateTest": evaluate(model, split["PrivateTest"]),
              "test_CKplus48": evaluate(model, ckplus(args.data / "faces" / "ckplus48"))}
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "history"}, indent=1))


if __name__ == "__main__":
    main()
