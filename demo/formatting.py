"""Plain text and Markdown of a result and of the model card, shared by the UI and the CLI. Pure functions."""
from __future__ import annotations

from typing import Any, Mapping

from demo.disagreement import CHANNELS, polarity
from selfmm.contract import HEADS

STAGE_NAMES = {"check": "input checks", "decode_audio": "decode audio", "decode_video": "decode video",
               "asr": "speech recognition", "audio": "voice features", "vision": "face features",
               "text": "tokens", "segments": "sentences", "predict": "model (ONNX)", "total": "total (wall)",
               "vision_wait": "wait for the face features", "speech_gate": "speech detection (VAD)"}
READ_AHEAD = ("decode_video", "vision")  # stages run when the clip arrived, before Analyze, where vision_wait is


def fmt_score(score: float | None) -> str:
    return "missing" if score is None else f"{score:+.2f}"


def score_line(head: str, score: float | None, missing: Mapping[str, str], uncalibrated: list[str]) -> str:
    """'T  +1.52  positive', 'V  missing (no face found)', 'A  +0.31  neutral (uncalibrated)'."""
    if score is None:
        why = missing.get(head)
        return f"{head}  missing" + (f" ({why})" if why else "")
    text = f"{head}  {score:+.2f}  {polarity(score)}"
    return text + ("  (uncalibrated)" if head in uncalibrated else "")


def timings_markdown(timings: Mapping[str, float]) -> str:
    """A small table; stages that ran side by side add up to more than the wall time."""
    ahead = "vision_wait" in timings
    rows = [f"| {STAGE_NAMES.get(k, k)}{' (on upload, before Analyze)' if ahead and k in READ_AHEAD else ''} | "
            f"{v:.2f} s |" for k, v in timings.items() if k != "total"]
    if "total" in timings:
        rows.append(f"| **{STAGE_NAMES['total']}** | **{timings['total']:.2f} s** |")
    return "| stage | time |\n|---|---|\n" + "\n".join(rows) + \
        "\n\nDecoding, speech recognition, voice and face run side by side, so the stages add up to more than the total."


def status_markdown(scores: Mapping[str, float | None], missing: Mapping[str, str], uncalibrated: list[str],
                    notes: list[str], duration: float, source: str) -> str:
    head = f"Analysed {source}" + (f" ({duration:.1f} s)" if duration else "") + "."
    lines = [head]
    for h, why in missing.items():
        if h in CHANNELS and h != "M":
            lines.append(f"- {CHANNELS[h].capitalize()} ({h}): missing, {why}.")
        elif h == "M":
            lines.append(f"- Fused (M): missing, {why}.")
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines)


def segments_markdown(segments: list[dict]) -> str:
    if not segments:
        return ""
    rows = ["| time | sentence | M | T | A | V |", "|---|---|---|---|---|---|"]
    for s in segments:
        sc = s["scores"]
        rows.append(f"| {s['start']:.1f}-{s['end']:.1f} s | {s['text']} | " +
                    " | ".join(fmt_score(sc.get(h)) for h in HEADS) + " |")
    return "\n".join(rows)


