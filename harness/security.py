"""Security checks against the running app, each giving one row of the robustness table (tests/bad_inputs.Row).
Shared by tests/test_robustness.py and scripts/robustness.py.

- a path given through the API (instead of an upload) is refused, never read: /etc/passwd, ../ tricks, the
  app's own files and its model;
- a URL given as a file is refused, never downloaded (Gradio would fetch it, with no size limit);
- Gradio's file routes serve nothing outside the app's own assets and uploads;
- an upload over the size limit is refused while it streams in (gradio's max_file_size), leaving nothing;
- uploads are deleted after their time to live, and a deleted one that is sent again gets a clear message;
- the app never loads pickles (a pickle runs code when loaded).
"""
from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from harness.app_model import REPO, AppProcess
from harness.bad_inputs import Row, files_in

REFUSED = "refused"
PASSWD = Path("/etc/passwd")


def file_data(path: str | None, **extra) -> dict:
    """What gradio_client sends for a file, but with any path: the raw API does not check who uploaded it."""
    return {"path": path, "meta": {"_type": "gradio.FileData"}, **extra}


def call_raw(app: AppProcess, data: list, timeout: float = 60) -> tuple[str, str]:
    """POST /gradio_api/call/analyze with `data` as is, then read its event stream: (event, data)."""
    req = urllib.request.Request(app.url + "gradio_api/call/analyze", data=json.dumps({"data": data}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        event_id = json.loads(urllib.request.urlopen(req, timeout=10).read())["event_id"]
    except urllib.error.HTTPError as e:
        return f"http {e.code}", e.read().decode(errors="replace")
    body = urllib.request.urlopen(app.url + f"gradio_api/call/analyze/{event_id}", timeout=timeout).read().decode()
    events = re.findall(r"event: (\w+)\ndata: (.*)", body)
    return events[-1] if events else ("none", body)


def upload_raw(app: AppProcess, name: str, data: bytes) -> tuple[int, str]:
    """POST /gradio_api/upload as a browser does: (status, body)."""
    import httpx

    r = httpx.post(app.url + "gradio_api/upload", files={"files": (name, data)}, timeout=60)
    return r.status_code, r.text


def _row(case: str, expect: str, outcome: str, t0: float, problems: list[str]) -> Row:
    return Row(case, expect, outcome, time.perf_counter() - t0, problems)


def paths_through_the_api(app: AppProcess, temp: Path, model: Path) -> Row:
    """Each file input given paths outside its uploads: every call refused, nothing copied in."""
    t0 = time.perf_counter()
    paths = [str(PASSWD), "/etc/../etc/passwd", "../../../../../../etc/passwd", str(REPO / "app.py"),
             str(Path(model) / "card.json"), "/proc/self/environ", str(temp / ".." / ".." / "etc" / "passwd")]
    problems, refused, tries = [], 0, 0
    secret = PASSWD.read_bytes()
    for slot in range(3):  # webcam video, microphone, upload
        for value in [file_data(p) for p in paths] + [str(PASSWD), file_data("x.mp4", url=f"file://{PASSWD}")]:
            data = [None, None, None, ""]
            data[slot] = value
            event, payload = call_raw(app, data)
            tries += 1
            if event == "error" or event.startswith("http 4"):
                refused += 1
            else:
                problems.append(f"input {slot} accepted {value}: {event} {payload[:100]}")
            if "root:" in payload:
                problems.append(f"input {slot} showed /etc/passwd")
    copied = [p for p in files_in(temp) if Path(p).read_bytes() == secret] if temp.exists() else []
    if copied:
        problems.append(f"copied into the temporary folder: {copied}")
    if not app.alive():
        problems.append("the app died")
    return _row(f"paths outside the uploads via the API ({tries} tries)", REFUSED, f"{REFUSED} {refused}/{tries}",
                t0, problems)


def urls_as_files(app: AppProcess) -> Row:
    """A URL in place of a file is refused before Gradio downloads it (a public address, a local one)."""
    t0 = time.perf_counter()
    problems, refused, tries = [], 0, 0
    for url in ("http://1.2.3.4/clip.mp4", f"{app.url}gradio_api/file=x.mp4", "https://example.com/a.wav"):
        for slot in range(3):
            for value in (file_data(url), file_data(None, url=url)):
                data = [None, None, None, ""]
                data[slot] = value
                event, payload = call_raw(app, data)
                tries += 1
                if event == "error":
                    refused += 1
                else:
                    problems.append(f"input {slot} accepted {value}: {event}")
    return _row(f"URLs given as files ({tries} tries)", REFUSED, f"{REFUSED} {refused}/{tries}", t0, problems)


def file_routes(app: AppProcess, model: Path) -> Row:
    """GET routes that serve files return nothing from outside the app (the file itself never comes back)."""
    t0 = time.perf_counter()
    targets = {str(PASSWD): PASSWD.read_bytes(), str(REPO / "app.py"): (REPO / "app.py").read_bytes(),
               str(Path(model) / "card.json"): (Path(model) / "card.json").read_bytes()}
    routes = []
    for path in targets:
        routes += [f"gradio_api/file={path}", f"file={path}", f"gradio_api/file={urllib.parse.quote(path, safe='')}",
                   f"gradio_api/file=../../../../../..{path}", f"gradio_api/file=/tmp/../..{path}",
                   f"static/../../../../..{path}", f"assets/..%2F..%2F..%2F..{path}",
                   f"gradio_api/stream/..%2F..%2F..{path}", f"gradio_api/proxy=file://{path}",
                   f"gradio_api/file=file://{path}"]
    routes += ["gradio_api/file=app.py", "gradio_api/file=demo/ui.py", "gradio_api/file=.git/config"]
    problems, served = [], 0
    for route in routes:
        try:
            with urllib.request.urlopen(app.url + route, timeout=10) as r:
                body = r.read()
        except urllib.error.HTTPError:
            continue
        except (urllib.error.URLError, ValueError, OSError):
            continue
        if any(body and secret[:200] in body for secret in targets.values()) or (b"root:" in body):
            served += 1
            problems.append(f"GET /{route} returned the file")
    return _row(f"file routes outside the app ({len(routes)} GETs)", REFUSED,
                f"{REFUSED} {len(routes) - served}/{len(routes)}", t0, problems)


def upload_over_the_limit(app: AppProcess, temp: Path, limit: int) -> Row:
    """An upload one MB over the limit gets HTTP 413 with a message, and leaves no partial file behind."""
    t0 = time.perf_counter()
    before = set(files_in(temp))
    status, body = upload_raw(app, "big.mp4", b"\0" * (limit + (1 << 20)))
    problems = [] if status == 413 else [f"HTTP {status}, not 413"]
    if "size" not in body.lower():
        problems.append(f"no clear message: {body[:200]!r}")
    left = set(files_in(temp)) - before
    if left:
        problems.append(f"left behind: {sorted(left)}")
    return _row(f"upload of {limit / 2**20 + 1:.0f} MB (limit {limit / 2**20:.0f} MB)", REFUSED,
                f"{REFUSED}: HTTP {status} {body.strip()[:80]}", t0, problems)


def uploads_expire(app: AppProcess, temp: Path, ttl: float, keep: set[str]) -> Row:
    """Upload a clip, analyse it, wait: the copy is deleted after `ttl` s (all uploads are); sending its server
    path again then gets a clear message. `keep`: checksums of files that stay (the examples)."""
    from harness import media

    t0 = time.perf_counter()
    clip = media.clip("speech", 1.0, ".wav")
    status, body = upload_raw(app, "again.wav", clip.read_bytes())
    server_path = json.loads(body)[0] if status == 200 else None
    problems = [] if server_path else [f"upload failed: HTTP {status}"]
    deadline = time.time() + ttl + max(1, min(60, ttl // 4)) + 15
    left = []
    while time.time() < deadline:
        left = [p for p, sha in files_in(temp).items() if sha not in keep]
        if not left:
            break
        time.sleep(1)
    if left:
        problems.append(f"still there after {ttl + 15:.0f} s: {left}")
    if not keep <= set(files_in(temp).values()):
        problems.append("the examples were deleted too")
    outcome = f"deleted after {time.perf_counter() - t0:.0f} s"
    if server_path:
        event, payload = call_raw(app, [None, None, file_data(server_path), ""])
        message = (json.loads(payload).get("error") or "") if event == "error" else ""
        if "no longer on the server" not in message:
            problems.append(f"sent again: {event} {payload[:200]}")
        outcome += f"; sent again: {message or event}"
    return _row(f"uploads deleted after their time to live ({ttl:g} s)", "deleted", outcome, t0, problems)


PICKLE = re.compile(r"\b(pickle|cPickle|dill|cloudpickle|joblib|shelve|marshal|torch\.load|read_pickle|"
                    r"allow_pickle\s*=\s*True)\b")


def pickle_free() -> Row:
    """No code the app runs (app.py, demo/, selfmm/features/) loads pickles."""
    t0 = time.perf_counter()
    files = [REPO / "app.py", *sorted((REPO / "demo").glob("*.py")),
             *sorted((REPO / "selfmm" / "features").glob("*.py"))]
    hits = [f"{p.relative_to(REPO)}:{i}: {line.strip()}" for p in files
            for i, line in enumerate(p.read_text().splitlines(), 1) if PICKLE.search(line)]
    return _row(f"no pickle loading in the app's code ({len(files)} files)", "none",
                f"{len(hits)} found", t0, hits)
