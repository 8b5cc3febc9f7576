"""The Self-MM network (Yu et al., AAAI 2021) in one file.

A fine-tuned BERT-architecture text encoder ([CLS] of the last layer), one-layer LSTMs for audio and vision
(final hidden state of the valid frames, then a linear projection), a fusion MLP over the concatenation and
three unimodal MLPs. Each MLP's first ReLU layer is the feature vector the ULGM reads. `av_encoder="mean"` (our
option) replaces the two LSTMs by the mean of the valid frames.

Absent modalities (our extension, see docs/method.md): audio or vision with length 0, or text whose attention
mask is all zeros, is absent. The model replaces an absent modality's encoder vector by zeros before the
fusion and its own head, so the fused output sees absence in one defined way and nothing crashes. With every
modality present this is exactly the reference network.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from transformers import BertConfig, BertModel

from selfmm.config import ModelConfig


class TextEncoder(nn.Module):
    """BERT-architecture encoder whose output is the last layer's [CLS] vector (not the pooler)."""

    def __init__(self, bert_config: dict):
        super().__init__()
        config = BertConfig.from_dict(bert_config)
        config._attn_implementation = "eager"  # exports to ONNX identically; SDPA's masking differs by version
        self.bert = BertModel(config, add_pooling_layer=False)

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        # An absent text (all-zero mask) still attends to its first token, so no row is fully masked.
        # (A present text has [CLS] there already, so its mask is unchanged.)
        mask = torch.cat([torch.ones_like(mask[:, :1]), mask[:, 1:]], dim=1)
        hidden = self.bert(input_ids=ids, attention_mask=mask,
                           token_type_ids=torch.zeros_like(ids)).last_hidden_state
        return hidden[:, 0]


class SequenceEncoder(nn.Module):
    """The reference's AuViSubNet: LSTM -> final hidden state of the valid frames -> dropout -> linear.

    It runs the LSTM over the padded batch and takes the output at `length - 1`. For a unidirectional LSTM that
    is the final hidden state of `pack_padded_sequence` (tests/test_model.py proves it), with the same weights,
    but it exports to ONNX and accepts length 0 (then the caller's mask discards the result).
    """

    def __init__(self, in_size: int, hidden: int, out_size: int, dropout: float):
        super().__init__()
        self.rnn = nn.LSTM(in_size, hidden, num_layers=1, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden, out_size)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        out, _ = self.rnn(x)
        last = (lengths.clamp(min=1, max=x.shape[1]) - 1).view(-1, 1, 1).expand(-1, 1, out.shape[2])
        h = out.gather(1, last).squeeze(1)
        return self.linear(self.dropout(h))


class MeanEncoder(nn.Module):
    """Mean of the valid frames -> dropout -> linear: the `av_encoder="mean"` alternative to the LSTM.

    Why: frames that already summarise a window (Whisper's encoder states, a face CNN's embedding) carry the
    clip's valence in their average; a linear read-out of that average is what held across speakers in the
    probes (docs/default-model.md), where the LSTM's last state depends on how the clip ends. Length 0 gives
    zeros (the caller's mask discards them).
    """

    def __init__(self, in_size: int, out_size: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_size, out_size)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        valid = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]).to(x.dtype)
        mean = (x * valid.unsqueeze(2)).sum(1) / valid.sum(1, keepdim=True).clamp(min=1.0)
        return self.linear(self.dropout(mean))


def sequence_encoder(kind: str, in_size: int, hidden: int, out_size: int, dropout: float) -> nn.Module:
    """The audio or vision subnet named by ModelConfig.av_encoder."""
    if kind == "mean":
        return MeanEncoder(in_size, out_size, dropout)
    return SequenceEncoder(in_size, hidden, out_size, dropout)


