"""Faults in what the app is given to start with: a missing or damaged model, a model made for other features,
a temporary folder it cannot write, a Whisper model that is not there or does not load. Each must stop
`python app.py` at start with a message that says what is wrong (no traceback), well within a timeout - never
a hang, never a server that starts and fails later. Shared by tests/test_robustness.py and
scripts/robustness.py.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.app_model import REPO, free_port
from harness.bad_inputs import Row

STOPPED = "stopped"
LOG_LINE = re.compile(r"^[WIE]\d{4} |^(INFO|WARNING)[: ]")


@dataclass
class Fault:
    name: str
    make: Callable[[Path, Path], tuple[list[str], dict]]  # (model, work folder) -> (app.py args, extra env)
    needles: tuple[str, ...]  # what the message must say


def _copy(model: Path, work: Path) -> Path:
    out = work / "model"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(model, out)
    return out


def _modified_onnx(model: Path, work: Path) -> tuple[list[str], dict]:
    d = _copy(model, work)
    data = bytearray((d / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, in the weights
    (d / "model.onnx").write_bytes(bytes(data))
    return ["--model", str(d)], {}


def _resign(d: Path, card: dict) -> None:
    """Write `card` into card.json and into the ONNX file's metadata, with the new file's checksum: an artifact
    that is consistent in itself (as `python -m export` would write it), so that only the spec check can fail."""
    import onnx

    path = d / "model.onnx"
    proto = onnx.load(str(path))
    inner = {k: v for k, v in card.items() if k != "onnx"}
    for prop in proto.metadata_props:
        if prop.key == "card":
            prop.value = json.dumps(inner)
    onnx.save(proto, str(path))
    card["onnx"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    card["onnx"]["bytes"] = path.stat().st_size
    (d / "card.json").write_text(json.dumps(card, indent=1))


def _other_features(model: Path, work: Path) -> tuple[list[str], dict]:
    d = _copy(model, work)
    card = json.loads((d / "card.json").read_text())
    card["feature_specs"]["audio"]["params"]["n_mels"] = 64  # trained on features made with other settings
    _resign(d, card)
    return ["--model", str(d)], {}


def _unwritable_temp(model: Path, work: Path) -> tuple[list[str], dict]:
    blocker = work / "a-file"
    blocker.write_text("not a folder")
    return ["--model", str(model)], {"GRADIO_TEMP_DIR": str(blocker / "gradio")}  # root can write anywhere else


def _broken_whisper(model: Path, work: Path) -> tuple[list[str], dict]:
    d = work / "whisper"
    d.mkdir(exist_ok=True)
    (d / "config.json").write_text("{}")
    (d / "model.bin").write_bytes(b"\x00" * 1000)
    return ["--model", str(model), "--asr-model", str(d)], {}


FAULTS: list[Fault] = [
    Fault("model folder missing", lambda m, w: (["--model", str(w / "no-such-model")], {}),
          ("No model at", "no-such-model")),
    Fault("model.onnx changed (one bit)", _modified_onnx,
          ("Cannot use the model", "damaged or was changed", "SHA-256")),
    Fault("card.json not JSON", lambda m, w: (["--model", str(_damage(m, w, "card.json", b'{"format_version": 1,'))],
                                              {}), ("Cannot use the model", "not valid JSON")),
    Fault("tokenizer.json missing", lambda m, w: (["--model", str(_damage(m, w, "tokenizer.json", None))], {}),
          ("Cannot use the model", "tokenizer file", "missing")),
    Fault("model made for other features", _other_features,
          ("Cannot use the model", "trained on other features", "audio: params")),
    Fault("temporary folder not writable", _unwritable_temp,
          ("Cannot write to the temporary folder", "GRADIO_TEMP_DIR")),
    Fault("Whisper folder does not exist (SELFMM_ASR_MODEL)",
          lambda m, w: (["--model", str(m)], {"SELFMM_ASR_MODEL": str(w / "no-such-whisper")}),
          ("speech recognition model", "no-such-whisper", "does not exist")),
    Fault("Whisper folder damaged (--asr-model)", _broken_whisper,
          ("speech recognition model", "cannot load the Whisper model folder")),
    Fault("Whisper model name, offline (--asr-model small)",
          lambda m, w: (["--model", str(m), "--asr-model", "small"], {}),
          ("speech recognition model", "'small'", "internet")),
]


def _damage(model: Path, work: Path, name: str, content: bytes | None) -> Path:
    d = _copy(model, work)
    if content is None:
        (d / name).unlink()
    else:
        (d / name).write_bytes(content)
    return d


def run_fault(fault: Fault, model: Path, work: Path, timeout: float = 120) -> Row:
    """Start `python app.py` with the fault; it must exit non-zero in time with the expected message."""
    work.mkdir(parents=True, exist_ok=True)
    args, env = fault.make(model, work)
    cmd = [sys.executable, "app.py", *args, "--host", "127.0.0.1", "--port", str(free_port()), "--no-warm-up"]
    t = time.perf_counter()
    problems = []
    try:
        run = subprocess.run(cmd, cwd=REPO, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **env},
                             capture_output=True, text=True, timeout=timeout)
        out = (run.stdout + run.stderr).strip()
        # the message, without the native libraries' log lines (MediaPipe, TensorFlow Lite)
        lines = [x.strip() for x in run.stderr.splitlines() if x.strip() and not LOG_LINE.match(x)]
        message = " ".join(lines) if "Traceback" not in out else "traceback: " + lines[-1]
        outcome = f"{STOPPED} at start: {message}" if run.returncode else f"exited 0: {out[-300:]}"
        if run.returncode == 0:
            problems.append("exited without an error")
        missing = [n for n in fault.needles if n not in out]
        if missing:
            problems.append(f"message lacks {missing}")
        if "Traceback" in out:
            problems.append("a traceback instead of a message")
    except subprocess.TimeoutExpired:  # it hangs, or it started serving despite the fault
        outcome = f"error: still running after {timeout:.0f} s"
        problems.append("no clear stop")
    return Row(fault.name, STOPPED, outcome, time.perf_counter() - t, problems)


def whisper_fails_during_a_request(model: Path, timeout: float = 120) -> Row:
    """In this process: the app's handler with a Whisper that raises. The person gets a message in time, and
    the same handler then analyses typed text (which needs no Whisper)."""
    import concurrent.futures

    import gradio as gr

    from demo.analyzer import Analyzer
    from demo.ui import build
    from harness import media

    class BrokenWhisper:
        def transcribe(self, *args, **kwargs):
            raise RuntimeError("CTranslate2 failed to decode")

    t = time.perf_counter()
    analyzer = Analyzer.load(model, warm_up=False)
    analyzer.features._transcriber = BrokenWhisper()
    handler = next(f.fn for f in build(analyzer).fns.values() if f.api_name == "analyze")
    clip = str(media.clip("face+speech", 2.0, ".mp4", fps=10))
    problems, outcome = [], ""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            pool.submit(handler, "upload", None, None, clip, "").result(timeout=timeout)
            problems.append("analysed although Whisper failed")
        except gr.Error as e:
            outcome = f"refused: {e.message}"
            if "The analysis failed" not in e.message or "CTranslate2" not in e.message:
                problems.append("unclear message")
        except concurrent.futures.TimeoutError:
            outcome = "error: no answer"
            problems.append(f"no answer in {timeout:.0f} s")
        after = pool.submit(handler, "webcam", None, None, None, "Typed words need no Whisper.").result(timeout=timeout)
    if after[-1]["scores"]["T"] is None:
        problems.append("typed text was not analysed afterwards")
    return Row("Whisper fails during a request", "refused", outcome, time.perf_counter() - t, problems)


def temp_folder_lost_while_running(app, temp: Path, client) -> Row:
    """The temporary folder is replaced by a file while the app runs (as a full disk would make it fail): an
    upload fails, the app keeps serving, and uploads work again once the folder can be written."""
    from harness import media
    from harness.app_model import analyze

    t = time.perf_counter()
    problems = []
    clip = media.clip("speech", 1.5, ".wav")
    shutil.rmtree(temp)
    temp.write_text("not a folder")
    try:
        try:
            analyze(client, upload=clip, timeout=60)
            outcome = "analysed"
            problems.append("analysed without a temporary folder")
        except Exception as e:  # gradio_client raises httpx's HTTPStatusError for the failed upload
            outcome = f"upload refused: {type(e).__name__}: {str(e).splitlines()[0][:80]}"
        if analyze(client, text="Still serving typed text.", timeout=60)["raw"]["scores"]["T"] is None:
            problems.append("typed text not analysed meanwhile")
    finally:
        temp.unlink()
    if analyze(client, upload=clip, timeout=60)["raw"]["scores"]["A"] is None:  # Gradio makes the folder again
        problems.append("no recovery")
    if not app.alive():
        problems.append("the app died")
    return Row("temporary folder lost while running", "recovers", outcome + "; then recovered",
               time.perf_counter() - t, problems)
