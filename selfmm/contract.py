"""The ONNX contract shared by training, export and the app: the graph's inputs, its four heads, and how a
model file is opened. Written once here so that the exporter and the loader cannot drift apart.

Imports only the standard library and numpy: the app (which never imports torch) reads it as the exporter does.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

TEXT_IDS, TEXT_MASK = "text_ids", "text_mask"
AUDIO, AUDIO_LENGTHS = "audio", "audio_lengths"
VISION, VISION_LENGTHS = "vision", "vision_lengths"
INPUTS = (TEXT_IDS, TEXT_MASK, AUDIO, AUDIO_LENGTHS, VISION, VISION_LENGTHS)  # in the graph's order
DTYPES: dict[str, type] = {TEXT_IDS: np.int64, TEXT_MASK: np.int64, AUDIO: np.float32, AUDIO_LENGTHS: np.int64,
                           VISION: np.float32, VISION_LENGTHS: np.int64}
# Each input's axes by name; None marks the fixed feature dimension, every named axis is symbolic in the graph.
AXES: dict[str, tuple[str | None, ...]] = {
    TEXT_IDS: ("batch", "text_len"), TEXT_MASK: ("batch", "text_len"),
    AUDIO: ("batch", "audio_frames", None), AUDIO_LENGTHS: ("batch",),
    VISION: ("batch", "vision_frames", None), VISION_LENGTHS: ("batch",),
}
LENGTHS = {AUDIO: AUDIO_LENGTHS, VISION: VISION_LENGTHS}  # frame input -> its lengths input

HEADS = ("M", "T", "A", "V")  # the graph's outputs, each (B,) float32, all on [-3, 3]
MODALITIES = ("text", "audio", "vision")
HEAD_MODALITY = {"M": "fusion", "T": "text", "A": "audio", "V": "vision"}
UNIMODAL = {h: m for h, m in HEAD_MODALITY.items() if m in MODALITIES}  # "T" -> "text", ...


def feeds(text_ids: Any, text_mask: Any, audio: Any, audio_lengths: Any, vision: Any,
          vision_lengths: Any) -> dict[str, np.ndarray]:
    """The six arrays by input name, each in the graph's dtype (arrays already of that dtype are not copied)."""
    arrays = (text_ids, text_mask, audio, audio_lengths, vision, vision_lengths)
    return {k: np.asarray(x, DTYPES[k]) for k, x in zip(INPUTS, arrays)}


def open_session(path: str | os.PathLike, threads: int = 2, quiet: bool = False) -> Any:
    """An ONNX Runtime session on the CPU with `threads` intra-op threads and one inter-op thread (the app
    and the measurements share one setting). quiet: log errors only."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    # Idle threads sleep instead of spinning: the app runs Whisper beside these sessions on the same cores.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if quiet:
        opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
