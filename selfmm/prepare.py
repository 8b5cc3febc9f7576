"""Raw clips + a label CSV -> an MMSA feature file, with the extractors the app uses (selfmm.features).

    python -m selfmm.prepare --videos DIR --labels CSV --out FILE [--workers N]

Label CSV layouts:
  MMSA-FET  video_id,clip_id,text,label[,label_T,label_A,label_V][,annotation],mode   clip DIR/video_id/clip_id.*
  MOSI      id,text,label,mode   (id = videoID_clipID)                                clip DIR/id.* or DIR/videoID/clipID.*
mode is train / valid (or dev, val) / test. An empty text is transcribed with Whisper (see --asr).

Each clip's features are cached (one .npz per clip in FILE's folder, `<name>.cache/`), so an interrupted run
resumes where it stopped. Clips that cannot be read are reported and left out, never silently. Sequences are
padded as MMSA-FET does: length = min(longest, int(mean + 3 std)) over the whole dataset, longer ones cut.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from selfmm.features.media import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS
from selfmm.features.pipeline import AUDIO_FEATURES, DEFAULT_AUDIO
from selfmm.features.vision import COLUMNS as VISION_COLUMNS

MODES = {"train": "train", "valid": "valid", "val": "valid", "dev": "valid", "test": "test"}


@dataclass
class Row:
    id: str  # "videoID$_$clipID" as in MMSA files
    video_id: str
    clip_id: str
    text: str
    label: float
    mode: str  # train | valid | test
    unimodal: dict[str, float] = field(default_factory=dict)  # "T" | "A" | "V" -> label


def read_labels(path: str | os.PathLike) -> list[Row]:
    """Rows of an MMSA-FET or MOSI-style label CSV (layout detected from the header)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        mmsa = {"video_id", "clip_id"} <= set(header)
        need = {"label", "mode"} | ({"video_id", "clip_id"} if mmsa else {"id"})
        if not need <= set(header):
            raise ValueError(f"{path}: columns {header} lack {sorted(need - set(header))}; expected MMSA-FET's "
                             "video_id,clip_id,text,label,...,mode or MOSI's id,text,label,mode")
        rows = []
        for n, r in enumerate(reader, start=2):
            if mmsa:
                video, clip = r["video_id"].strip(), r["clip_id"].strip()
            else:
                video, _, clip = r["id"].strip().rpartition("_")
                if not video:
                    video, clip = r["id"].strip(), ""
            mode = MODES.get((r.get("mode") or "").strip().lower())
            if mode is None:
                raise ValueError(f"{path}:{n}: mode {r.get('mode')!r} is not one of {sorted(MODES)}")
            try:
                label = float(r["label"])
            except (TypeError, ValueError):
                raise ValueError(f"{path}:{n}: label {r.get('label')!r} is not a number") from None
            uni = {m: float(r[f"label_{m}"]) for m in "TAV" if (r.get(f"label_{m}") or "").strip()}
            rows.append(Row(f"{video}$_${clip}" if clip else video, video, clip, (r.get("text") or "").strip(),
                            label, mode, uni))
    ids = [r.id for r in rows]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValueError(f"{path}: duplicate clip ids, e.g. {dup}")
    return rows


def index_media(root: str | os.PathLike) -> dict[str, Path]:
    """Media files under root by "video/clip" and by stem; a video file wins over an audio file."""
    exts = VIDEO_EXTENSIONS + AUDIO_EXTENSIONS
    found: dict[str, Path] = {}
    for p in sorted(Path(root).rglob("*")):
        if p.suffix.lower() not in exts or not p.is_file():
            continue
        for key in (f"{p.parent.name}/{p.stem}", p.stem):
            old = found.get(key)
            if old is None or (old.suffix.lower() in AUDIO_EXTENSIONS and p.suffix.lower() in VIDEO_EXTENSIONS):
                found[key] = p
    return found


def find_clip(index: dict[str, Path], row: Row) -> Path | None:
    keys = [f"{row.video_id}/{row.clip_id}", f"{row.video_id}_{row.clip_id}", row.video_id if not row.clip_id else None]
    return next((index[k] for k in keys if k and k in index), None)


