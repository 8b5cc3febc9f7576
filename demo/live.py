"""Live mode: the four scores over the last few seconds of a recording, updated about every second while it runs.

The browser streams microphone chunks (two a second) and webcam frames (a few a second) to one
LiveSession per visitor. A frame is read into face features the moment it arrives; a chunk is stored, and when
an update is due, `update` scores the last `window` seconds:
- the transcript grows by committing finished sentences: each update transcribes only the audio after the last
  committed one (at most `max_pending` seconds), so its cost does not grow with the recording;
- the voice features of the window: cut from the encoder pass the transcription then decodes from, when the
  pending audio holds the window; otherwise their own pass, beside the transcription;
- the face rows of the window, already computed;
- one ONNX call.
Updates run apart from the chunks (`step`): a chunk is stored at once, starts an update only when none is running
and shows the newest finished one. So chunks never wait in line behind an update (the recording keeps pace with
the wall clock, and a stop sees all of it) and, when the machine cannot keep up, updates are skipped, never queued.
Memory is bounded per session: the last `Limits.max_seconds` of audio (for the full analysis when the recording
stops), one feature row per face frame over the same span, the last `history` updates. No gradio here.
"""
from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from demo.disagreement import disagreement
from demo.limits import LIMITS, InputError, Limits
from demo.analyzer import MODALITY, Analyzer, Features, Result
from selfmm.features.spec import Extracted

SAMPLE_RATE = 16000
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="live")  # Whisper beside the voice features
_UPDATES = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-update")  # each update uses both cores


@dataclass(frozen=True)
class LiveConfig:
    window: float = 5.0  # seconds scored by each update
    every: float = 1.0  # seconds between updates
    chunk: float = 0.5  # seconds between microphone chunks (stream_every): an update starts at most this late
    frame_every: float = 0.5  # seconds between webcam frames (a face changes slowly; each costs ~30 ms)
    max_pending: float = 8.0  # most audio (s) transcribed per update
    commit_after: float = 4.0  # pending audio longer than this commits its finished sentences
    settle: float = 0.6  # a sentence that ended this close to the end of the audio may still grow
    history: int = 600  # updates kept for the timeline


@dataclass
class Update:
    """One live reading: the scores of the window that ends `t` seconds into the recording."""

    t: float
    scores: dict[str, float | None]
    missing: dict[str, str]
    transcript: str  # the whole transcript so far (committed sentences, then the pending words)
    window_text: str
    disagreement: Any
    uncalibrated: list[str]
    seconds: float  # the update's own cost


