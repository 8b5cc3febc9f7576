"""MMSA feature files: loading, writing, a torch Dataset over them, and a synthetic generator of the same format.

A feature file is a pickled dict {"train", "valid", "test"} of per-split dicts of equal-length arrays (MMSA
layout, extended with an optional top-level "specs"; see contracts). Self-MM reads the BERT token ids from
"text_bert" (N, 3, L) = input_ids / attention_mask / token_type_ids, never the frozen features in "text".

Missing modalities: audio / vision length 0 means absent; text with an all-zero attention mask means absent.

CLI:
    python -m selfmm.data synth --out FILE --dataset mosi --train 64 --valid 16 --test 16 --seed 0
    python -m selfmm.data info FILE
"""

import argparse
import os
import pickle
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from selfmm.contract import AUDIO, AUDIO_LENGTHS, INPUTS, TEXT_IDS, TEXT_MASK, VISION, VISION_LENGTHS

SPLITS = ("train", "valid", "test")
UNIMODAL = ("T", "A", "V")  # SIMS human labels "regression_labels_T/_A/_V"


@dataclass
class Split:
    """One split of a feature file, cast to the dtypes the model takes."""

    ids: np.ndarray  # (N,) str "videoID$_$clipID"
    raw_text: np.ndarray  # (N,) str
    text_ids: np.ndarray  # (N, L) int64
    text_mask: np.ndarray  # (N, L) int64, all zeros = text absent
    audio: np.ndarray  # (N, Ta, Da) float32, zero padded
    audio_lengths: np.ndarray  # (N,) int64, 0 = audio absent
    vision: np.ndarray  # (N, Tv, Dv) float32, zero padded
    vision_lengths: np.ndarray  # (N,) int64, 0 = vision absent
    labels: np.ndarray  # (N,) float32, the multimodal label y_m
    unimodal_labels: dict[str, np.ndarray] = field(default_factory=dict)  # SIMS: {"T","A","V"} -> (N,) float32

    def __post_init__(self):
        n = len(self.labels)
        arrays = {k: v for k, v in vars(self).items() if isinstance(v, np.ndarray)} | self.unimodal_labels
        bad = {k: len(v) for k, v in arrays.items() if len(v) != n}
        if bad:
            raise ValueError(f"split arrays differ in length from labels ({n}): {bad}")
        if self.text_ids.shape != self.text_mask.shape or self.text_ids.ndim != 2:
            raise ValueError(f"text_ids {self.text_ids.shape}, text_mask {self.text_mask.shape}: need equal (N, L)")
        if self.audio.ndim != 3 or self.vision.ndim != 3:
            raise ValueError(f"audio {self.audio.shape} and vision {self.vision.shape} must be (N, T, D)")
        for m, t in (("audio", self.audio_len), ("vision", self.vision_len)):
            lengths = getattr(self, f"{m}_lengths")
            if len(lengths) and (lengths.min() < 0 or lengths.max() > t):
                raise ValueError(f"{m}_lengths must lie in [0, {t}]")

    def __len__(self) -> int:
        return len(self.labels)

    def inputs(self, rows: slice) -> dict[str, np.ndarray]:
        """The model's inputs for `rows`, trimmed (see trim_batch)."""
        return trim_batch({k: getattr(self, k)[rows] for k in INPUTS})

    @property
    def text_len(self) -> int:
        return self.text_ids.shape[1]

    @property
    def audio_len(self) -> int:
        return self.audio.shape[1]

    @property
    def audio_dim(self) -> int:
        return self.audio.shape[2]

    @property
    def vision_len(self) -> int:
        return self.vision.shape[1]

    @property
    def vision_dim(self) -> int:
        return self.vision.shape[2]

    @property
    def feature_dims(self) -> tuple[int, int, int]:
        """(text length L, audio dim, vision dim)."""
        return self.text_len, self.audio_dim, self.vision_dim

    def to_dict(self) -> dict:
        """The MMSA per-split dict (annotations and classification labels follow the sign of the label)."""
        sign = np.sign(self.labels).astype(np.int64)  # -1, 0, 1
        d = {
            "id": np.asarray(self.ids),
            "raw_text": np.asarray(self.raw_text),
            "text_bert": np.stack([self.text_ids, self.text_mask, 0 * self.text_ids], axis=1).astype(np.float32),
            "audio": self.audio.astype(np.float32),
            "audio_lengths": self.audio_lengths.astype(np.int64),
            "vision": self.vision.astype(np.float32),
            "vision_lengths": self.vision_lengths.astype(np.int64),
            "regression_labels": self.labels.astype(np.float32),
            "annotations": np.array(["Negative", "Neutral", "Positive"])[sign + 1],
            "classification_labels": sign + 1,
        }
        for m, v in self.unimodal_labels.items():
            d[f"regression_labels_{m}"] = v.astype(np.float32)
        return d


