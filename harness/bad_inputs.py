"""What users send, good and bad, as cases for the running app: each case makes its input, says whether the app
should analyse it or refuse it with a clear message, and checks the answer. Shared by tests/test_robustness.py
and scripts/robustness.py (which prints the table).

After every case the runner also checks what a case cannot see for itself: the app process is still up, the
request left no file in the app's temporary folder other than the copy of the upload itself (Gradio keeps that
until its time to live, see demo/ui.py UPLOAD_TTL), no answer shows the temporary folder's path, and it records
the app's open files (/proc/PID/fd) and resident memory (VmRSS).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from harness import media
from harness.app_model import AppProcess, analyze

ANALYSED, REFUSED = "analysed", "refused"
LONG_TEXT = ("This sentence is typed again and again to make a very long text. " * 80)[:5000]


@dataclass
class Case:
    name: str
    make: Callable[[Path], dict]  # work folder -> inputs of analyze(): video / audio / upload / text
    expect: str  # ANALYSED or REFUSED
    check: Callable[[dict | str], str | None] = lambda out: None  # raw result or message -> a problem, or None


@dataclass
class Row:
    case: str
    expect: str
    outcome: str  # "analysed: ..." / "refused: <message>" / "error: ..."
    seconds: float
    problems: list[str] = field(default_factory=list)
    open_files: int = 0
    rss_mb: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


# -- inputs -------------------------------------------------------------------------------------------------
def _resampled_speech(rate: int, stereo: bool = False) -> np.ndarray:
    from scipy.signal import resample_poly

    wave, r = media.speech_samples()
    wave = resample_poly(wave, rate, r).astype(np.float32)
    return np.stack([wave, 0.5 * wave], 1) if stereo else wave


def _copy(src: Path, dst: Path, keep: float = 1.0) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[:int(len(data) * keep)])
    return dst


def _has(*needles: str) -> Callable[[dict | str], str | None]:
    """A refusal whose message holds every needle."""
    def check(msg):
        missing = [n for n in needles if n.lower() not in str(msg).lower()]
        return f"message lacks {missing}" if missing else None
    return check


def _channels(present: str = "", absent: str = "", reason: str = "", words: str = "",
              extra: Callable[[dict], str | None] | None = None) -> Callable[[dict | str], str | None]:
    """An analysis where the heads in `present` have a score, those in `absent` are missing (with `reason`
    in a missing head's reason), and the transcript holds `words`."""
    def check(raw):
        s, why = raw["scores"], raw["missing_reasons"]
        problems = [f"{h} missing ({why.get(h)})" for h in present if s[h] is None]
        problems += [f"{h} has a score" for h in absent if s[h] is not None]
        problems += [f"{h}'s reason {why.get(h)!r} lacks {reason!r}" for h in absent if reason and h in why
                     and reason not in why[h]]
        if words and words not in raw["transcript"].lower():
            problems.append(f"transcript {raw['transcript']!r} lacks {words!r}")
        if extra is not None and (p := extra(raw)):
            problems.append(p)
        return "; ".join(problems) or None
    return check


def _face_or_clear_reason(raw: dict) -> str | None:
    """The face is scored, or missing for a reason a person understands."""
    if raw["scores"]["V"] is None and "face" not in raw["missing_reasons"].get("V", ""):
        return f"V missing without a clear reason: {raw['missing_reasons'].get('V')!r}"
    return None


def _duration(lo: float, hi: float) -> Callable[[dict], str | None]:
    return lambda raw: None if lo <= raw["duration"] <= hi else f"duration {raw['duration']} not in [{lo}, {hi}]"


SHELL_NAME = "clip $(touch pwned); rm -rf ~ `id` 'q' \"d\" & | ü 日本 😀.mp4"


def _odd_name(d: Path) -> dict:
    return {"upload": _copy(media.clip("face+speech", 3.0, ".mp4", fps=10), d / SHELL_NAME)}


def _no_pwned(raw: dict) -> str | None:
    from harness.app_model import REPO

    return "a shell ran the name" if (REPO / "pwned").exists() or Path("pwned").exists() else None


def _vfr(d: Path) -> dict:
    rng = np.random.default_rng(1)
    times = np.concatenate([[0.0], np.cumsum(rng.uniform(0.02, 0.25, 24))])  # 4 to 50 fps, about 3 s
    frames = media.moving_frames(len(times) / 30, 30)[:len(times)]
    wave = _resampled_speech(16000)[:int(times[-1] * 16000)]
    return {"video": media.write_clip(d / "vfr.mp4", frames, 30, wave, 16000, times=times)}


def _text(path: Path, body: bytes) -> Path:
    path.write_bytes(body)
    return path


CASES: list[Case] = [
    Case("empty file", lambda d: {"upload": _text(d / "empty.mp4", b"")}, REFUSED, _has("empty (0 bytes)")),
    Case("text file renamed .mp4", lambda d: {"upload": _text(d / "holiday.mp4", b"not a video\n" * 100)}, REFUSED,
         _has("holiday.mp4", "not a readable audio or video file")),
    Case("wrong type (.txt)", lambda d: {"upload": _text(d / "notes.txt", b"hello")}, REFUSED,
         _has("invalid file type")),
    Case("truncated mp4 (first 60%)", lambda d: {"upload": _copy(media.clip("face+speech", 3.0, ".mp4", fps=10),
                                                                  d / "cut.mp4", 0.6)},
         REFUSED, _has("cut.mp4", "not a readable")),
    Case("truncated webm (first 60%)", lambda d: {"video": _copy(media.clip("face+speech", 3.0, ".webm", fps=10),
                                                                  d / "cut.webm", 0.6)},
         ANALYSED, _channels("A", extra=_duration(0.5, 2.9))),
    Case("video without audio track", lambda d: {"video": media.clip("face", 2.0, ".mp4", fps=10)}, ANALYSED,
         _channels("V", "TA", "no audio")),
    Case("audio only (wav)", lambda d: {"upload": media.clip("speech", 3.0, ".wav")}, ANALYSED,
         _channels("MTA", "V", "no video", "love")),
    Case("audio file named .mp4", lambda d: {"upload": _copy(media.clip("speech", 3.0, ".wav"), d / "voice.mp4")},
         ANALYSED, _channels("MTA", "V", "no video", "love")),
    Case("silence only (wav)", lambda d: {"upload": media.clip("silence", 2.0, ".wav")}, REFUSED,
         _has("Nothing to analyse", "silence")),
    Case("face with silence", lambda d: {"video": media.clip("face+silence", 2.0, ".mp4", fps=10)}, ANALYSED,
         _channels("V", "TA", extra=lambda raw: None if "silence" in raw["missing_reasons"]["A"] else "A not silence")),
    Case("white noise (wav)", lambda d: {"upload": media.clip("noise", 3.0, ".wav")}, ANALYSED,
         _channels("A", "V")),
    Case("no face in view", lambda d: {"video": media.clip("noface+speech", 3.0, ".mp4", fps=10)}, ANALYSED,
         _channels("MTA", "V", "no face", "love")),
    Case("two faces", lambda d: {"video": media.write_clip(d / "two.mp4", media.still_frames(2.0, 10, "twofaces"),
                                                           10, _resampled_speech(16000), 16000)},
         ANALYSED, _channels("TAV", words="love")),
    Case("face turned away", lambda d: {"video": media.write_clip(
        d / "turned.mp4", media.still_frames(2.0, 10, "turned"), 10, _resampled_speech(16000), 16000)},
         ANALYSED, _channels("TA", extra=_face_or_clear_reason)),
    Case("0.2 s clip", lambda d: {"video": media.clip("face+speech", 0.2, ".mp4")}, REFUSED, _has("too short")),
    Case("61 s clip (over the limit)", lambda d: {"video": media.clip("face", 61.0, ".mp4", fps=2.0)}, REFUSED,
         _has("too long (61.0 s)")),
    Case("4K frames (3840x2160)", lambda d: {"video": media.write_clip(
        d / "uhd.mp4", media.still_frames(1.5, 10, "head", (3840, 2160)), 10, _resampled_speech(16000)[:24000], 16000)},
         ANALYSED, _channels("AV", extra=_duration(1.3, 1.7))),
    Case("variable frame rate (4-50 fps)", _vfr, ANALYSED, _channels("TAV", words="love")),
    Case("8 kHz mono audio", lambda d: {"upload": media.write_clip(d / "phone.wav", None, audio=_resampled_speech(8000),
                                                                   rate=8000)},
         ANALYSED, _channels("TA", "V", words="love")),
    Case("48 kHz stereo audio", lambda d: {"upload": media.write_clip(
        d / "stereo.wav", None, audio=_resampled_speech(48000, stereo=True), rate=48000)},
         ANALYSED, _channels("TA", "V", words="love")),
    Case("German speech (espeak-ng -v de)", lambda d: {"video": media.clip(
        "face+speech", 3.0, ".mp4", text="Ich liebe diesen Film, er ist wunderbar.", fps=10, voice="de")},
         ANALYSED, _channels("AV")),
    Case("very long typed text (5000 chars)", lambda d: {"text": LONG_TEXT}, REFUSED,
         _has("too long (5000 characters)", "limit is 1000")),
    Case("typed text at the limit (1000 chars) + clip", lambda d: {
        "video": media.clip("face+speech", 3.0, ".mp4", fps=10), "text": LONG_TEXT[:1000]}, ANALYSED,
         _channels("TAV", extra=lambda raw: None if raw["transcript"].startswith("This sentence") else "not typed")),
    Case("control characters, emoji and HTML in text", lambda d: {
        "text": "I love it \x00\x07 😀 <script>alert(1)</script> &amp; {{x}}"}, ANALYSED, _channels("MT", "AV")),
    Case("unicode and shell characters in the file name", _odd_name, ANALYSED,
         _channels("MTA", words="love", extra=_no_pwned)),
    Case("webm (VP8 + Opus)", lambda d: {"video": media.clip("face+speech", 3.0, ".webm", fps=10)}, ANALYSED,
         _channels("MTAV", words="love")),
    Case("mkv (H.264 + PCM)", lambda d: {"upload": media.clip("face+speech", 3.0, ".mkv", fps=10)}, ANALYSED,
         _channels("MTAV", words="love")),
    Case("mov (H.264 + PCM)", lambda d: {"upload": media.clip("face+speech", 3.0, ".mov", fps=10)}, ANALYSED,
         _channels("MTAV", words="love")),
    Case("ogg (Opus audio)", lambda d: {"upload": media.clip("speech", 3.0, ".ogg")}, ANALYSED,
         _channels("MTA", "V", words="love")),
    Case("mp3", lambda d: {"upload": media.clip("speech", 3.0, ".mp3")}, ANALYSED, _channels("MTA", "V", words="love")),
    Case("microphone given an mp3", lambda d: {"audio": media.clip("speech", 3.0, ".mp3")}, ANALYSED,
         _channels("MTA", "V", words="love")),
    Case("nothing given", lambda d: {}, REFUSED, _has("Nothing to analyse")),
    Case("only spaces typed", lambda d: {"text": "   \n\t "}, REFUSED, _has("Nothing to analyse")),
]


# -- running ------------------------------------------------------------------------------------------------
def files_in(folder: Path) -> dict[str, str]:
    """Every file under `folder` -> its SHA-256 (files only: Gradio leaves empty folders behind)."""
    out = {}
    for p in folder.rglob("*"):
        try:
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        except FileNotFoundError:  # deleted meanwhile by the app's clean-up
            pass
    return out


def summary(raw: dict) -> str:
    scores = " ".join(f"{h}={'-' if v is None else f'{v:+.2f}'}" for h, v in raw["scores"].items())
    return f"{scores}" + (f"; missing {','.join(raw['missing'])}" if raw["missing"] else "")


def run_case(case: Case, client, app: AppProcess, temp: Path, work: Path, timeout: float = 120) -> Row:
    """Make the input, send it, check the answer, the process, the temporary folder and the answer's text."""
    from gradio_client.exceptions import AppError

    inputs = case.make(work)
    sent = {hashlib.sha256(Path(p).read_bytes()).hexdigest() for k, p in inputs.items() if k != "text"}
    before = files_in(temp)
    t = time.perf_counter()
    problems: list[str] = []
    answer: dict | str
    try:
        out = analyze(client, timeout=timeout, **inputs)
        answer, outcome = out["raw"], f"{ANALYSED}: {summary(out['raw'])}"
        text = str(out)
    except AppError as e:
        answer, outcome = str(e), f"{REFUSED}: {str(e).strip()}"
        text = answer
    except Exception as e:  # a hang (TimeoutError), a dropped connection, ...
        answer, outcome = "", f"error: {type(e).__name__}: {e}"
        text = ""
    seconds = time.perf_counter() - t
    got = outcome.split(":")[0]
    if got != case.expect:
        problems.append(f"expected {case.expect}")
    elif (p := case.check(answer)):
        problems.append(p)
    if not app.alive():
        problems.append("the app died")
        return Row(case.name, case.expect, outcome, seconds, problems)
    left = {p for p, sha in files_in(temp).items() if p not in before and sha not in sent}
    if left:
        problems.append(f"left in the temporary folder: {sorted(left)}")
    if str(temp) in text:
        problems.append("the answer shows the temporary folder's path")
    return Row(case.name, case.expect, outcome, seconds, problems, app.open_files(), app.rss_mb())


def table(rows: list[Row], width: int = 72) -> str:
    """case | expected | outcome | time | ok, one line each (long messages cut to `width`)."""
    head = f"{'case':<44} {'expect':<8} {'outcome':<{width}} {'time':>6}  ok"
    lines = [head, "-" * len(head)]
    for r in rows:
        outcome = r.outcome.replace("\n", " ")
        outcome = outcome if len(outcome) <= width else outcome[:width - 3] + "..."
        lines.append(f"{r.case[:44]:<44} {r.expect:<8} {outcome:<{width}} {r.seconds:5.1f}s  "
                     f"{'yes' if r.ok else 'NO: ' + '; '.join(r.problems)}")
    return "\n".join(lines)
