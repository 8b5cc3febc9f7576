"""Load test: many people at once. `python app.py` in a subprocess, N gradio_client clients in threads, each
sending several clips one after the other, all starting together; repeated for a few rounds.

    python -m scripts.load_test [--clients 20] [--clips 3] [--rounds 3] [--model DIR] [--timeout 300]

Every request must be answered: with an analysis, or refused with Gradio's "Queue is full" (the app queues up
to 16 requests, demo/ui.py) - never left hanging (each waits at most --timeout s). The app's resident memory
(VmRSS) is sampled every 0.2 s: before a round, its peak during the round, and after it. Memory must not grow
from round to round (after the first, which fills caches). Prints one table row per round; the exit status is
1 when a request went unanswered or memory grew by more than --max-growth MB between the first and last round.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BUSY = "busy"


@dataclass
class Round:
    clients: int
    outcomes: list[tuple[str, float, float]] = field(default_factory=list)  # (ok/busy/refused/error, latency, work)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    rss_before: float = 0.0
    rss_peak: float = 0.0
    rss_after: float = 0.0
    fds_after: int = 0
    fd_kinds_after: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> int:
        return sum(o == kind for o, _, _ in self.outcomes)

    def latency(self, q: float) -> float:
        """Quantile q of the answered requests' latency (queue wait included), in seconds."""
        xs = sorted(t for o, t, _ in self.outcomes if o == "ok")
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")

    @property
    def work(self) -> float:
        """Median time the app spent on one analysis (its own "total"), without the queue wait."""
        xs = [w for o, _, w in self.outcomes if o == "ok"]
        return statistics.median(xs) if xs else float("nan")


def make_clips() -> list[Path]:
    """Short clips of the kinds people send: webcam webm, mp4 upload, a voice recording."""
    from harness import media

    return [media.clip("face+speech", 3.0, ".webm", fps=10), media.clip("face+speech", 2.0, ".mp4", fps=10),
            media.clip("speech", 3.0, ".wav")]


def _client_run(url: str, clips: list[Path], start: threading.Barrier, out: Round, lock: threading.Lock,
                timeout: float) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from harness.app_model import analyze

    client = Client(url, verbose=False)
    start.wait()
    for clip in clips:
        kind = "upload" if clip.suffix == ".wav" else "video"
        t = time.perf_counter()
        work = 0.0
        try:
            raw = analyze(client, timeout=timeout, **{kind: clip})["raw"]
            outcome, work = "ok", raw["timings"]["total"]
        except AppError as e:
            outcome = "refused"
            with lock:
                out.errors.append(f"refused: {e}")
        except Exception as e:  # QueueError when the queue is full; TimeoutError when it hangs
            busy = "queue is full" in str(e).lower()
            outcome = BUSY if busy else "error"
            if not busy:
                with lock:
                    out.errors.append(f"{type(e).__name__}: {e}")
        with lock:
            out.outcomes.append((outcome, time.perf_counter() - t, work))
    client.close()