@dataclass
class FeatureFile:
    splits: dict[str, Split]  # "train", "valid", "test"
    specs: dict | None = None  # {"text"|"audio"|"vision": FeatureSpec.to_dict()} for files we extracted
    nonfinite: dict[str, int] = field(default_factory=dict)  # "split/modality" -> NaN/inf values set to 0 at load

    def __getitem__(self, name: str) -> Split:
        return self.splits[name]

    @property
    def feature_dims(self) -> tuple[int, int, int]:
        """(text length L, audio dim, vision dim), the same for every split."""
        return self.splits["train"].feature_dims

    @classmethod
    def from_dict(cls, data: dict, source: str = "feature file") -> "FeatureFile":
        """From the unpickled dict (or `synth_feature_file`'s), with MMSA's casts and NaN/inf handling."""
        missing = [s for s in SPLITS if s not in data]
        if missing:
            raise ValueError(f"{source}: missing splits {missing} (keys: {sorted(data)})")
        counts: dict[str, int] = {}
        splits = {s: _split_from_dict(data[s], s, counts) for s in SPLITS}
        dims = {s: sp.feature_dims for s, sp in splits.items()}
        if len(set(dims.values())) != 1:
            raise ValueError(f"{source}: splits differ in (text length, audio dim, vision dim): {dims}")
        if counts:
            warnings.warn(f"{source}: set NaN/inf feature values to 0: {counts}", stacklevel=2)
        return cls(splits=splits, specs=data.get("specs"), nonfinite=counts)

    def to_dict(self) -> dict:
        d = {name: split.to_dict() for name, split in self.splits.items()}
        if self.specs is not None:
            d["specs"] = self.specs
        return d


def trim_batch(batch) -> dict:
    """The model's six inputs of a batch (numpy or torch arrays), with the padding beyond the batch's longest
    text and sequences cut off (at least 1). Outputs do not change: masked tokens are not attended to and the
    LSTMs are read at length - 1; a MOSI batch of 15-word sentences padded to 50 tokens costs 3x less."""
    L = max(int(batch[TEXT_MASK].sum(1).max()), 1)
    Ta = max(int(batch[AUDIO_LENGTHS].max()), 1)
    Tv = max(int(batch[VISION_LENGTHS].max()), 1)
    cut = {TEXT_IDS: L, TEXT_MASK: L, AUDIO: Ta, VISION: Tv}
    return {k: batch[k][:, :cut[k]] if k in cut else batch[k] for k in INPUTS}


def padded_length(sequences: list[np.ndarray | None]) -> int:
    """MMSA's padded length over a whole dataset: int(mean + 3 * std) of the present lengths, within [1, max]."""
    lengths = np.array([len(s) for s in sequences if s is not None and len(s)])
    if not len(lengths):
        return 1
    return int(min(lengths.max(), max(1, int(lengths.mean() + 3 * lengths.std()))))