# -- per-clip extraction (in worker processes) -------------------------------------------------------------

_pipeline = None


def _init_worker(asr_model: str | None, use_asr: bool, vision: bool, threads: bool, audio: str) -> None:
    global _pipeline
    from selfmm.features.pipeline import FeaturePipeline

    _pipeline = FeaturePipeline(asr_model=asr_model, use_asr=use_asr, vision=vision, parallel=threads, audio=audio)
    _pipeline.warm_up()


def cache_name(clip_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", clip_id)[:80]
    return f"{safe}-{hashlib.sha1(clip_id.encode()).hexdigest()[:8]}.npz"


def _extract_one(clip_id: str, path: str, cache_file: str, run_asr: bool) -> tuple[str, str | None, float]:
    """Extract and cache one clip; returns (id, error or None, seconds)."""
    from selfmm.features.media import MediaError

    t = time.perf_counter()
    try:
        c = _pipeline.extract(path, asr=run_asr)
    except MediaError as e:
        return clip_id, str(e), time.perf_counter() - t
    except Exception as e:  # an extractor crashed on this clip: report it, keep going
        return clip_id, f"{type(e).__name__}: {e}", time.perf_counter() - t
    missing = {k: v for k, v in c.missing.items() if k != "text" or run_asr}
    arrays = {
        "audio": c.audio if c.audio is not None else np.zeros((0, _pipeline.audio.spec.dim), np.float32),
        "vision": c.vision if c.vision is not None else np.zeros((0, len(VISION_COLUMNS)), np.float32),
        "asr_text": np.array(c.transcript if run_asr else ""),
        "asr_model": np.array((_pipeline.asr_model or "default") if run_asr else ""),
        "missing": np.array(json.dumps(missing)),
        "duration": np.array(c.duration),
        "timings": np.array(json.dumps(c.timings)),
    }
    tmp = cache_file + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, cache_file)  # atomic: an interrupted run never leaves half a cache file
    return clip_id, None, time.perf_counter() - t


def _cached(cache_file: Path, need_asr: bool, asr_model: str) -> dict | None:
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as z:
            entry = {k: z[k] for k in z.files}
    except Exception:
        return None  # unreadable (e.g. killed mid-write before the rename existed): extract again
    if need_asr and str(entry["asr_model"]) != asr_model:
        return None
    return entry