def run_round(app, clips: list[Path], clients: int, per_client: int, timeout: float = 300) -> Round:
    """`clients` threads, each sending `per_client` clips (cycling through `clips` from its own offset)."""
    out = Round(clients)
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    threads = [threading.Thread(target=_client_run, daemon=True,
                                args=(app.url, [clips[(i + k) % len(clips)] for k in range(per_client)], start,
                                      out, lock, timeout)) for i in range(clients)]
    for th in threads:
        th.start()
    out.rss_before = out.rss_peak = app.rss_mb()
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            out.rss_peak = max(out.rss_peak, app.rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    start.wait(timeout=120)  # every client connected: go
    sampler.start()
    t = time.perf_counter()
    for th in threads:
        th.join(timeout=timeout * per_client + 60)
    out.wall = time.perf_counter() - t
    stop.set()
    sampler.join()
    unanswered = clients * per_client - len(out.outcomes)
    if unanswered:
        out.outcomes += [("error", float("nan"), 0.0)] * unanswered
        out.errors.append(f"{unanswered} requests never returned")
    out.fds_after = settled_open_files(app)
    out.fd_kinds_after = app.open_file_kinds()
    out.rss_after = app.rss_mb()
    return out


KEEP_ALIVE = 5.0  # seconds uvicorn (under Gradio) keeps an idle connection open


def settled_open_files(app, wait: float = 30.0, hold: float = KEEP_ALIVE + 3) -> int:
    """The app's open files once the round's sockets have closed: the lowest count seen, polled until it has held
    for `hold` s or `wait` s have passed. A leak stays. `hold` must outlast uvicorn's keep-alive: with a shorter
    one the clients' idle connections, which all close together, read as a leak of one socket per client."""
    low = app.open_files()
    start = since = time.monotonic()
    while time.monotonic() - start < wait and time.monotonic() - since < hold:
        time.sleep(0.5)
        n = app.open_files()
        if n < low:
            low, since = n, time.monotonic()
    return low


def table(rounds: list[Round]) -> str:
    head = (f"{'round':>5} {'clients':>7} {'requests':>8} {'ok':>4} {'busy':>4} {'failed':>6} {'p50 s':>6} "
            f"{'p95 s':>6} {'max s':>6} {'work s':>6} {'wall s':>6} {'RSS before':>10} {'RSS peak':>8} "
            f"{'RSS after':>9} {'fds':>4}")
    lines = [head, "-" * len(head)]
    for i, r in enumerate(rounds, 1):
        failed = len(r.outcomes) - r.count("ok") - r.count(BUSY)
        lines.append(f"{i:>5} {r.clients:>7} {len(r.outcomes):>8} {r.count('ok'):>4} {r.count(BUSY):>4} "
                     f"{failed:>6} {r.latency(0.5):>6.1f} {r.latency(0.95):>6.1f} {r.latency(1.0):>6.1f} "
                     f"{r.work:>6.2f} {r.wall:>6.1f} {r.rss_before:>8.0f}MB {r.rss_peak:>6.0f}MB {r.rss_after:>7.0f}MB "
                     f"{r.fds_after:>4}")
    return "\n".join(lines)


def problems(rounds: list[Round], max_growth: float) -> list[str]:
    """What went wrong: unanswered or failed requests, memory growth between the first and the last round, open
    files that grow in every round."""
    out = [f"round {i}: {e}" for i, r in enumerate(rounds, 1) for e in r.errors]
    if len(rounds) >= 2 and rounds[-1].rss_after - rounds[0].rss_after > max_growth:
        out.append(f"memory grew from {rounds[0].rss_after:.0f} MB to {rounds[-1].rss_after:.0f} MB across rounds")
    fds = [r.fds_after for r in rounds]
    # A leak grows with every round; a one-off (a graph built lazily by a later clip, a late socket) does not.
    if len(fds) >= 2 and fds[-1] > fds[0] + 5 and all(b > a for a, b in zip(fds, fds[1:])):
        first, last = rounds[0].fd_kinds_after, rounds[-1].fd_kinds_after
        grew = {k: last.get(k, 0) - first.get(k, 0) for k in {*first, *last} if last.get(k, 0) != first.get(k, 0)}
        out.append(f"open files grew from {rounds[0].fds_after} to {rounds[-1].fds_after} (by kind: {grew})")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.load_test", description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--clips", type=int, default=3, help="clips each client sends, one after the other")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--model", help="model artifact folder (default: assets/model or the tests' tiny model)")
    p.add_argument("--timeout", type=float, default=300, help="seconds one request may take, queue included")
    p.add_argument("--max-growth", type=float, default=100, help="MB of RSS growth allowed from round 1 to the last")
    args = p.parse_args(argv)

    from harness.app_model import app_process, model_dir

    clips = make_clips()
    with tempfile.TemporaryDirectory(prefix="selfmm-load-") as temp, \
            app_process(Path(args.model) if args.model else model_dir(), env={"GRADIO_TEMP_DIR": temp}) as app:
        print(f"app pid {app.pid}: {app.rss_mb():.0f} MB resident, {app.open_files()} open files; "
              f"{args.clients} clients x {args.clips} clips x {args.rounds} rounds", flush=True)
        rounds = []
        for i in range(args.rounds):
            rounds.append(run_round(app, clips, args.clients, args.clips, args.timeout))
            print(table(rounds).splitlines()[-1], flush=True)
        alive = app.alive()
    print()
    print(table(rounds))
    bad = problems(rounds, args.max_growth) + ([] if alive else ["the app died"])
    for line in bad:
        print("PROBLEM:", line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