def pad_sequences(sequences: list[np.ndarray | None], length: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad (or truncate) variable-length (T, dim) arrays to (N, length, dim); None (absent) -> length 0."""
    out = np.zeros((len(sequences), length, dim), np.float32)
    lengths = np.zeros(len(sequences), np.int64)
    for i, seq in enumerate(sequences):
        if seq is None or not len(seq):
            continue
        if seq.shape[1] != dim:
            raise ValueError(f"sample {i} has {seq.shape[1]} feature columns, expected {dim}")
        n = min(len(seq), length)
        out[i, :n] = seq[:n]
        lengths[i] = n
    return out, lengths


def build_split(ids: list[str], raw_text: list[str], text_ids: np.ndarray, text_mask: np.ndarray,
                audio: list[np.ndarray | None], vision: list[np.ndarray | None], labels: list[float],
                audio_shape: tuple[int, int], vision_shape: tuple[int, int],
                unimodal_labels: dict[str, list[float]] | None = None) -> Split:
    """A Split from per-sample variable-length features; shapes are (padded length, dim) per modality, the
    same for every split of a file (use padded_length over all splits)."""
    a, a_len = pad_sequences(audio, *audio_shape)
    v, v_len = pad_sequences(vision, *vision_shape)
    return Split(ids=np.asarray(ids), raw_text=np.asarray(raw_text), text_ids=np.asarray(text_ids, np.int64),
                 text_mask=np.asarray(text_mask, np.int64), audio=a, audio_lengths=a_len, vision=v,
                 vision_lengths=v_len, labels=np.asarray(labels, np.float32),
                 unimodal_labels={m: np.asarray(v, np.float32) for m, v in (unimodal_labels or {}).items()})


def _finite(x: np.ndarray, what: str, counts: dict[str, int]) -> np.ndarray:
    """Set NaN/inf to 0 in place and count them: an LSTM fed one NaN turns the whole batch into NaN."""
    bad = ~np.isfinite(x)
    if bad.any():
        counts[what] = int(bad.sum())
        x[bad] = 0.0
    return x


def _lengths(d: dict, key: str, frames: np.ndarray, text_lengths: np.ndarray) -> np.ndarray:
    """Per-sample lengths, clipped to the padded length (old MMSA files can exceed it). A file without lengths
    whose frames are as many as its text tokens is MMSA's aligned layout (one row per word piece): there MMSA
    (`need_data_aligned`) runs the audio and vision LSTMs over the text length, and so do we. Any other file
    without lengths is read as full length."""
    n, t = frames.shape[:2]
    if key not in d:
        if t == d["text_bert"].shape[-1]:
            return np.clip(text_lengths, 0, t).astype(np.int64)
        return np.full(n, t, dtype=np.int64)
    return np.clip(np.asarray(d[key]).reshape(-1).astype(np.int64), 0, t)


def _split_from_dict(d: dict, name: str = "split", counts: dict[str, int] | None = None) -> Split:
    """One MMSA per-split dict -> Split, with MMSA's casts and NaN/inf handling. Float32 arrays of `d` are
    fixed in place rather than copied (MOSEI's audio alone is 2.4 GB)."""
    counts = {} if counts is None else counts
    if "text_bert" not in d:
        raise ValueError(f"{name}: no 'text_bert' token ids (keys: {sorted(d)}); Self-MM needs the BERT-token file")
    text = np.asarray(d["text_bert"])
    if text.ndim != 3 or text.shape[1] < 2 or not np.isfinite(text).all():
        raise ValueError(f"{name}: 'text_bert' must be finite (N, 3, L), got {text.shape}")
    audio = np.asarray(d["audio"], dtype=np.float32)
    audio[audio == -np.inf] = 0.0  # COVAREP writes log(0) = -inf; MMSA sets it to 0 and so do we, silently
    audio = _finite(audio, f"{name}/audio", counts)
    vision = _finite(np.asarray(d["vision"], dtype=np.float32), f"{name}/vision", counts)
    text_mask = text[:, 1].astype(np.int64)
    labels = np.asarray(d["regression_labels"], dtype=np.float32).reshape(-1)
    if not np.isfinite(labels).all():
        raise ValueError(f"{name}: {int((~np.isfinite(labels)).sum())} labels are NaN/inf")
    return Split(
        ids=np.asarray(d["id"]),
        raw_text=np.asarray(d["raw_text"]),
        text_ids=text[:, 0].astype(np.int64),
        text_mask=text_mask,
        audio=audio,
        audio_lengths=_lengths(d, "audio_lengths", audio, text_mask.sum(1)),
        vision=vision,
        vision_lengths=_lengths(d, "vision_lengths", vision, text_mask.sum(1)),
        labels=labels,
        unimodal_labels={
            m: np.asarray(d[f"regression_labels_{m}"], dtype=np.float32).reshape(-1)
            for m in UNIMODAL
            if f"regression_labels_{m}" in d
        },
    )


def load_feature_file(path: str | os.PathLike) -> FeatureFile:
    """Read an MMSA pickle (MOSI/MOSEI `unaligned_50.pkl`, SIMS `unaligned_39.pkl`, aligned files) or one of
    ours. Unpickling runs code from the file: load only files you trust (your own or the MMSA release,
    checked against its published SHA-256)."""
    with open(path, "rb") as f:
        data = pickle.load(f)
    return FeatureFile.from_dict(data, source=str(path))


def save_feature_file(path: str | os.PathLike, file: FeatureFile | dict) -> None:
    """Write a FeatureFile (or an already MMSA-shaped dict) as a pickle that `load_feature_file` and MMSA
    read. Written to a temporary name first so that an interrupted run leaves no half file."""
    data = file.to_dict() if isinstance(file, FeatureFile) else file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(data, f, protocol=4)
    os.replace(tmp, path)


class MMSADataset(Dataset):
    """Items are dicts of tensors; "index" is the position in the split, which ULGM uses to address its
    per-sample label memory."""

    def __init__(self, split: Split):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | int]:
        s = self.split
        item = {"index": i, **{k: torch.as_tensor(getattr(s, k)[i]) for k in INPUTS},
                "labels": torch.as_tensor(s.labels[i])}
        for m, v in s.unimodal_labels.items():
            item[f"labels_{m}"] = torch.as_tensor(v[i])
        return item


def make_loader(split: Split, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """Single-process loader whose shuffling order depends only on `seed`."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        MMSADataset(split), batch_size=batch_size, shuffle=shuffle, num_workers=0, drop_last=False, generator=generator
    )


# ---------------------------------------------------------------------------------------------------------
# Synthetic data in the real files' shapes, with a signal a short training can pick up.


@dataclass(frozen=True)
class SynthShape:
    text_len: int
    text_vocab: int
    audio_len: int
    audio_dim: int
    vision_len: int
    vision_dim: int
    label_max: float  # labels lie in [-label_max, label_max]
    label_step: float  # labels are multiples of this, like averaged annotator scores
    unimodal: bool = False  # SIMS has human T/A/V labels


# Padded lengths of the released unaligned files as stored (MOSI audio 375, vision 500; reference section 1.4).
# MMSA's config lists MOSI and MOSEI `seq_lens` as [50, 500, 375], but its loader overwrites them from the arrays.
SYNTH_SHAPES = {
    "mosi": SynthShape(50, 30522, 375, 5, 500, 20, 3.0, 0.2),  # 5 annotators
    "mosei": SynthShape(50, 30522, 500, 74, 500, 35, 3.0, 1 / 3),  # 3 annotators
    "sims": SynthShape(39, 21128, 400, 33, 55, 709, 1.0, 0.2, unimodal=True),  # bert-base-chinese vocab
}
CLS, SEP = 101, 102  # BERT special ids (both vocabularies); 0 = [PAD]
WORDS = 1000  # first ordinary token id; ids 1000..1049 read "positive", 1050..1099 "negative"


def _synth_split(rng: np.random.Generator, n: int, shape: SynthShape, name: str, missing_rate: float) -> dict:
    """Each sample has a latent sentiment u in [-1, 1]; each modality sees a noisy copy u_m of it:
    audio / vision columns 0-1 are shifted by u_m, and text uses "positive" / "negative" token ids with
    odds set by u_m. The label is u rounded to the dataset's steps, so it is a noisy function of the features."""
    s = shape
    if s.text_vocab < WORDS + 200 or s.text_len < 3:
        raise ValueError(f"need text_vocab >= {WORDS + 200} and text_len >= 3, got {s.text_vocab}, {s.text_len}")
    u = rng.uniform(-1, 1, n)
    u_m = {m: np.clip(u + rng.normal(0, 0.3, n), -1, 1) for m in UNIMODAL}

    text_ids = np.zeros((n, s.text_len), np.int64)
    words = []
    for i in range(n):
        k = int(rng.integers(min(3, s.text_len - 2), s.text_len - 1))  # words between [CLS] and [SEP]
        sentiment = rng.random(k) < 0.4
        positive = rng.random(k) < (1 + u_m["T"][i]) / 2
        polar = np.where(positive, rng.integers(WORDS, WORDS + 50, k), rng.integers(WORDS + 50, WORDS + 100, k))
        ids = np.where(sentiment, polar, rng.integers(WORDS + 100, s.text_vocab, k))
        text_ids[i, : k + 2] = [CLS, *ids, SEP]
        words.append(" ".join(f"w{t}" for t in ids))
    text_mask = (text_ids != 0).astype(np.int64)

    def frames(t: int, dim: int, um: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lengths = rng.integers(max(1, t // 4), t + 1, n)
        lengths[rng.random(n) < missing_rate] = 0
        x = rng.normal(0, 1, (n, t, dim)).astype(np.float32)
        x[:, :, : min(2, dim)] += um[:, None, None].astype(np.float32)
        x[np.arange(t)[None, :] >= lengths[:, None]] = 0.0  # zero padding after each length
        return x, lengths.astype(np.int64)

    audio, audio_lengths = frames(s.audio_len, s.audio_dim, u_m["A"])
    vision, vision_lengths = frames(s.vision_len, s.vision_dim, u_m["V"])

    def label(x: np.ndarray) -> np.ndarray:
        steps = np.round(np.clip(x, -1, 1) * s.label_max / s.label_step)
        return (steps * s.label_step).astype(np.float32)

    d = Split(
        ids=np.array([f"synth_{name}_{i // 4:04d}$_${i % 4}" for i in range(n)]),
        raw_text=np.array(words),
        text_ids=text_ids,
        text_mask=text_mask,
        audio=audio,
        audio_lengths=audio_lengths,
        vision=vision,
        vision_lengths=vision_lengths,
        labels=label(u + rng.normal(0, 0.05, n)),
        unimodal_labels={m: label(u_m[m]) for m in UNIMODAL} if s.unimodal else {},
    ).to_dict()
    return d


def synth_feature_file(
    dataset: str, n_train: int, n_valid: int, n_test: int, seed: int = 0, missing_rate: float = 0.0, **shape_overrides
) -> dict:
    """A feature-file dict shaped like `dataset` (mosi, mosei, sims). `shape_overrides` replace fields of
    SynthShape (e.g. audio_len=20, vision_len=20 for fast tests); `missing_rate` makes that share of samples
    lack audio, and independently vision (length 0)."""
    if dataset not in SYNTH_SHAPES:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(SYNTH_SHAPES)}")
    shape = replace(SYNTH_SHAPES[dataset], **{k: v for k, v in shape_overrides.items() if v is not None})
    rng = np.random.default_rng(seed)
    sizes = {"train": n_train, "valid": n_valid, "test": n_test}
    return {name: _synth_split(rng, n, shape, name, missing_rate) for name, n in sizes.items()}


def _describe(file: FeatureFile) -> str:
    lines = [
        f"feature dims (text length, audio, vision): {file.feature_dims}",
        f"specs: {sorted(file.specs) if file.specs else None}",
    ]
    for name, s in file.splits.items():
        lines.append(
            f"{name}: N={len(s)} audio (T={s.audio_len}) vision (T={s.vision_len}) "
            f"labels [{s.labels.min():.3g}, {s.labels.max():.3g}] absent: text {(s.text_mask.sum(1) == 0).sum()} "
            f"audio {(s.audio_lengths == 0).sum()} vision {(s.vision_lengths == 0).sum()}"
            + (f" unimodal labels {sorted(s.unimodal_labels)}" if s.unimodal_labels else "")
        )
    if file.nonfinite:
        lines.append(f"NaN/inf set to 0: {file.nonfinite}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m selfmm.data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("synth", help="write a synthetic feature file in the MMSA format")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--dataset", required=True, choices=sorted(SYNTH_SHAPES))
    p.add_argument("--train", type=int, default=64)
    p.add_argument("--valid", type=int, default=16)
    p.add_argument("--test", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--text-vocab", type=int, help="default: the dataset's BERT vocabulary size")
    p.add_argument("--text-len", type=int, help="default: 50 (MOSI, MOSEI) or 39 (SIMS)")
    p.add_argument("--audio-len", type=int, help="padded audio frames (default: the real file's)")
    p.add_argument("--vision-len", type=int, help="padded vision frames (default: the real file's)")
    p.add_argument("--missing-rate", type=float, default=0.0, help="share of samples without audio, and without vision")
    i = sub.add_parser("info", help="print the shapes and label ranges of a feature file")
    i.add_argument("path", type=Path)
    args = parser.parse_args(argv)

    if args.command == "synth":
        data = synth_feature_file(
            args.dataset, args.train, args.valid, args.test, args.seed, missing_rate=args.missing_rate,
            text_vocab=args.text_vocab, text_len=args.text_len, audio_len=args.audio_len, vision_len=args.vision_len,
        )
        save_feature_file(args.out, data)
        print(f"wrote {args.out}")
        print(_describe(load_feature_file(args.out)))
    else:
        print(_describe(load_feature_file(args.path)))


if __name__ == "__main__":
    main()