class Progress:
    """One status line on stderr: done / total, rate, time left."""

    def __init__(self, total: int, every: float = 2.0):
        self.total, self.every, self.t0, self.last, self.done = total, every, time.time(), 0.0, 0
        self.tty = sys.stderr.isatty()

    def step(self, note: str = "", force: bool = False) -> None:
        self.done += 1
        now = time.time()
        if not (force or self.done == self.total or now - self.last >= self.every):
            return
        self.last = now
        rate = self.done / max(now - self.t0, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else 0
        line = f"[{self.done}/{self.total}] {100 * self.done / max(self.total, 1):5.1f}%  {rate:.2f} clips/s  " \
               f"eta {eta / 60:.1f} min  {note}"
        print(("\r" + line.ljust(100)) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr,
              flush=True)
        if self.tty and self.done == self.total:
            print(file=sys.stderr)


# -- the whole dataset --------------------------------------------------------------------------------------

def prepare(videos: str | os.PathLike, labels: str | os.PathLike, out: str | os.PathLike, workers: int = 1,
            asr: str = "auto", asr_model: str | None = None, cache_dir: str | os.PathLike | None = None,
            vision: bool = True, limit: int | None = None, quiet: bool = False, audio: str = DEFAULT_AUDIO) -> dict:
    """Build the feature file; returns the report (also written next to it as `<out>.report.json`).
    asr: "auto" = Whisper where the CSV text is empty, "always" = Whisper for every clip, "never".
    audio: the audio features (selfmm.features.pipeline.AUDIO_FEATURES)."""
    from selfmm.data import FeatureFile, build_split, padded_length
    from selfmm.features.pipeline import audio_extractor
    from selfmm.features.text import TextTokenizer
    from selfmm.features.vision import FaceExtractor

    if asr not in ("auto", "always", "never"):
        raise ValueError(f"asr must be auto, always or never, not {asr!r}")
    t_start = time.time()
    out = Path(out)
    log = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    rows = read_labels(labels)[:limit]
    index = index_media(videos)
    tokenizer = TextTokenizer()
    audio_spec = audio_extractor(audio).spec
    vision_spec = FaceExtractor().spec if vision else None
    specs = {"text": tokenizer.spec, "audio": audio_spec}
    if vision_spec is not None:
        specs["vision"] = vision_spec
    key = hashlib.sha256("".join(s.hash() for s in specs.values() if s.modality != "text").encode()).hexdigest()[:12]
    cache = Path(cache_dir) if cache_dir else out.with_name(out.stem + ".cache")
    cache = cache / key
    cache.mkdir(parents=True, exist_ok=True)
    asr_id = asr_model or "default"

    failed: dict[str, str] = {}
    todo: list[tuple[Row, Path, Path, bool]] = []
    entries: dict[str, dict] = {}
    for row in rows:
        path = find_clip(index, row)
        if path is None:
            failed[row.id] = f"no media file for {row.video_id}/{row.clip_id} under {videos}"
            continue
        need_asr = _needs_asr(row, asr)
        cache_file = cache / cache_name(row.id)
        entry = _cached(cache_file, need_asr, asr_id)
        if entry is None:
            todo.append((row, path, cache_file, need_asr))
        else:
            entries[row.id] = entry
    for cid, why in failed.items():
        log(f"skip {cid}: {why}")
    log(f"{len(rows)} clips in {labels}: {len(entries)} cached, {len(todo)} to extract, "
        f"{len(failed)} without media; cache {cache}")

    if todo:
        use_asr = any(t[3] for t in todo)
        progress = Progress(len(todo))
        args = [(r.id, str(p), str(c), a) for r, p, c, a in todo]
        if workers <= 1:
            _init_worker(asr_model, use_asr, vision, True, audio)
            try:
                _consume((_extract_one(*a) for a in args), failed, progress, log)
            finally:
                _pipeline.close()
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                     initargs=(asr_model, use_asr, vision, False, audio)) as pool:
                futures = [pool.submit(_extract_one, *a) for a in args]
                _consume((f.result() for f in as_completed(futures)), failed, progress, log)
        for row, _, cache_file, need_asr in todo:
            if row.id not in failed:
                entries[row.id] = _cached(cache_file, need_asr, asr_id)

    # Assemble, in the CSV's order.
    kept = [r for r in rows if r.id in entries]
    texts, sources = {}, {"given": 0, "whisper": 0, "none": 0}
    for r in kept:
        whisper = _needs_asr(r, asr)
        texts[r.id] = str(entries[r.id]["asr_text"]) if whisper else r.text
        sources["whisper" if whisper else "given" if r.text else "none"] += 1
    audio = {r.id: entries[r.id]["audio"] if len(entries[r.id]["audio"]) else None for r in kept}
    vis = {r.id: entries[r.id]["vision"] if len(entries[r.id]["vision"]) else None for r in kept}
    a_len = padded_length(list(audio.values()))
    v_len = padded_length(list(vis.values()))
    v_dim = len(VISION_COLUMNS)

    splits = {}
    for mode in ("train", "valid", "test"):
        part = [r for r in kept if r.mode == mode]
        ids, mask = tokenizer.encode_batch([texts[r.id] for r in part])
        split = build_split([r.id for r in part], [texts[r.id] for r in part], ids, mask,
                            [audio[r.id] for r in part], [vis[r.id] for r in part], [r.label for r in part],
                            (a_len, audio_spec.dim), (v_len, v_dim))
        for m in "TAV":
            if part and all(m in r.unimodal for r in part):
                split.unimodal_labels[m] = np.array([r.unimodal[m] for r in part], np.float32)
        splits[mode] = split
    spec_dicts = {m: s.to_dict() for m, s in specs.items()}
    file = FeatureFile(splits=splits, specs=spec_dicts)
    from selfmm.data import save_feature_file

    save_feature_file(out, file)

    missing_counts: dict[str, dict[str, int]] = {"text": {}, "audio": {}, "vision": {}}
    for r in kept:
        reasons = json.loads(str(entries[r.id]["missing"]))
        asr_reason = reasons.pop("text", None)
        if not texts[r.id]:
            reasons["text"] = (asr_reason or "no recognisable speech") if _needs_asr(r, asr) else "no transcript"
        if vision_spec is None:
            reasons["vision"] = "vision disabled"
        for m, why in reasons.items():
            key_ = re.sub(r"\d+(\.\d+)?", "N", why.split(" (")[0])  # "silence (... -63 dBFS)" -> "silence"
            missing_counts[m][key_] = missing_counts[m].get(key_, 0) + 1
    report = {
        "out": str(out), "labels": str(labels), "videos": str(videos), "clips": len(rows), "written": len(kept),
        "per_split": {m: len(s) for m, s in splits.items()}, "skipped": failed, "missing": missing_counts,
        "transcripts": sources, "asr_model": asr_id if sources["whisper"] else None,
        "padded_length": {"text": tokenizer.max_length, "audio": a_len, "vision": v_len},
        "specs": {m: {"name": s.name, "version": s.version, "hash": s.hash()} for m, s in specs.items()},
        "cache": str(cache), "seconds": round(time.time() - t_start, 1),
    }
    out.with_name(out.name + ".report.json").write_text(json.dumps(report, indent=2))
    log(f"wrote {out}: " + ", ".join(f"{m} {n}" for m, n in report["per_split"].items())
        + f"; padded audio {a_len}, vision {v_len} frames; skipped {len(failed)}")
    if failed:
        log(f"{len(failed)} clips left out (see {out.name}.report.json):")
        for cid, why in list(failed.items())[:20]:
            log(f"  {cid}: {why}")
    for m, reasons in missing_counts.items():
        for why, n in reasons.items():
            log(f"  {m} missing in {n} clips: {why}")
    return report


