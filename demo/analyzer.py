"""From a clip (or typed text) to four scores, per-sentence scores and stage timings. No gradio here.

    analyzer = Analyzer.load("assets/model")   # loads and warms Whisper, FaceMesh, librosa and the ONNX model
    result = analyzer.analyze("clip.mp4")      # or analyze(text="..."), analyze((44100, int16_array))

Stages: checks that read nothing (size, format, length from the header) -> selfmm.features.FeaturePipeline
(audio and video decoded in parallel; Whisper, voice features and FaceMesh side by side in threads, as
CTranslate2, MediaPipe, PyAV and numpy release the GIL) -> tokens -> one ONNX call for the whole clip and
every sentence. On two cores a clip takes about as long as its slowest stage (Whisper or FaceMesh).

A modality whose head the model card marks as not calibrated (not trained on real data of that modality) is
fed to the model as absent when computing M, so the fused score is not swayed by inputs the model never
learned from; its own head's score is still computed (in a second batch row) and shown greyed.
"""
from __future__ import annotations

import os
import queue
import re
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from demo.disagreement import Disagreement, disagreement
from demo.limits import LIMITS, InputError, Limits, check_duration, check_file, check_text
from selfmm import contract
from selfmm.contract import HEADS
from selfmm.features.pipeline import SetupError  # noqa: F401  (raised by Analyzer; the UI and CLI catch it)

MODALITY = contract.UNIMODAL  # unimodal head -> its modality
HEAD_OF = {m: h for h, m in MODALITY.items()}
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "assets" / "model"
EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
STAGE_LABELS = {"asr": "Speech recognised", "audio": "Voice features ready", "vision": "Face features ready"}

Progress = Callable[[float, str], None]


@dataclass
class Result:
    """Everything the UI and the CLI show about one input."""

    input: str
    scores: dict[str, float | None]  # None = missing
    missing: dict[str, str]  # head -> why ("no face found", "no speech", ...)
    uncalibrated: list[str]  # heads the card marks as not trained on real data of their modality
    disagreement: Disagreement
    transcript: str
    transcript_source: str  # "whisper", "given" (typed by the user) or "none", as the FeaturePipeline says
    segments: list[dict]  # [{"start", "end", "text", "scores": {M,T,A,V}}] when the clip holds 2+ sentences
    timings: dict[str, float]  # stage -> seconds; "total" is wall time
    model: str
    duration: float = 0.0
    notes: list[str] = field(default_factory=list)  # plain-language remarks (missing tracks, ignored inputs)

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input,
                "scores": {h: _round(self.scores.get(h)) for h in HEADS},
                "missing": [h for h in HEADS if h in self.missing],
                "missing_reasons": dict(self.missing),
                "uncalibrated": list(self.uncalibrated),
                "disagreement": self.disagreement.to_dict(),
                "transcript": self.transcript,
                "segments": [{**s, "scores": {h: _round(v) for h, v in s["scores"].items()}} for s in self.segments],
                "timings": {k: round(v, 4) for k, v in self.timings.items()},
                "model": self.model,
                "duration": round(self.duration, 3),
                "notes": list(self.notes)}


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


@dataclass
class Features:
    """One unit the model scores (the whole clip or one sentence): tokens and frame features, None = absent."""

    text_ids: np.ndarray | None
    text_mask: np.ndarray | None
    audio: np.ndarray | None  # (Ta, Da)
    vision: np.ndarray | None  # (Tv, Dv)

    def present(self) -> dict[str, bool]:
        return {"text": self.text_mask is not None and int(self.text_mask.sum()) > 0,
                "audio": self.audio is not None and len(self.audio) > 0,
                "vision": self.vision is not None and len(self.vision) > 0}

    def without(self, modalities: set[str]) -> "Features":
        return Features(None if "text" in modalities else self.text_ids,
                        None if "text" in modalities else self.text_mask,
                        None if "audio" in modalities else self.audio,
                        None if "vision" in modalities else self.vision)


