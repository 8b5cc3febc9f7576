"""One clip -> all features, as dataset preparation and the app both need them.

The stages that do the work release the GIL (PyAV decoding, CTranslate2's Whisper, MediaPipe's graph, numpy
and librosa's FFTs), so they run side by side in threads:

    decode audio ──── audio features ──── ASR ── tokenize     (audio, then text)
    decode video ───── face features                          (vision)

With Whisper-encoder audio features the transcription waits for them and decodes from their encoder pass of the
first 30 s window (one encoder pass per clip, not two); with other audio features the two run side by side.

`FeaturePipeline.for_card` builds the extractors a model card names, so the app extracts what its model was
trained on; `extract(..., progress=)` reports each extractor as it finishes, for a progress bar. `read_faces`
starts the face branch of a file on its own, before `extract` is asked for the clip (the app calls it when a clip
is uploaded or recorded): `extract(..., faces=)` then waits for that instead of reading the faces again.
"""
from __future__ import annotations

import os
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .media import FPS, MAX_SIDE, SAMPLE_RATE, Media, MediaError, Source, load_media
from .spec import Extracted, FeatureSpec


AUDIO_FEATURES = ("selfmm-audio", "whisper-encoder")  # spec names of the audio extractors
DEFAULT_AUDIO = "selfmm-audio"
VISION_FEATURES = ("selfmm-face", "face-cnn")  # spec names of the face extractors
DEFAULT_VISION = "selfmm-face"
STAGES = ("asr", "audio", "vision")  # the extractors, each reported to extract's `progress` when it finishes


class SetupError(RuntimeError):
    """A model the extractors need (Whisper, a face embedding) cannot be loaded; str(e) says which and why."""


def audio_extractor(name: str = DEFAULT_AUDIO, whisper=None):
    """The audio extractor whose spec is called `name`. whisper: the Transcriber's default tiny.en model, which
    the Whisper-encoder features share instead of loading a second copy."""
    if name == "selfmm-audio":
        from .audio import AudioExtractor

        return AudioExtractor()
    if name == "whisper-encoder":
        from .whisper_audio import WhisperAudioExtractor

        return WhisperAudioExtractor(whisper)
    raise ValueError(f"unknown audio features {name!r}; this version extracts {', '.join(AUDIO_FEATURES)}")


def vision_extractor(name: str = DEFAULT_VISION, model: str | Path | None = None):
    """The face extractor whose spec is called `name`. model: the ONNX file of a learned embedding (face-cnn),
    which ships inside the model artifact that was trained on it."""
    if name == "selfmm-face":
        from .vision import FaceExtractor

        return FaceExtractor()
    if name == "face-cnn":
        from .face_embedding import FaceEmbeddingExtractor

        if model is None:
            raise ValueError("face-cnn features need the embedding's ONNX file (vision_model=...)")
        return FaceEmbeddingExtractor(model)
    raise ValueError(f"unknown face features {name!r}; this version extracts {', '.join(VISION_FEATURES)}")


@dataclass
class ClipFeatures:
    transcript: str  # the text used (given, or from Whisper)
    text_ids: np.ndarray  # (L,) int64; all zero when text is missing
    text_mask: np.ndarray  # (L,) int64
    audio: np.ndarray | None  # (Ta, Da) float32, None when missing
    vision: np.ndarray | None  # (Tv, Dv) float32, None when missing
    missing: dict[str, str] = field(default_factory=dict)  # modality -> reason
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    segments: list = field(default_factory=list)  # Whisper segments (start, end, text); [] if text was given
    language: str = ""
    transcript_source: str = ""  # "given" | "whisper" | "none"
    duration: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class FaceRead:
    """The face branch of one clip: its features and what its video track gave (the frames are not kept)."""
    result: Extracted
    has_frames: bool
    duration: float
    timings: dict[str, float] = field(default_factory=dict)