def _needs_asr(row: Row, asr: str) -> bool:
    return asr == "always" or (asr == "auto" and not row.text)


def _consume(results, failed: dict[str, str], progress: Progress, log) -> None:
    for clip_id, error, _ in results:
        if error:
            failed[clip_id] = error
            if progress.tty:
                print(file=sys.stderr)
            log(f"skip {clip_id}: {error}")
        progress.step(f"failed {len(failed)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m selfmm.prepare", description=__doc__.split("\n\n")[0])
    p.add_argument("--videos", required=True, help="folder with the raw clips (searched recursively)")
    p.add_argument("--labels", required=True, help="label CSV (MMSA-FET or MOSI layout)")
    p.add_argument("--out", required=True, help="feature file to write (pickle)")
    p.add_argument("--workers", type=int, default=1, help="processes; 1 = in this process with the stages "
                   "in threads (best on 2 cores)")
    p.add_argument("--asr", choices=("auto", "always", "never"), default="auto",
                   help="Whisper transcripts: where the CSV text is empty (auto), for every clip, or never")
    p.add_argument("--asr-model", default=None, help="Whisper model folder (CTranslate2) or name (a name needs "
                   "the internet); default: the offline tiny.en")
    p.add_argument("--cache", default=None, help="cache folder (default: <out>.cache next to the output)")
    p.add_argument("--audio", choices=AUDIO_FEATURES, default=DEFAULT_AUDIO,
                   help="audio features: the 24 librosa columns, or Whisper tiny.en's encoder states (the default "
                        "model's; docs/features.md)")
    p.add_argument("--no-vision", action="store_true", help="skip face features (every clip: vision missing)")
    p.add_argument("--limit", type=int, default=None, help="only the first N rows of the CSV")
    args = p.parse_args(argv)
    if not Path(args.videos).is_dir():
        p.error(f"--videos {args.videos} is not a folder")
    report = prepare(args.videos, args.labels, args.out, workers=args.workers, asr=args.asr,
                     asr_model=args.asr_model, cache_dir=args.cache, vision=not args.no_vision, limit=args.limit,
                     audio=args.audio)
    return 0 if report["written"] else 1


if __name__ == "__main__":
    sys.exit(main())