def make_batch(units: list[Features], text_len: int, audio_dim: int, vision_dim: int) -> dict[str, np.ndarray]:
    """Pad units into the ONNX inputs. An absent modality gets length 0 (text: all-zero ids and mask)."""
    n = len(units)
    ta = max([1] + [len(u.audio) for u in units if u.audio is not None])
    tv = max([1] + [len(u.vision) for u in units if u.vision is not None])
    b = contract.feeds(np.zeros((n, text_len)), np.zeros((n, text_len)), np.zeros((n, ta, audio_dim)), np.zeros(n),
                       np.zeros((n, tv, vision_dim)), np.zeros(n))
    for i, u in enumerate(units):
        if u.text_mask is not None and u.text_mask.sum() > 0:
            b[contract.TEXT_IDS][i, :len(u.text_ids)] = u.text_ids[:text_len]
            b[contract.TEXT_MASK][i, :len(u.text_mask)] = u.text_mask[:text_len]
        for m, lengths in contract.LENGTHS.items():
            x = getattr(u, m)
            if x is not None and len(x):
                b[m][i, :len(x)] = x
                b[lengths][i] = len(x)
    return b


def frame_slice(n_frames: int, fps: float, start: float, end: float) -> slice:
    """The frames of a feature sequence at `fps` that fall in [start, end) seconds (at least one if any overlap)."""
    i = max(0, int(np.floor(start * fps)))
    j = min(n_frames, int(np.ceil(end * fps)))
    return slice(i, max(i, j))