class Head(nn.Module):
    """Dropout -> Linear -> ReLU (the ULGM feature) -> Linear -> ReLU -> Linear(out)."""

    def __init__(self, in_size: int, dim: int, dropout: float, out: int = 1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.layer_1 = nn.Linear(in_size, dim)
        self.layer_2 = nn.Linear(dim, dim)
        self.layer_3 = nn.Linear(dim, out)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feature = torch.relu(self.layer_1(self.dropout(x)))
        return self.layer_3(torch.relu(self.layer_2(feature))), feature


def frame_stats(frames: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor] | None:
    """Per-column mean and std (at least 1e-3) over the valid frames of (N, T, D) data; None under two frames."""
    x = frames[torch.arange(frames.shape[1])[None, :] < lengths[:, None]]
    return (x.mean(0), x.std(0).clamp(min=1e-3)) if len(x) > 1 else None


def _keep(x: Tensor, present: Tensor) -> Tensor:
    """Zeros for absent rows; `where` (not a product) so that a non-finite absent row cannot leak."""
    return torch.where(present.unsqueeze(1), x, torch.zeros_like(x))


class SelfMM(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.text_model = TextEncoder(c.text_encoder)
        self.audio_model = sequence_encoder(c.av_encoder, c.audio_in, c.a_lstm_hidden, c.audio_out, c.a_lstm_dropout)
        self.video_model = sequence_encoder(c.av_encoder, c.vision_in, c.v_lstm_hidden, c.video_out,
                                            c.v_lstm_dropout)
        self.post_fusion = Head(c.text_dim + c.audio_out + c.video_out, c.post_fusion_dim, c.post_fusion_dropout,
                                out=3 if c.fusion == "convex" else 1)
        self.post_text = Head(c.text_dim, c.post_text_dim, c.post_text_dropout)
        self.post_audio = Head(c.audio_out, c.post_audio_dim, c.post_audio_dropout)
        self.post_video = Head(c.video_out, c.post_video_dim, c.post_video_dropout)
        # Input standardisation (identity unless config.normalize_inputs; see set_input_stats).
        for m, dim in (("audio", c.audio_in), ("vision", c.vision_in)):
            self.register_buffer(f"{m}_mean", torch.zeros(dim))
            self.register_buffer(f"{m}_std", torch.ones(dim))

    @torch.no_grad()
    def set_input_stats(self, modality: str, frames: Tensor, lengths: Tensor) -> None:
        """Standardise `modality` with the statistics of (N, T, D) training data (`frame_stats`)."""
        stats = frame_stats(frames, lengths)
        if stats is not None:
            getattr(self, f"{modality}_mean").copy_(stats[0])
            getattr(self, f"{modality}_std").copy_(stats[1])

    def forward(self, text_ids: Tensor, text_mask: Tensor, audio: Tensor, audio_lengths: Tensor,
                vision: Tensor, vision_lengths: Tensor) -> dict[str, Tensor]:
        audio = (audio - self.audio_mean) / self.audio_std
        vision = (vision - self.vision_mean) / self.vision_std
        present = torch.stack([text_mask.sum(1) > 0, audio_lengths > 0, vision_lengths > 0], dim=1)
        text = _keep(self._encode_text(text_ids, text_mask, present[:, 0]), present[:, 0])
        audio_h = _keep(self.audio_model(audio, audio_lengths), present[:, 1])
        video_h = _keep(self.video_model(vision, vision_lengths), present[:, 2])
        M, f_f = self.post_fusion(torch.cat([text, audio_h, video_h], dim=-1))
        T, f_t = self.post_text(text)
        A, f_a = self.post_audio(audio_h)
        V, f_v = self.post_video(video_h)
        if self.config.bounded_heads:  # H * tanh(z / H): every score in [-H, H] by construction
            T, A, V = (self._bound(x) for x in (T, A, V))
        if self.config.fusion == "convex":
            # M = a softmax-weighted mean of the present channels: never outside [min, max] of them.
            weights = torch.where(present, M, torch.full_like(M, -1e4)).softmax(dim=1)
            M = (weights * torch.cat([T, A, V], dim=1)).sum(dim=1, keepdim=True)
        elif self.config.bounded_heads:
            M = self._bound(M)
        return {"M": M, "T": T, "A": A, "V": V,
                "Feature_f": f_f, "Feature_t": f_t, "Feature_a": f_a, "Feature_v": f_v}

    def _bound(self, x: Tensor) -> Tensor:
        b = self.config.output_bound
        return b * torch.tanh(x / b)

    def _encode_text(self, ids: Tensor, mask: Tensor, present: Tensor) -> Tensor:
        """The encoder's vectors; outside ONNX export only the rows that have text go through it (absent rows are
        zeroed by the caller either way), so face- and voice-only samples cost no encoder time in training."""
        if torch.onnx.is_in_onnx_export() or bool(present.all()):
            return self.text_model(ids, mask)
        out = torch.zeros(ids.shape[0], self.config.text_dim, dtype=torch.float32, device=ids.device)
        if bool(present.any()):
            out[present] = self.text_model(ids[present], mask[present])
        return out

    @classmethod
    def from_pretrained_text(cls, config: ModelConfig, encoder_dir: str) -> "SelfMM":
        """A fresh model whose text encoder starts from the pretrained weights in `encoder_dir`."""
        from transformers.utils import logging as hf_logging

        model = cls(config)
        hf_logging.set_verbosity_error()  # the checkpoint's unused pooler weights are expected, not news
        pretrained = BertModel.from_pretrained(encoder_dir, add_pooling_layer=False)
        missing, unexpected = model.text_model.bert.load_state_dict(pretrained.state_dict(), strict=False)
        if missing:
            raise ValueError(f"text encoder in {encoder_dir} lacks weights: {missing[:5]}")
        return model


def load_text_encoder_config(encoder_dir: str) -> dict:
    """The BERT config of a local encoder folder, refusing non-BERT architectures with a clear message."""
    config = BertConfig.from_pretrained(encoder_dir)
    if config.model_type != "bert":
        raise ValueError(f"{encoder_dir} holds a {config.model_type!r} model; Self-MM needs a BERT-architecture encoder")
    return config.to_dict()
