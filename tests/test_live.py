"""Live mode (demo/live.py): a session's memory stays bounded, updates run apart from the chunks and skip rather
than queue, and a real model streamed one second at a time grows a transcript, reads the face and gives the full analysis when it stops."""
import threading
from concurrent.futures import Future

import numpy as np
import pytest

from demo import live
from demo.limits import Limits
from demo.live import SAMPLE_RATE, LiveConfig, LiveSession, step
from harness import media


def second(value: float = 0.1) -> tuple[int, np.ndarray]:
    """One second of microphone audio as Gradio streams it: (rate, int16 samples)."""
    return SAMPLE_RATE, np.full(SAMPLE_RATE, int(value * 32767), np.int16)


def test_audio_and_face_rows_stay_within_max_seconds():
    s = LiveSession(limits=Limits(max_seconds=10.0))
    for i in range(25):
        s.add_audio(*second(), now=float(i + 1))
        for k in range(5):  # five frames a second, each with a face
            s.add_face(np.full(3, i, np.float32), now=i + 1 + k / 5)
    assert s.seconds == pytest.approx(25.0)
    assert len(s.audio) == 10 * SAMPLE_RATE and s.dropped == pytest.approx(15.0)
    times = [t for t, _ in s.face]
    assert min(times) >= s.dropped and len(times) <= 10 * 5 + 5
    rows, at = s.face_rows(s.dropped)
    assert rows.shape == (len(times), 3) and at.min() >= 0.0  # times on the kept audio's clock


def test_frames_before_the_microphone_starts_are_not_lined_up():
    s = LiveSession()
    s.add_face(np.ones(3, np.float32), now=1.0)
    assert s.frames_seen == 1 and not s.face
    s.add_audio(*second(), now=3.0)  # the recording started at 2.0
    s.add_face(np.ones(3, np.float32), now=2.5)
    assert [t for t, _ in s.face] == [pytest.approx(0.5)]


def test_updates_skip_rather_than_queue():
    s = LiveSession(config=LiveConfig(every=1.0, chunk=0.5))
    s.add_audio(*second(), now=1.0)
    assert s.due(now=1.0)
    s.last_start = 1.0
    assert not s.due(now=1.5)  # the next chunk: not time yet
    s.job = Future()  # an update still running at the chunks of 2.0 and 2.5 s: no update starts, none queues
    assert not s.due(now=2.0) and not s.due(now=2.5)
    s.job.set_result(None)
    assert s.due(now=3.0)


def test_a_chunk_never_waits_for_an_update(monkeypatch):
    """step() returns while the update runs (here one held until released), and a later chunk shows it once it
    has finished; the real update runs in test_streamed_speech_and_face_grow_a_transcript_and_finish."""
    started, release = threading.Event(), threading.Event()

    def slow(analyzer, session):
        started.set()
        release.wait(5)
        return "reading"

    s = LiveSession(config=LiveConfig(every=1.0, chunk=0.5))
    s.add_audio(*second(), now=1.0)
    monkeypatch.setattr(live, "update", slow)
    assert step(None, s, now=1.0) is None  # started, not waited for
    assert started.wait(5)
    assert step(None, s, now=1.5) is None  # not due yet
    assert step(None, s, now=2.0) is None  # due, but the last one still runs: skipped
    release.set()
    s.job.result(timeout=5)
    s.updates = 1  # as the real update counts itself
    assert step(None, s, now=3.0) == "reading"  # shown once
    assert s.skipped == 1  # the update due at 2.0 s
    assert s.job is not None  # and the next one started
    s.job.result(timeout=5)
    assert step(None, s, now=3.1) == "reading" and s.job is None  # the second; no third, it is not time yet