def card_markdown(card: Mapping[str, Any]) -> str:
    """What the model is, what it was trained on, how well it did on held-out data, which heads to trust."""
    if not card:
        return "No model card."
    out = [f"**{card.get('name', 'model')}**"]
    enc = card.get("text_encoder") or {}
    if enc:
        out.append(f"Text encoder: {enc.get('name', '?')} (max {enc.get('max_length', '?')} tokens).")
    data = card.get("training_data") or []
    if data:
        out.append("\n**Trained on**")
        for d in data:
            if isinstance(d, Mapping):
                desc = ", ".join(f"{k}: {v}" for k, v in d.items() if k != "name" and not isinstance(v, (dict, list)))
                out.append(f"- {d.get('name', 'data')}" + (f" ({desc})" if desc else ""))
            else:
                out.append(f"- {d}")
    heads = card.get("heads") or {}
    if heads:
        out.append("\n**Heads**")
        for h in HEADS:
            if h in heads:
                info = heads[h] if isinstance(heads[h], Mapping) else {}
                mark = "calibrated" if info.get("calibrated") else "uncalibrated"
                note = f": {info['note']}" if info.get("note") else ""
                out.append(f"- {h} ({CHANNELS[h]}): {mark}{note}")
    if isinstance(card.get("fusion"), str):
        out.append(f"\n**Fusion**: {card['fusion']}.")
    metrics = card.get("metrics") or {}
    if metrics:
        out.append("\n**Held-out metrics**")
        out.append(_heldout(metrics, (card.get("export") or {}).get("quantization")))
    specs = card.get("feature_specs") or {}
    if specs:
        out.append("\n**Features**: " + "; ".join(
            f"{m}: {s.get('name', '?')} v{s.get('version', '?')}, dim {s.get('dim', '?')}"
            + (f", {s['fps']:g} fps" if s.get("fps") else "") for m, s in specs.items() if isinstance(s, Mapping)))
    exp = card.get("export") or {}
    if exp:
        parts = [f"from commit {str(exp['commit'])[:10]}" + (" (uncommitted changes)" if exp.get("dirty") else "")
                 if exp.get("commit") else "", f"on {str(exp['date'])[:10]}" if exp.get("date") else "",
                 f"quantization {exp['quantization']}" if exp.get("quantization") else "no quantization"]
        out.append("\nExported " + ", ".join(p for p in parts if p) + ".")
    if card.get("license"):
        out.append(f"License: {card['license']}.")
    return "\n".join(out)


def _heldout(metrics: Mapping[str, Any], quantization: Any) -> str:
    """The figures of the shipped file (ONNX Runtime, fp32 or int8) when the card has them, one table per
    group of the same metrics (e.g. M and T on MOSI, A on RAVDESS); else whatever the card holds."""
    shipped = metrics.get("onnx_int8" if quantization else "onnx_fp32")
    if not isinstance(shipped, Mapping):
        return _metrics_table(metrics)
    data = metrics.get("heldout_data") or {}
    where = f"test split of {data.get('file', 'the held-out data')} ({data.get('samples', '?')} samples), " \
            f"computed with ONNX Runtime on the shipped file" if data else "computed with ONNX Runtime"
    if all(isinstance(v, Mapping) for v in shipped.values()):
        groups: dict[tuple, dict] = {}
        for name, figures in shipped.items():
            groups.setdefault(tuple(figures), {})[name] = figures
        return where + "\n\n" + "\n\n".join(_metrics_table(g) for g in groups.values())
    return where + "\n\n" + _metrics_table({"test": shipped})


def _metrics_table(metrics: Mapping[str, Any]) -> str:
    """metrics may be flat {name: value} or nested {split or dataset: {name: value}}."""
    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    if all(not isinstance(v, Mapping) for v in metrics.values()):
        return "| metric | value |\n|---|---|\n" + "\n".join(f"| {k} | {fmt(v)} |" for k, v in metrics.items())
    names: list[str] = []
    for v in metrics.values():
        if isinstance(v, Mapping):
            names += [k for k in v if k not in names and not isinstance(v[k], Mapping)]
    rows = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for group, v in metrics.items():
        if isinstance(v, Mapping):
            rows.append(f"| {group} | " + " | ".join(fmt(v.get(n, "")) for n in names) + " |")
    return "\n".join(rows)


def result_table(res: Mapping[str, Any]) -> str:
    """The CLI's readable form of one result JSON (see demo.analyze)."""
    if "error" in res:
        return f"{res['input']}\n  error: {res['error']}"
    missing = res.get("missing_reasons", {})
    lines = [f"{res['input']}  ({res.get('duration', 0):.1f} s, model {res.get('model')})"]
    for h in HEADS:
        lines.append("  " + score_line(h, res["scores"].get(h), missing, res.get("uncalibrated", [])))
    lines.append(f"  disagreement: {res['disagreement']['summary']}")
    if res.get("transcript"):
        lines.append(f"  transcript: {res['transcript']}")
    for s in res.get("segments", []):
        sc = " ".join(f"{h} {fmt_score(s['scores'].get(h))}" for h in HEADS)
        lines.append(f"    {s['start']:5.1f}-{s['end']:5.1f} s  {sc}  {s['text']}")
    lines.append("  timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in res.get("timings", {}).items()))
    for n in res.get("notes", []):
        lines.append(f"  note: {n}")
    return "\n".join(lines)