class FeaturePipeline:
    """Holds the loaded extractors. Build it once (models load here), then call extract() per clip."""

    def __init__(self, asr_model: str | None = None, tokenizer_json: str | Path | None = None,
                 max_length: int | None = None, use_asr: bool = True, vision: bool = True,
                 parallel: bool = True, audio: str = DEFAULT_AUDIO, vision_features: str = DEFAULT_VISION,
                 vision_model: str | Path | None = None):
        from .text import MAX_LENGTH, TextTokenizer

        self.tokenizer = TextTokenizer(tokenizer_json, max_length or MAX_LENGTH)
        self.face = vision_extractor(vision_features, vision_model) if vision else None
        self.asr_model = asr_model
        self._transcriber = None
        if use_asr:
            self.transcriber  # noqa: B018  load now, not on the first clip
        self.audio = audio_extractor(audio, self._transcriber.model if use_asr and asr_model is None else None)
        self.parallel = parallel
        self._pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="selfmm-features") if parallel else None
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="selfmm-faces-ahead")

    @classmethod
    def for_card(cls, card: Mapping[str, Any], folder: str | Path, asr_model: str | None = None) -> FeaturePipeline:
        """The extractors a model card's feature specs name, with the model's tokenizer and a learned face
        embedding from the artifact `folder`. An unknown extractor name gets the default (the artifact loader then
        says what differs). asr_model: a CTranslate2 Whisper folder instead of the offline default tiny.en."""
        from .asr import ASRError
        from .text import MAX_LENGTH

        folder = Path(folder)
        asr_model = os.path.expanduser(asr_model) if asr_model else None
        if asr_model and not Path(asr_model).exists() and ("/" in asr_model or asr_model.startswith((".", "~"))):
            # a path that is not there: say so, instead of asking the Hugging Face hub for a model of that name
            raise SetupError(f"the Whisper model folder {asr_model} does not exist")
        max_length = int((card.get("text_encoder") or {}).get("max_length") or MAX_LENGTH)
        tokenizer_json = folder / "tokenizer.json"
        specs = card.get("feature_specs")
        specs = specs if isinstance(specs, dict) else {}
        audio, vision = (specs.get(m) if isinstance(specs.get(m), dict) else {} for m in ("audio", "vision"))
        vision_name = vision.get("name") if vision.get("name") in VISION_FEATURES else DEFAULT_VISION
        vision_file = str((vision.get("params") or {}).get("file") or "")
        vision_model = folder / Path(vision_file).name if vision_file else None
        if vision_name != DEFAULT_VISION and (vision_model is None or not vision_model.is_file()):
            raise SetupError(f"the model's face features need {vision_file or 'an embedding model'}, which is not "
                             f"in {folder}")
        try:
            return cls(asr_model=asr_model, tokenizer_json=tokenizer_json if tokenizer_json.is_file() else None,
                       max_length=max_length,
                       audio=audio.get("name") if audio.get("name") in AUDIO_FEATURES else DEFAULT_AUDIO,
                       vision_features=vision_name, vision_model=vision_model)
        except ASRError as e:
            raise SetupError(str(e)) from None

    @property
    def transcriber(self):
        if self._transcriber is None:
            from .asr import Transcriber

            self._transcriber = Transcriber(self.asr_model)
        return self._transcriber

    @property
    def shares_encoder(self) -> bool:
        """Whether the voice features run the transcriber's Whisper (and so hand it their encoder pass)."""
        model = getattr(self._transcriber, "model", None)
        return model is not None and getattr(self.audio, "model", None) is model

    @property
    def specs(self) -> dict[str, FeatureSpec]:
        out = {"text": self.tokenizer.spec, "audio": self.audio.spec}
        if self.face is not None:
            out["vision"] = self.face.spec
        return out

    @property
    def audio_fps(self) -> float:
        s = self.audio.spec
        return float(s.fps or s.rate / s.hop)

    def vision_times(self, clip: ClipFeatures) -> np.ndarray | None:
        """The time (s) of each face-feature frame. Frames without a face are skipped by the extractor, which
        reports the times of those it kept; without them (features made elsewhere) the frames are spread over the
        clip evenly."""
        if clip.vision is None:
            return None
        stats = (clip.stats or {}).get("vision", {}) or {}
        fps = float(self.face.spec.fps)
        if len(stats.get("times", ())) == len(clip.vision):
            return np.asarray(stats["times"], float)
        n = len(clip.vision)
        total = int(stats.get("frames", n) or n)
        return np.arange(n) * (total / n) / fps

    def warm_up(self) -> None:
        """Compile/load everything once (numba, MediaPipe graph, Whisper) so the first clip is fast."""
        from .audio import warm_up

        warm_up(self.audio)
        if self.face is not None:
            self.face.extract(np.zeros((1, 64, 64, 3), np.uint8), self.face.fps)
        if self._transcriber is not None:
            self._transcriber.warm_up()

    def close(self) -> None:
        self._ahead.shutdown(wait=True, cancel_futures=True)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self.face is not None:
            self.face.close()

    def __enter__(self) -> FeaturePipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _submit(self, fn, *args) -> Future:
        if self._pool is None:
            f: Future = Future()
            try:
                f.set_result(fn(*args))
            except BaseException as e:  # noqa: BLE001  re-raised by .result()
                f.set_exception(e)
            return f
        return self._pool.submit(fn, *args)

    def read_faces(self, src: str | os.PathLike) -> Future:
        """Start the face branch of a media file in the background, one file at a time; pass the Future to
        `extract(src, faces=...)`. Its result is a FaceRead, or the MediaError of a file that cannot be read."""
        return self._ahead.submit(self._faces, src)

    def _faces(self, source: Source | Media, progress: Callable[[str], None] | None = None) -> FaceRead:
        """Decode the video track (unless `source` is decoded media) and read its faces."""
        timings: dict[str, float] = {}
        timed = _timer(timings, progress)
        if self.face is None:
            return FaceRead(Extracted(None, "vision disabled"), False, 0.0)
        video = source if isinstance(source, Media) else timed(
            "decode_video", load_media, source, SAMPLE_RATE, self.face.fps, MAX_SIDE, False, True)
        try:
            result = timed("vision", self.face.extract, video.frames, video.fps)
        except BaseException as e:  # a read ahead keeps its error until Analyze takes it: not the decoded frames
            traceback.clear_frames(e.__traceback__)
            video = None
            raise
        return FaceRead(result, video.frames is not None, video.duration, timings)

    def extract(self, src: Source | None, transcript: str | None = None, asr: bool | None = None,
                progress: Callable[[str], None] | None = None, faces: Future | None = None) -> ClipFeatures:
        """Features of one clip, or of `transcript` alone when src is None. transcript: use this text instead of
        Whisper (None or "" -> Whisper when asr is not False). progress(stage) is called from worker threads as
        each of STAGES finishes. faces: `read_faces(src)`'s Future, awaited instead of reading the faces here.
        Raises MediaError when the clip cannot be read."""
        if src is None:
            return self._text_only(transcript or "")
        timings: dict[str, float] = {}
        t_start = time.perf_counter()
        run_asr = (asr if asr is not None else True) and not (transcript and transcript.strip())
        timed = _timer(timings, progress)

        def faces_read_ahead() -> FaceRead:
            t = time.perf_counter()
            read = faces.result()
            timings.update(read.timings, vision_wait=round(time.perf_counter() - t, 4))
            if progress is not None:
                progress("vision")
            return read

        def video_branch(source) -> FaceRead:
            read = self._faces(source, progress)
            timings.update(read.timings)
            return read

        def text_branch(wave: np.ndarray | None, voice: Future | None):
            if not run_asr or wave is None:
                return None
            gate = None
            if voice is not None:  # the transcription decodes from the voice features' encoder pass
                gate = timed("speech_gate", self.transcriber.worth_decoding, wave)  # while that pass runs
                voice.exception()
            return timed("asr", self.transcriber.transcribe, wave, SAMPLE_RATE, gate)

        if faces is not None:
            f_video = self._submit(faces_read_ahead)
            media = timed("decode_audio", load_media, src, SAMPLE_RATE, FPS, MAX_SIDE, True, False)
        elif isinstance(src, (str, os.PathLike, bytes, bytearray)):
            # A file is opened twice: audio decodes in a few ms, so ASR starts while the video decodes.
            f_video = self._submit(video_branch, src)
            try:
                media = timed("decode_audio", load_media, src, SAMPLE_RATE, FPS, MAX_SIDE, True, False)
            except MediaError:
                f_video.exception()  # let the video branch finish before raising
                raise
        else:  # a Media passes through; raw samples are audio only
            media = timed("decode_audio", load_media, src, SAMPLE_RATE)
            f_video = self._submit(video_branch, media)

        wave = media.waveform
        shared = run_asr and wave is not None and self.shares_encoder
        voice = partial(self.audio.extract, hand_over=True) if shared else self.audio.extract
        f_audio = self._submit(timed, "audio", voice, wave, media.sample_rate)
        f_text = self._submit(text_branch, wave, f_audio if shared else None)
        transcript_result = f_text.result()
        audio_result: Extracted = f_audio.result()
        face_read: FaceRead = f_video.result()
        vision_result = face_read.result
        if wave is None and not face_read.has_frames and self.face is not None:
            raise MediaError(f"cannot read {media.source}: no audio samples or video frames decode from it")

        if transcript_result is not None:
            text, source = transcript_result.text, "whisper"
        elif transcript and transcript.strip():
            text, source = transcript.strip(), "given"
        else:
            text, source = "", "none"
        ids, mask = timed("text", self.tokenizer.encode, text)

        missing: dict[str, str] = {}
        if not text:
            if source == "whisper":
                missing["text"] = "no recognisable speech"
            elif wave is None and run_asr:
                missing["text"] = "no audio track to transcribe"
            else:
                missing["text"] = "no transcript"
        if audio_result.frames is None:
            missing["audio"] = audio_result.missing or "missing"
        if vision_result.frames is None:
            missing["vision"] = vision_result.missing or "missing"
        duration = max(media.duration, face_read.duration)
        timings["total"] = round(time.perf_counter() - t_start, 4)
        return ClipFeatures(
            transcript=text, text_ids=ids, text_mask=mask, audio=audio_result.frames,
            vision=vision_result.frames, missing=missing, timings=timings,
            segments=list(transcript_result.segments) if transcript_result is not None else [],
            language=transcript_result.language if transcript_result is not None else "",
            transcript_source=source, duration=duration,
            stats={"audio": audio_result.stats, "vision": vision_result.stats})

    def _text_only(self, text: str) -> ClipFeatures:
        ids, mask = self.tokenizer.encode(text)
        return ClipFeatures(transcript=text, text_ids=ids, text_mask=mask, audio=None, vision=None,
                            missing={} if text else {"text": "no text"}, timings={"text": 0.0},
                            transcript_source="given")


def _timer(timings: dict[str, float], progress: Callable[[str], None] | None):
    """timed(name, fn, *args): fn(*args), its seconds kept in `timings[name]`, and `progress(name)` called when a
    stage of STAGES finishes."""
    def timed(name: str, fn, *args):
        t = time.perf_counter()
        try:
            return fn(*args)
        finally:
            timings[name] = round(time.perf_counter() - t, 4)
            if progress is not None and name in STAGES:
                progress(name)
    return timed


_default: FeaturePipeline | None = None


def extract_clip(src: Source, transcript: str | None = None, pipeline: FeaturePipeline | None = None,
                 **options) -> ClipFeatures:
    """Features of one clip with a shared default pipeline (built on the first call)."""
    global _default
    if pipeline is None:
        if _default is None:
            _default = FeaturePipeline()
        pipeline = _default
    return pipeline.extract(src, transcript=transcript, **options)
