"""Feature extraction shared by dataset preparation and the live app (no torch, no gradio).

Importing this package is cheap: the heavy libraries (librosa, MediaPipe, faster-whisper, PyAV) load only
when an extractor is used. See docs/features.md.

    from selfmm.features import extract_clip
    clip = extract_clip("clip.mp4")          # ClipFeatures: transcript, text_ids/mask, audio, vision, missing
"""
from __future__ import annotations

import importlib

from .spec import Extracted, FeatureSpec

_LAZY = {
    "Media": "media", "MediaError": "media", "load_media": "media", "load_audio": "media", "load_video": "media",
    "Transcriber": "asr", "Transcript": "asr", "Segment": "asr", "ASRError": "asr",
    "TextTokenizer": "text",
    "AudioExtractor": "audio", "WhisperAudioExtractor": "whisper_audio",
    "FaceExtractor": "vision",
    "ClipFeatures": "pipeline", "FeaturePipeline": "pipeline", "extract_clip": "pipeline",
}

__all__ = ["Extracted", "FeatureSpec", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