@dataclass
class LiveSession:
    config: LiveConfig = field(default_factory=LiveConfig)
    limits: Limits = LIMITS
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # 16 kHz, the last max_seconds
    dropped: float = 0.0  # seconds trimmed from the start of `audio`
    face: deque = field(default_factory=deque)  # (t, row) of frames with a face
    frames_seen: int = 0
    committed: list = field(default_factory=list)  # (start, end, text) in recording seconds
    committed_until: float = 0.0
    pending: list = field(default_factory=list)  # the last update's unfinished sentences
    history: deque = field(default_factory=deque)
    started: float | None = None  # monotonic time of the recording's start
    last_start: float = float("-inf")
    updates: int = 0
    skipped: int = 0
    asr: Future | None = None  # the transcription in flight: it runs beside the updates, never blocks one
    job: Future | None = None  # the update in flight: it runs apart from the chunks, never blocks one

    @property
    def seconds(self) -> float:
        return self.dropped + len(self.audio) / SAMPLE_RATE

    def add_audio(self, rate: int, samples: np.ndarray, now: float | None = None) -> None:
        from selfmm.features.media import load_media

        now = time.monotonic() if now is None else now
        samples = np.asarray(samples)
        if samples.size == 0:
            return
        wave = load_media((int(rate), samples), SAMPLE_RATE).waveform
        if wave is None or wave.size == 0:
            return
        if self.started is None:
            self.started = now - len(wave) / SAMPLE_RATE
        self.audio = np.concatenate([self.audio, wave.astype(np.float32)])
        keep = int(self.limits.max_seconds * SAMPLE_RATE)
        if len(self.audio) > keep:
            cut = len(self.audio) - keep
            self.audio = self.audio[cut:]
            self.dropped += cut / SAMPLE_RATE
            while self.face and self.face[0][0] < self.dropped:
                self.face.popleft()

    def add_face(self, row: np.ndarray | None, now: float | None = None) -> None:
        """A frame's face features (None: no face in it), timed on the recording's clock."""
        now = time.monotonic() if now is None else now
        self.frames_seen += 1
        if self.started is None:
            return  # the camera streams before the microphone starts: nothing to line it up with yet
        if row is not None:
            self.face.append((now - self.started, np.asarray(row, np.float32).reshape(-1)))

    def due(self, now: float | None = None) -> bool:
        """Whether to start an update now: about `every` seconds since the last one started (chunks come every
        `chunk` < `every` seconds, so an update starts at most `chunk` late) and none still running: an update
        that would start while the last one runs is skipped, never queued."""
        now = time.monotonic() if now is None else now
        if self.seconds < self.limits.min_seconds or (self.job is not None and not self.job.done()):
            return False
        return now - self.last_start >= self.config.every - self.config.chunk / 2  # chunks jitter: the nearest

    def wave(self, start: float, end: float) -> np.ndarray:
        i = max(0, int(round((start - self.dropped) * SAMPLE_RATE)))
        j = max(i, int(round((end - self.dropped) * SAMPLE_RATE)))
        return self.audio[i:j]

    def face_rows(self, start: float, end: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        # list() copies in one step: the webcam's handler may append while an update reads
        kept = [(t, r) for t, r in list(self.face) if t >= start and (end is None or t < end)]
        if not kept:
            return np.zeros((0, 0), np.float32), np.zeros(0)
        return np.stack([r for _, r in kept]), np.array([t - self.dropped for t, _ in kept])

    def transcript(self) -> str:
        return " ".join(t for _, _, t in self.committed + self.pending if t).strip()


def face_row(analyzer: Analyzer, frame: np.ndarray) -> np.ndarray | None:
    """One webcam frame's face features (the model's own extractor), None when no face is found."""
    from selfmm.features.media import MAX_SIDE

    face = analyzer.features.face
    if face is None or frame is None or np.ndim(frame) != 3:
        return None
    frame = np.ascontiguousarray(np.asarray(frame, np.uint8)[..., :3])
    h, w = frame.shape[:2]
    if max(h, w) > MAX_SIDE:
        import cv2

        scale = MAX_SIDE / max(h, w)
        frame = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    got = face.extract(frame[None], face.fps)
    return None if got.frames is None else got.frames[0]


def _pending_start(session: LiveSession, end: float) -> float:
    """Where the audio the next transcription reads begins: after the last committed sentence, at most
    `max_pending` seconds before `end`."""
    return max(session.committed_until, end - session.config.max_pending)


def _transcribe(analyzer: Analyzer, session: LiveSession, end: float) -> None:
    """Transcribe the pending audio; commit the sentences that have finished once it is long enough."""
    cfg = session.config
    start = _pending_start(session, end)
    wave = session.wave(start, end)
    segments = analyzer.features.transcriber.transcribe(wave).segments if len(wave) >= SAMPLE_RATE // 2 else []
    found = [(start + s.start, start + s.end, s.text) for s in segments]
    if end - start >= cfg.commit_after:
        done = [seg for seg in found if seg[1] <= end - cfg.settle]
        if not done and end - start >= cfg.max_pending - 0.01:
            done = found  # no pause in max_pending seconds: commit it rather than lose its start
        if done:
            # pending first: an update that reads between the two stores misses a sentence, never shows it twice
            session.pending = found[len(done):]
            session.committed = session.committed + done
            session.committed_until = done[-1][1]
            return
        if not found:
            session.committed_until = end - cfg.settle  # silence: move on
    session.pending = found


def step(analyzer: Analyzer, session: LiveSession, now: float | None = None) -> Update | None:
    """After a chunk is stored: start an update if one is due (in the background, so the chunk's handler returns
    at once) and return the newest finished update not shown yet, or None to leave the gauges as they are. An
    update that failed raises here, once; the next one may succeed."""
    done = session.job if session.job is not None and session.job.done() else None
    if done is not None:
        session.job = None
    now = time.monotonic() if now is None else now
    if session.due(now):
        if session.updates:  # whole updates that did not happen while the last one ran
            session.skipped += max(0, int((now - session.last_start) / session.config.every + 0.25) - 1)
        session.last_start = now
        session.job = _UPDATES.submit(update, analyzer, session)
    return done.result() if done is not None else None


def _voice_for_words(analyzer: Analyzer, session: LiveSession, start: float, end: float) -> Extracted | None:
    """The voice features of [start, end] from the encoder pass that the next transcription decodes from, or None
    when they cannot share one (the pending words begin after `start`, or the voice is not Whisper's).

    Why: the voice reads Whisper's encoder states, and the transcription of the pending audio encodes it again; one
    pass over the pending samples serves both (`hand_over`), the frames of the window cut from its end. The
    states of the window then have up to `max_pending` seconds of context instead of `window`, as a sentence's
    frames in the full analysis have the whole clip's."""
    from selfmm.features.audio import audible_speech

    features = analyzer.features
    words_from = _pending_start(session, end)
    if not features.shares_encoder or words_from > start:
        return None
    heard, stats, missing = audible_speech(session.wave(start, end))  # the window's own rules, not the span's
    if heard is None:
        return Extracted(None, missing, stats)
    got = features.audio.extract(session.wave(words_from, end), SAMPLE_RATE, hand_over=True)
    if got.frames is None:
        return None  # the longer span counts as silent where the window does not: the window reads itself
    skip = int(round((start - words_from) * features.audio.spec.fps))
    return Extracted(got.frames[skip:], None, stats)


def update(analyzer: Analyzer, session: LiveSession) -> Update:
    """Score the last `window` seconds of the session; bounded work whatever the recording's length."""
    cfg = session.config
    t0 = session.last_start = time.monotonic()
    end = session.seconds
    start = max(session.dropped, end - cfg.window)
    voice = None
    if session.asr is None or session.asr.done():  # the words lag the gauges by at most one transcription
        if session.asr is not None:
            session.asr.result()
        voice = _voice_for_words(analyzer, session, start, end)
        session.asr = _POOL.submit(_transcribe, analyzer, session, end)
    if voice is None:
        voice = analyzer.features.audio.extract(session.wave(start, end), SAMPLE_RATE)
    words = [t for s, e, t in session.committed + session.pending if e > start and t]
    text = " ".join(words).strip()
    ids, mask = analyzer.features.tokenizer.encode(text)
    rows, _ = session.face_rows(start, end)
    unit = Features(ids if text else None, mask if text else None, voice.frames, rows if len(rows) else None)
    missing: dict[str, str] = {}
    if not text:
        missing["T"] = f"no speech recognised in the last {cfg.window:g} s"
    if voice.frames is None:
        missing["A"] = voice.missing or "missing"
    if not len(rows):
        missing["V"] = (f"no face in the last {cfg.window:g} s" if session.frames_seen else
                        "no camera: start the webcam stream to read the face")
    present = unit.present()
    if not any(ok for m, ok in present.items() if m not in analyzer.ignored_modalities):
        missing["M"] = "nothing calibrated in the window"
    scores = analyzer.score([unit], [missing])[0]
    dis = disagreement(scores, {h: "uncalibrated" for h in analyzer.uncalibrated if h in MODALITY})
    session.updates += 1
    u = Update(t=round(end, 2), scores=scores, missing=missing, transcript=session.transcript(), window_text=text,
               disagreement=dis, uncalibrated=list(analyzer.uncalibrated),
               seconds=round(time.monotonic() - t0, 3))
    session.history.append({"start": round(start, 2), "end": round(end, 2), "text": text, "scores": scores})
    while len(session.history) > cfg.history:
        session.history.popleft()
    return u


def finish(analyzer: Analyzer, session: LiveSession, text: str | None = None) -> Result:
    """The full analysis of the whole recording (its last `max_seconds`), as for a recorded clip, with the
    face features computed while it was made."""
    for job in (session.job, session.asr):  # the last live update and transcription: the cores are the full one's
        if job is not None:
            wait([job])
    if session.seconds < session.limits.min_seconds:
        raise InputError("The live recording is too short: speak for a second or more.")
    face = session.face_rows(session.dropped) if session.frames_seen else None
    res = analyzer.analyze((SAMPLE_RATE, session.audio), text, name="<live recording>", face=face)
    if session.dropped:
        res.notes.append(f"The recording ran {session.seconds:.0f} s; the full analysis covers its last "
                         f"{session.limits.max_seconds:g} s.")
    if session.skipped:
        res.notes.append(f"Live: {session.updates} updates, {session.skipped} skipped while the machine caught up.")
    return res