def test_silence_below_min_seconds_is_not_scored():
    s = LiveSession()
    s.add_audio(SAMPLE_RATE, np.zeros(SAMPLE_RATE // 4, np.int16), now=0.25)
    assert not s.due(now=5.0)


@pytest.fixture(scope="module")
def analyzer():
    from demo.analyzer import Analyzer
    from harness.app_model import model_dir

    return Analyzer.load(model_dir(), warm_up=False)


@pytest.mark.slow
@pytest.mark.skipif(not media.have_espeak(), reason="espeak-ng is needed to make speech")
def test_streamed_speech_and_face_grow_a_transcript_and_finish(analyzer):
    from scipy.signal import resample_poly

    from demo.live import face_row, finish, update

    wave, rate = media.speech_samples()
    wave = resample_poly(wave, SAMPLE_RATE, rate).astype(np.float32)
    pause = np.zeros(SAMPLE_RATE, np.float32)
    audio = np.concatenate([wave, pause, wave, pause, wave, pause])  # three sentences, about 15 s
    frame = media.still_frames(0.1, 10, "face")[0]
    row = face_row(analyzer, frame)
    assert row is not None  # the webcam frame's face features

    heard = []  # seconds of audio Whisper transcribed at each update: bounded, whatever the length
    transcribe = analyzer.features.transcriber.transcribe
    analyzer.features.transcriber.transcribe = lambda w, *a, **k: heard.append(len(w) / SAMPLE_RATE) or \
        transcribe(w, *a, **k)
    try:
        s = LiveSession()
        updates = []
        for i in range(0, len(audio), SAMPLE_RATE):
            now = 1.0 + i / SAMPLE_RATE
            s.add_audio(SAMPLE_RATE, (audio[i:i + SAMPLE_RATE] * 32767).astype(np.int16), now=now)
            for k in range(5):
                s.add_face(row, now=now - 1 + k / 5)
            updates.append(update(analyzer, s))
    finally:
        analyzer.features.transcriber.transcribe = transcribe
    assert max(heard) <= s.config.max_pending + 1e-6
    later = [u for u in updates if u.t >= 4]
    assert all(u.scores["M"] is not None and -3 <= u.scores["M"] <= 3 for u in later)
    assert all("V" not in u.missing for u in later)  # the face rows of the window reach the model
    final = updates[-1].transcript.lower()
    assert final.count("movie") + final.count("love") >= 4, final  # all three sentences, committed in turn
    assert len(s.committed) >= 2
    res = finish(analyzer, s)
    assert res.scores["V"] is not None and "V" not in res.missing
    assert "movie" in res.transcript.lower()


@pytest.mark.slow
@pytest.mark.skipif(not media.have_espeak(), reason="espeak-ng is needed to make speech")
def test_the_voice_and_the_words_share_one_encoder_pass(analyzer):
    """When the pending words' audio holds the voice window, one Whisper encoder pass serves both: the window's
    frames are cut from its end and the transcription decodes from it; otherwise the voice encodes its window."""
    from scipy.signal import resample_poly

    wave, rate = media.speech_samples()
    wave = resample_poly(wave, SAMPLE_RATE, rate).astype(np.float32)
    s = LiveSession()
    s.add_audio(SAMPLE_RATE, (np.tile(wave, 3)[:7 * SAMPLE_RATE] * 32767).astype(np.int16), now=7.0)
    end = s.seconds
    start = end - s.config.window
    model = analyzer.features.transcriber.model
    kept = []
    take = model.take
    model.take = lambda w: kept.append(take(w)) or kept[-1]
    try:
        voice = live._voice_for_words(analyzer, s, start, end)
        live._transcribe(analyzer, s, end)
    finally:
        del model.take
    assert voice is not None and voice.frames.shape == (round(s.config.window * 10), 384)
    assert len(kept) == 1 and kept[0] is not None  # the transcription decoded from the voice's encoder pass
    assert "love" in s.transcript().lower() or "movie" in s.transcript().lower(), s.transcript()

    s.committed_until = end - 2  # the pending words begin inside the window: the voice encodes its own
    assert live._voice_for_words(analyzer, s, start, end) is None
