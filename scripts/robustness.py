"""The robustness and security suite in one command, printed as a table (case, expected, outcome, time, ok).

    python -m scripts.robustness [--model DIR] [--only inputs security faults] [--markdown]

- inputs: `python app.py` (its own temporary folder) driven through gradio_client with 33 kinds of input
  (harness/bad_inputs.py). After each: the app is up, no file but the upload itself is left in its temporary
  folder, no answer shows that folder's path; its open files and memory are recorded.
- security (harness/security.py), against a second app whose uploads live 5 s: paths and URLs through the raw
  API, Gradio's file routes, an upload over the size limit, uploads' time to live, a temporary folder lost
  while running; and no pickle loading in the app's code.
- faults (harness/faults.py): a missing or damaged model, a model made for other features, an unwritable
  temporary folder, a Whisper folder that is missing or damaged or a name that needs the internet: each
  must stop `python app.py` at start with a clear message; and Whisper failing during a request.
The exit status is 1 when a row is not ok. The same checks run in tests/test_robustness.py; the load test is
scripts/load_test.py.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

SECTIONS = ("inputs", "security", "faults")


def run_inputs(model: Path, rows: list, work: Path) -> str:
    """The bad inputs against one app; returns a line on its open files and memory."""
    from gradio_client import Client

    from harness.app_model import app_process
    from harness.bad_inputs import CASES, run_case

    temp = work / "gradio-temp"
    with app_process(model, env={"GRADIO_TEMP_DIR": str(temp)}) as app:
        client = Client(app.url, verbose=False)
        fds0, rss0 = app.open_files(), app.rss_mb()
        mine = []
        for case in CASES:
            mine.append(run_case(case, client, app, temp, work))
            print(f"  {case.name}: {'ok' if mine[-1].ok else 'NOT OK'}", file=sys.stderr, flush=True)
    rows += mine
    return (f"open files: {fds0} at start, at most {max(r.open_files for r in mine)}, {mine[-1].open_files} at "
            f"the end; resident memory: {rss0:.0f} MB at start, at most {max(r.rss_mb for r in mine):.0f} MB, "
            f"{mine[-1].rss_mb:.0f} MB at the end")


def run_security(model: Path, rows: list, work: Path) -> None:
    """The security checks against an app whose uploads live 5 s."""
    from gradio_client import Client

    from demo.limits import LIMITS
    from harness import security
    from harness.app_model import REPO, app_process
    from harness.faults import temp_folder_lost_while_running

    keep = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (REPO / "assets" / "examples").glob("*.mp4")}
    temp = work / "gradio-temp-ttl"
    with app_process(model, env={"GRADIO_TEMP_DIR": str(temp), "SELFMM_UPLOAD_TTL": "5"},
                     args=("--no-warm-up",)) as app:
        rows += [security.paths_through_the_api(app, temp, model), security.urls_as_files(app),
                 security.file_routes(app, model), security.upload_over_the_limit(app, temp, LIMITS.max_bytes),
                 security.uploads_expire(app, temp, 5, keep),
                 temp_folder_lost_while_running(app, temp, Client(app.url, verbose=False))]
    rows.append(security.pickle_free())


def run_faults(model: Path, rows: list, work: Path) -> None:
    from harness.faults import FAULTS, run_fault, whisper_fails_during_a_request

    for i, fault in enumerate(FAULTS):
        rows.append(run_fault(fault, model, work / f"fault-{i}"))
        print(f"  {fault.name}: {'ok' if rows[-1].ok else 'NOT OK'}", file=sys.stderr, flush=True)
    rows.append(whisper_fails_during_a_request(model))


def markdown(rows: list) -> str:
    lines = ["| case | expected | outcome | time | ok |", "|---|---|---|---|---|"]
    for r in rows:
        outcome = r.outcome.replace("|", "\\|").replace("\n", " ")
        outcome = outcome if len(outcome) <= 160 else outcome[:157] + "..."
        lines.append(f"| {r.case.replace('|', '/')} | {r.expect} | {outcome} | {r.seconds:.1f} s | "
                     f"{'yes' if r.ok else 'NO: ' + '; '.join(r.problems).replace('|', '/')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.robustness", description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model artifact folder (default: assets/model or the tests' tiny model)")
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    args = p.parse_args(argv)

    from harness.app_model import model_dir
    from harness.bad_inputs import table

    model = Path(args.model) if args.model else model_dir()
    rows: list = []
    note = ""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="selfmm-robustness-") as tmp:
        work = Path(tmp)
        if "inputs" in args.only:
            note = run_inputs(model, rows, work)
        if "security" in args.only:
            run_security(model, rows, work)
        if "faults" in args.only:
            run_faults(model, rows, work)
    print(markdown(rows) if args.markdown else table(rows))
    bad = [r for r in rows if not r.ok]
    print(f"\n{len(rows)} cases, {len(rows) - len(bad)} ok, {len(bad)} not ok, in {time.perf_counter() - t0:.0f} s"
          + (f"\n{note}" if note else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
