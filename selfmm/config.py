"""Plain configuration of Self-MM: the model's shape and the training recipe.

The per-dataset values are MMSA's `config_regression.json` entries for `self_mm` (the hyper-parameters that
produced MMSA's published result table; see docs/method.md). `--dataset` picks these values and the metric
family; feature dimensions always come from the data file.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

FUSIONS = ("mlp", "convex")
AV_ENCODERS = ("lstm", "mean")


@dataclass
class ModelConfig:
    """Shape of the network. `text_encoder` is the Hugging Face BERT config as a dict, so that a checkpoint
    rebuilds the encoder without the folder it was first loaded from."""

    text_encoder: dict[str, Any] = field(default_factory=dict)
    audio_in: int = 5
    vision_in: int = 20
    a_lstm_hidden: int = 16
    v_lstm_hidden: int = 32
    a_lstm_dropout: float = 0.0
    v_lstm_dropout: float = 0.0
    audio_out: int = 16
    video_out: int = 32
    post_fusion_dim: int = 128
    post_text_dim: int = 32
    post_audio_dim: int = 16
    post_video_dim: int = 32
    post_fusion_dropout: float = 0.0
    post_text_dropout: float = 0.1
    post_audio_dropout: float = 0.1
    post_video_dropout: float = 0.0
    # Off in the paper's setting (MMSA feeds raw features). On, the model standardises audio and vision frames
    # with the training split's per-column mean and std, stored in the model (and so in its ONNX graph).
    normalize_inputs: bool = False
    # Our extensions for the demo models (docs/method.md), off in the paper's setting:
    # bounded_heads: T, A and V are H * tanh(z / H), so every unimodal score lies in [-H, H] by construction.
    # fusion="convex": M is a weighted mean of the present modalities' T, A, V with weights (a softmax) read from
    # the fusion features, so M lies between its channels; "mlp" is the paper's fusion MLP with a linear output.
    bounded_heads: bool = False
    fusion: str = "mlp"
    output_bound: float = 3.0
    # av_encoder="mean": audio and vision are the mean of their valid frames, then a linear layer, instead of
    # the paper's LSTM subnet (the *_lstm_hidden sizes are then unused; the dropouts apply before the linear).
    av_encoder: str = "lstm"

    @property
    def text_dim(self) -> int:
        return int(self.text_encoder.get("hidden_size", 768))

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.av_encoder not in AV_ENCODERS:
            raise ValueError(f"av_encoder must be one of {AV_ENCODERS}, got {self.av_encoder!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TrainConfig:
    """The training recipe of MMSA's Self-MM trainer, with our two switches documented in docs/method.md."""

    dataset: str = "mosi"
    batch_size: int = 16
    lr_bert: float = 5e-5
    lr_audio: float = 5e-3
    lr_video: float = 5e-3
    lr_other: float = 1e-3
    wd_bert: float = 1e-3
    wd_audio: float = 1e-3
    wd_video: float = 1e-3
    wd_other: float = 1e-3
    H: float = 3.0
    exclude_zero: bool = False  # False produced MMSA's published table (MMSA v1 had no key); v2 code uses True
    update_every: int = 4  # gradient accumulation: one optimizer step per 4 batches, gradients summed
    step_remainder: bool = False  # True fixes the reference's dropped end-of-epoch remainder batches
    given_unimodal_labels: bool = False  # use the corpus's unimodal labels where it states them (our extension)
    ema_decay: float = 0.0  # >0: select and keep an exponential moving average of the weights (our extension)
    bf16: bool = False  # bf16 autocast of the forward passes, for GPUs (our option; the paper trains in float32)
    early_stop: int = 8
    max_epochs: int | None = None
    seed: int = 1111

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# MMSA config_regression.json, self_mm: (model overrides, training overrides) per dataset.
_DATASETS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "mosi": (
        dict(a_lstm_hidden=16, v_lstm_hidden=32, post_fusion_dim=128, post_text_dim=32, post_audio_dim=16,
             post_video_dim=32, post_fusion_dropout=0.0, post_text_dropout=0.1, post_audio_dropout=0.1,
             post_video_dropout=0.0),
        dict(batch_size=16, lr_bert=5e-5, lr_audio=5e-3, lr_video=5e-3, lr_other=1e-3, wd_bert=1e-3,
             wd_audio=1e-3, wd_video=1e-3, wd_other=1e-3, H=3.0),
    ),
    "mosei": (
        dict(a_lstm_hidden=16, v_lstm_hidden=32, post_fusion_dim=128, post_text_dim=32, post_audio_dim=16,
             post_video_dim=32, post_fusion_dropout=0.1, post_text_dropout=0.0, post_audio_dropout=0.0,
             post_video_dropout=0.0),
        dict(batch_size=32, lr_bert=5e-5, lr_audio=5e-3, lr_video=1e-4, lr_other=1e-3, wd_bert=1e-3,
             wd_audio=0.0, wd_video=0.0, wd_other=1e-2, H=3.0),
    ),
    "sims": (
        dict(a_lstm_hidden=16, v_lstm_hidden=64, post_fusion_dim=128, post_text_dim=64, post_audio_dim=16,
             post_video_dim=32, post_fusion_dropout=0.0, post_text_dropout=0.1, post_audio_dropout=0.1,
             post_video_dropout=0.0),
        dict(batch_size=32, lr_bert=5e-5, lr_audio=5e-3, lr_video=5e-3, lr_other=1e-3, wd_bert=1e-3,
             wd_audio=1e-2, wd_video=1e-2, wd_other=1e-3, H=1.0),
    ),
}
DATASETS = tuple(_DATASETS)


def dataset_configs(dataset: str, text_encoder: dict[str, Any], audio_in: int, vision_in: int,
                    **train_overrides: Any) -> tuple[ModelConfig, TrainConfig]:
    """The model and training configs of `dataset`, with feature sizes taken from the data."""
    if dataset not in _DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    model_kw, train_kw = _DATASETS[dataset]
    model = ModelConfig(text_encoder=text_encoder, audio_in=audio_in, vision_in=vision_in, **model_kw)
    train = replace(TrainConfig(dataset=dataset, **train_kw),
                    **{k: v for k, v in train_overrides.items() if v is not None})
    return model, train