class Analyzer:
    """Holds the feature pipeline and the ONNX model; one analysis at a time (the app's queue guarantees it)."""

    def __init__(self, model_dir: str | os.PathLike = DEFAULT_MODEL, limits: Limits = LIMITS,
                 asr_model: str | None = None):
        """Loads the artifact, then the extractors its card names, and refuses them unless their specs are the
        model's (ArtifactError); SetupError when Whisper or a face embedding cannot be loaded."""
        from demo.artifact import load_artifact
        from selfmm.features.pipeline import FeaturePipeline

        t0 = time.perf_counter()
        self.limits = limits
        self.model_dir = Path(model_dir)
        self.artifact = load_artifact(self.model_dir)
        self.features = FeaturePipeline.for_card(self.artifact.card, self.model_dir, asr_model)
        self.artifact.check_specs(self.features.specs)
        self.runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis")
        self._ahead: OrderedDict[tuple, Future | None] = OrderedDict()  # file key -> its faces read before Analyze
        self._ahead_lock = threading.Lock()
        self.card: dict = self.artifact.card
        heads = self.card.get("heads", {})
        self.uncalibrated = [h for h in HEADS if not heads.get(h, {}).get("calibrated", False)]
        self.ignored_modalities = {MODALITY[h] for h in self.uncalibrated if h in MODALITY}
        self.load_seconds = time.perf_counter() - t0
        self.warmup_seconds = 0.0

    # -- loading ---------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, model_dir: str | os.PathLike = DEFAULT_MODEL, warm_up: bool = True, **kw) -> "Analyzer":
        a = cls(model_dir, **kw)
        if warm_up:
            a.warm_up()
        return a

    def warm_up(self) -> None:
        """Run every stage once (numba JIT, ONNX, FaceMesh and Whisper set-up), so the first request is as
        fast as the next: on a shipped example clip when there is one (a real face and real speech), else on
        generated input."""
        t0 = time.perf_counter()
        examples = sorted(EXAMPLES.glob("*.mp4")) if EXAMPLES.is_dir() else []
        self.features.warm_up()
        try:
            if examples:
                self.analyze(str(examples[0]))
            else:
                self.analyze(text="warming up")
        except InputError:
            pass
        self.warmup_seconds = time.perf_counter() - t0

    @property
    def model_name(self) -> str:
        return str(self.card.get("name", self.model_dir.name))

    # -- analysis --------------------------------------------------------------------------------------------
    def read_faces_ahead(self, media: str | os.PathLike | None) -> Future | None:
        """Start reading the faces of a clip file as soon as it is uploaded or recorded, so that Analyze finds
        them done and waits only for the speech (the slower branch). At most AHEAD_CLIPS files are kept; a file
        that fails the size or length check is left for Analyze to report. Returns the read started, if any."""
        if media is None or self.features.face is None or not isinstance(media, (str, os.PathLike)):
            return None
        try:
            key = _file_key(media)
            self._check(media)
        except (InputError, OSError):
            return None
        with self._ahead_lock:
            if key in self._ahead:  # being read, or Analyze came first and reads it itself
                return None
            job = self._ahead[key] = self.features.read_faces(str(media))
            while len(self._ahead) > AHEAD_CLIPS:  # the oldest goes, its read cancelled if it has not started
                dropped = self._ahead.popitem(last=False)[1]
                if dropped is not None:
                    dropped.cancel()
        return job

    @contextmanager
    def _faces_read_ahead(self, src: Any) -> Iterator[Future | None]:
        """The read started by read_faces_ahead for this very file (same path, size and time), if any. A read
        still queued behind other files is cancelled (Analyze reads the faces itself, at once). While Analyze runs on
        a file, the file is marked taken, so that an upload event arriving late does not read it again."""
        try:
            key = _file_key(src) if isinstance(src, str) else None
        except OSError:
            key = None
        if key is None:
            yield None
            return
        with self._ahead_lock:  # taken (None) until Analyze is done; one at a time (the runner has one worker)
            job = self._ahead.pop(key, None)
            self._ahead[key] = None
        try:
            yield None if job is None or job.cancel() else job
        finally:
            with self._ahead_lock:
                if key in self._ahead and self._ahead[key] is None:
                    del self._ahead[key]

    def analyze(self, media: Any = None, text: str | None = None, progress: Progress | None = None,
                name: str | None = None, face: tuple[np.ndarray, np.ndarray] | None = None) -> Result:
        """Analyse a media path, a `(rate, samples)` tuple from a microphone, and/or typed text.

        Typed text, when given with media, is used instead of the speech transcript. `face`: the face features
        of a microphone recording, computed while it was made (live mode), as (rows (n, D), times (n,) in s).
        Raises InputError with a clear message for an input that cannot be analysed."""
        report = progress or (lambda frac, desc: None)
        notes: list[str] = []
        t_start = time.perf_counter()
        typed = check_text(text or "")
        if media is None and not typed:
            raise InputError("Nothing to analyse: record a clip, upload a file or type some text.")
        label = name or (str(media) if isinstance(media, (str, os.PathLike)) else
                         "<microphone>" if media is not None else "<text>")

        # 1. checks that cost nothing, then every extractor side by side (decode, Whisper, voice, face)
        report(0.05, "Checking the input")
        t = time.perf_counter()
        src = self._check(media) if media is not None else None
        t_check = time.perf_counter() - t
        report(0.15, "Transcribing speech, reading the voice and the face")
        clip = self._extract(src, typed, report)
        if face is not None and src is not None:
            clip = with_face(clip, *face)
        if src is not None:
            check_duration(clip.duration, self.limits)  # also when the header did not say
        timings = {"check": t_check, **{k: v for k, v in clip.timings.items() if k != "total"}}

        missing = {HEAD_OF[m]: why for m, why in clip.missing.items() if m in HEAD_OF}
        if src is None:  # text only
            missing.update(A="no audio (text only)", V="no video (text only)")
        elif typed and "audio" not in clip.missing:
            notes.append("Typed text is used instead of the speech transcript.")
        if src is not None and "no audio" in clip.missing.get("audio", ""):
            notes.append("The clip has no audio track: the voice and the words are missing.")
        if src is not None and "no video" in clip.missing.get("vision", ""):
            notes.append("Audio only: there is no video, so the face is missing.")

        ids, mask = (clip.text_ids, clip.text_mask) if clip.transcript else (None, None)
        whole = Features(ids, mask, clip.audio, clip.vision)
        present = whole.present()
        if not any(present.values()):
            raise InputError("Nothing to analyse: " + "; ".join(
                f"{CHANNEL_NOUN[h]}: {why}" for h, why in missing.items()) + ".")
        if not any(ok for m, ok in present.items() if m not in self.ignored_modalities):
            missing["M"] = "only uncalibrated inputs"

        # 2. sentences: each Whisper segment scored on its own, the clip's features sliced by time
        segments_in = [(float(s.start), float(s.end), s.text.strip()) for s in clip.segments if s.text.strip()]
        units = [whole]
        if len(segments_in) >= 2:
            t = time.perf_counter()
            vision_times = self.features.vision_times(clip)
            units += [self._segment(s, e, txt, whole, vision_times) for s, e, txt in segments_in]
            timings["segments"] = time.perf_counter() - t
        else:
            segments_in = []

        # 3. one ONNX call for the clip and its sentences
        report(0.85, "Scoring")
        t = time.perf_counter()
        unit_scores = self.score(units, [missing] + [{}] * len(segments_in))
        timings["predict"] = time.perf_counter() - t

        scores = unit_scores[0]
        segments = [{"start": round(s, 2), "end": round(e, 2), "text": txt, "scores": sc}
                    for (s, e, txt), sc in zip(segments_in, unit_scores[1:])]

        dis = disagreement(scores, {h: "uncalibrated" for h in self.uncalibrated if h in MODALITY})
        for h in self.uncalibrated:
            if h in MODALITY and present[MODALITY[h]]:
                notes.append(f"{CHANNEL_NOUN[h].capitalize()} ({h}): the model was not trained on real data of "
                             f"this kind, so it is shown greyed and fed to the model as absent (M ignores it).")
        timings["total"] = time.perf_counter() - t_start
        report(1.0, "Done")
        return Result(input=label, scores=scores, missing=missing, uncalibrated=list(self.uncalibrated),
                      disagreement=dis, transcript=clip.transcript,
                      transcript_source=clip.transcript_source,
                      segments=segments, timings=timings, model=self.model_name, duration=clip.duration,
                      notes=notes)

    def score(self, units: list[Features], gone: list[dict[str, str]] | None = None) -> list[dict[str, float | None]]:
        """The four scores of each unit, in one ONNX call: each unit as used for M (uncalibrated modalities
        absent) and, when that differs, as given (for the uncalibrated heads' own scores; unimodal heads see
        only their own modality). gone[i]: heads to report as missing for unit i."""
        rows, index = [], []
        for u in units:
            used = len(rows)
            rows.append(u.without(self.ignored_modalities))
            if self.ignored_modalities & {m for m, ok in u.present().items() if ok}:
                rows.append(u)
            index.append((used, len(rows) - 1))
        batch = make_batch(rows, self.artifact.max_length, self.artifact.audio_dim, self.artifact.vision_dim)
        out = {h: np.asarray(y, np.float32).reshape(-1) for h, y in self.artifact.predict(**batch).items()}
        gone = gone or [{}] * len(units)
        return [self._scores(out, idx, u, g) for idx, u, g in zip(index, units, gone)]

    def _extract(self, src: Any, typed: str, report: Progress):
        """The clip's features, extracted in a worker while this thread reports each finished stage (Gradio's
        progress must be called from the request's own thread)."""
        if src is None:
            return self.features.extract(None, typed)
        events: queue.Queue[str | None] = queue.Queue()
        job = self.runner.submit(self._read, src, typed, events.put)
        # None after the job's last stage, so the result is picked up the moment it is ready (not at a poll)
        job.add_done_callback(lambda _: events.put(None))
        done: list[str] = []
        while (stage := events.get()) is not None:
            done.append(stage)
            report(0.15 + 0.7 * len(done) / 3, STAGE_LABELS.get(stage, stage))
        return job.result()

    def _read(self, src: Any, typed: str, progress: Callable[[str], None]):
        """FeaturePipeline.extract, with unreadable media turned into an InputError a person can act on."""
        from selfmm.features.media import MediaError

        try:
            with self._faces_read_ahead(src) as faces:
                return self.features.extract(src, transcript=typed or None, progress=progress, faces=faces)
        except MediaError as e:
            message = str(e)
            if isinstance(src, str):  # the upload's server path means nothing to the person: keep its name
                message = message.replace(src, Path(src).name)
            raise InputError(_sentence(message)) from e

    def _scores(self, out: dict[str, np.ndarray], rows: tuple[int, int], unit: Features,
                gone: dict[str, str]) -> dict[str, float | None]:
        """M from the row without uncalibrated modalities; each unimodal head from the row with its input."""
        used_row, raw_row = rows
        pres = unit.present()
        s: dict[str, float | None] = {"M": float(out["M"][used_row])}
        if "M" in gone or not any(ok for m, ok in pres.items() if m not in self.ignored_modalities):
            s["M"] = None
        for h, m in MODALITY.items():
            s[h] = float(out[h][raw_row]) if pres[m] and h not in gone else None
        return s

    def _check(self, media: Any) -> Any:
        """Size, format and (when the header says) length, before anything is decoded."""
        from selfmm.features.media import probe_duration

        if isinstance(media, (str, os.PathLike)):
            check_file(media, self.limits)
            seconds = probe_duration(media)
            if seconds is not None:
                check_duration(seconds, self.limits)
            return str(media)
        if isinstance(media, tuple) and len(media) == 2:
            rate, samples = media
            samples = np.asarray(samples)
            if samples.size == 0:
                raise InputError("The recording is empty: press record, speak, then stop.")
            check_duration(samples.shape[0] / float(rate), self.limits)
            return (int(rate), samples)
        raise InputError(f"Unsupported input of type {type(media).__name__}.")

    def _segment(self, start: float, end: float, text: str, whole: Features,
                 vision_times: np.ndarray | None) -> Features:
        """One sentence: its own tokens, and the frames of the clip's audio and face features in its span."""
        ids, mask = self.features.tokenizer.encode(text)
        audio = vision = None
        if whole.audio is not None:
            a = whole.audio[frame_slice(len(whole.audio), self.features.audio_fps, start, end)]
            audio = a if len(a) else None
        if whole.vision is not None and vision_times is not None:
            v = whole.vision[(vision_times >= start) & (vision_times < end)]
            vision = v if len(v) else None
        return Features(ids, mask, audio, vision)


