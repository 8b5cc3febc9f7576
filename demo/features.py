"""The app's thin adapter over `selfmm.features` (the one feature code path, shared with dataset preparation)
and the ONNX artifact loader: the few calls the pipeline makes, with the extractors' errors turned into the
app's InputError. Only this module knows their class names.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from demo.limits import InputError
from selfmm.contract import HEADS


def read_card(model_dir: str | os.PathLike) -> dict:
    """The card's settings the extractors need; {} when it is missing or damaged (the artifact loader, which
    runs next, then says what is wrong with it)."""
    path = Path(model_dir) / "card.json"
    try:
        card = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return card if isinstance(card, dict) else {}


class SetupError(RuntimeError):
    """A model the extractors need (Whisper) cannot be loaded; str(e) says which and why."""


def load_features(model_dir: str | os.PathLike, asr_model: str | None = None):
    """The feature pipeline (Whisper, FaceMesh, librosa, the model's own tokenizer), loaded once. asr_model: a
    CTranslate2 Whisper folder instead of the offline default tiny.en."""
    from selfmm.features.asr import ASRError
    from selfmm.features.pipeline import (AUDIO_FEATURES, DEFAULT_AUDIO, DEFAULT_VISION, VISION_FEATURES,
                                          FeaturePipeline)
    from selfmm.features.text import MAX_LENGTH

    asr_model = os.path.expanduser(asr_model) if asr_model else None
    if asr_model and not Path(asr_model).exists() and ("/" in asr_model or asr_model.startswith((".", "~"))):
        # a path that is not there: say so, instead of asking the Hugging Face hub for a model of that name
        raise SetupError(f"the Whisper model folder {asr_model} does not exist")
    card = read_card(model_dir)
    max_length = int((card.get("text_encoder") or {}).get("max_length") or MAX_LENGTH)
    tokenizer_json = Path(model_dir) / "tokenizer.json"
    # the extractors the model was trained with; an unknown one gets the default, and the artifact loader then
    # says what differs. A learned face embedding ships inside the artifact (its file named by the spec).
    specs = card.get("feature_specs")
    specs = specs if isinstance(specs, dict) else {}
    audio, vision = (specs.get(m) if isinstance(specs.get(m), dict) else {} for m in ("audio", "vision"))
    vision_name = vision.get("name") if vision.get("name") in VISION_FEATURES else DEFAULT_VISION
    vision_file = str((vision.get("params") or {}).get("file") or "")
    vision_model = Path(model_dir) / Path(vision_file).name if vision_file else None
    if vision_name != DEFAULT_VISION and (vision_model is None or not vision_model.is_file()):
        raise SetupError(f"the model's face features need {vision_file or 'an embedding model'}, which is not in "
                         f"{model_dir}")
    try:
        return FeaturePipeline(asr_model=asr_model,
                               tokenizer_json=tokenizer_json if tokenizer_json.is_file() else None,
                               max_length=max_length,
                               audio=audio.get("name") if audio.get("name") in AUDIO_FEATURES else DEFAULT_AUDIO,
                               vision_features=vision_name, vision_model=vision_model)
    except ASRError as e:
        raise SetupError(str(e)) from None


class StageWatch:
    """Reports each extractor's end (speech recognition, voice, face) to `sink`, so that the UI can show
    progress per stage although FeaturePipeline.extract is one call. The extractors run in the pipeline's
    worker threads, so `sink` should only hand the stage name over (e.g. queue.put)."""

    LABELS = {"asr": "Speech recognised", "audio": "Voice features ready", "vision": "Face features ready"}

    def __init__(self, features):
        self.sink = None
        features.audio = _Reported(features.audio, "extract", "audio", self)
        if features.face is not None:
            features.face = _Reported(features.face, "extract", "vision", self)
        if getattr(features, "_transcriber", None) is not None:
            features._transcriber = _Reported(features._transcriber, "transcribe", "asr", self)

    def done(self, stage: str) -> None:
        sink = self.sink
        if sink is not None:
            sink(stage)


class _Reported:
    """A transparent wrapper of one extractor whose `method` tells the watch when it has finished."""

    def __init__(self, inner, method: str, stage: str, watch: StageWatch):
        self._inner, self._method, self._stage, self._watch = inner, method, stage, watch

    def __getattr__(self, name: str):
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def call(*args, **kwargs):
            try:
                return attr(*args, **kwargs)
            finally:
                self._watch.done(self._stage)
        return call


def load_model(model_dir: str | os.PathLike, features):
    """The ONNX artifact, checked against the specs of the extractors in use (ArtifactError says what differs)."""
    from demo.artifact import load_artifact

    return load_artifact(model_dir, features.specs)


def extract(features, src: Any, text: str | None):
    """ClipFeatures of a path / (rate, samples) / None (text only). Unreadable media -> InputError."""
    from selfmm.features.media import MediaError

    if src is None:
        from selfmm.features.pipeline import ClipFeatures

        ids, mask = features.tokenizer.encode(text or "")
        return ClipFeatures(transcript=text or "", text_ids=ids, text_mask=mask, audio=None, vision=None,
                            missing={} if text else {"text": "no text"}, timings={"text": 0.0},
                            transcript_source="given")
    try:
        return features.extract(src, transcript=text or None)
    except MediaError as e:
        message = str(e)
        if isinstance(src, str):  # the upload's server path means nothing to the person: keep its name
            message = message.replace(src, Path(src).name)
        raise InputError(_sentence(message)) from e


def tokenize(features, text: str) -> tuple[np.ndarray, np.ndarray]:
    return features.tokenizer.encode(text)


def audio_fps(features) -> float:
    s = features.audio.spec
    return float(s.fps or s.rate / s.hop)


def vision_times(features, clip) -> np.ndarray | None:
    """The time (s) of each face-feature frame. Frames without a face are skipped by the extractor; when it
    reports which frames it kept, that is exact, else the kept frames are spread over the clip evenly."""
    if clip.vision is None:
        return None
    stats = (clip.stats or {}).get("vision", {}) or {}
    fps = float(features.face.spec.fps)
    for key in ("times", "frame_times"):
        if key in stats and len(stats[key]) == len(clip.vision):
            return np.asarray(stats[key], float)
    if "kept" in stats and len(stats["kept"]) == len(clip.vision):
        return np.asarray(stats["kept"], float) / fps
    n = len(clip.vision)
    total = int(stats.get("frames", n) or n)
    return np.arange(n) * (total / n) / fps


def probe_duration(path: str | os.PathLike) -> float | None:
    """The length from the container's header, without decoding. Browsers' webm recordings often have none in
    the header: then the audio track alone is decoded (fast) to learn it. None when neither says."""
    import av

    try:
        with av.open(str(path)) as c:
            if c.duration:
                return c.duration / 1_000_000
            durations = [float(s.duration * s.time_base) for s in c.streams if s.duration and s.time_base]
            if durations:
                return max(durations)
            has_audio = bool(c.streams.audio)
    except Exception:
        return None  # the decoder will say what is wrong with the file
    if has_audio:
        from selfmm.features.media import MediaError, load_audio

        try:
            return load_audio(str(path)).duration
        except MediaError:
            return None
    return None


def predict(artifact, rows: list) -> dict[str, np.ndarray]:
    """Score padded rows (demo.pipeline.Features) in one ONNX call; returns {M,T,A,V: (n,) float32}."""
    from demo.pipeline import make_batch

    batch = make_batch(rows, artifact.max_length, artifact.audio_dim, artifact.vision_dim)
    out = artifact.predict(**batch)
    return {h: np.asarray(out[h], np.float32).reshape(-1) for h in HEADS}


def _sentence(message: str) -> str:
    message = re.sub(r"\[Errno -?\d+\] ", "", message)  # FFmpeg's error numbers mean nothing to a person
    message = message.strip() or "cannot read the file"
    message = message[0].upper() + message[1:]
    return message if message.endswith(".") else message + "."