AHEAD_CLIPS = 4  # files whose faces may be read ahead of Analyze at once (their Futures hold only features)


def _file_key(path: str | os.PathLike) -> tuple:
    """A file as it is now: a read ahead serves Analyze only if the file was not replaced since."""
    st = os.stat(path)
    return os.path.realpath(path), st.st_size, st.st_mtime_ns


def with_face(clip, rows: np.ndarray, times: np.ndarray):
    """The clip's features with face rows computed elsewhere (frame by frame, while recording)."""
    import dataclasses

    missing = {k: v for k, v in clip.missing.items() if k != "vision"}
    if len(rows) == 0:
        missing["vision"] = "no face in view while recording"
    stats = {**clip.stats, "vision": {"times": [float(t) for t in times], "frames_with_face": int(len(rows))}}
    return dataclasses.replace(clip, vision=np.asarray(rows, np.float32) if len(rows) else None, missing=missing,
                               stats=stats)


def _sentence(message: str) -> str:
    message = re.sub(r"\[Errno -?\d+\] ", "", message)  # FFmpeg's error numbers mean nothing to a person
    message = message.strip() or "cannot read the file"
    message = message[0].upper() + message[1:]
    return message if message.endswith(".") else message + "."


CHANNEL_NOUN = {"M": "the fused score", "T": "the words", "A": "the voice", "V": "the face"}
