"""The Gradio app: record (webcam with sound, microphone), upload or type; one Analyze action; four gauges,
the disagreement between channels, the transcript, a per-sentence timeline, stage timings and the model card.

Everything heavy is loaded and warmed up once, before the server starts, so the first request is as fast as
the next. One analysis runs at a time (the extractors already use both cores); up to 16 wait in the queue.
"""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no calls home

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gradio as gr
from gradio_client import utils as client_utils

from demo.disagreement import RULE
from demo.formatting import card_markdown, segments_markdown, status_markdown, timings_markdown
from demo.gauges import gauge, timeline
from demo.limits import AUDIO_FORMATS, LIMITS, VIDEO_FORMATS, InputError, human_bytes
from demo.live import LiveConfig, LiveSession, Update, face_row
from demo.live import finish as live_finish
from demo.live import step as live_step
from demo.analyzer import DEFAULT_MODEL, EXAMPLES, HEADS, Analyzer, Result

log = logging.getLogger("demo")

TITLE = "Self-MM live: what do your words, voice and face say?"
INTRO = (f"Record a few seconds with your webcam (sound on) or microphone, upload a clip, or type a sentence, "
         f"then press **Analyze**. A Self-MM model scores the clip as a whole (**M**, fused) and each channel on "
         f"its own: the words (**T**), the voice (**A**) and the face (**V**), all on the same scale from -3 "
         f"(very negative) to +3 (very positive). Clips from {LIMITS.min_seconds:g} to {LIMITS.max_seconds:g} s, "
         f"files up to {human_bytes(LIMITS.max_bytes)}. Nothing leaves this machine.")
HOW_TO_READ = f"""**Bands.** Below -0.5 is negative (red), -0.5 to 0.5 neutral (grey), above 0.5 positive (green).

**Disagreement rule.** {RULE}

**Missing** means the clip does not hold that channel (no face in view, no audio track, silence, no speech
recognised): the gauge stays empty instead of showing 0, and the model is told the channel is absent.

**Uncalibrated** (greyed) marks a head that the model card says was not trained on real data of its channel.
Its number is shown for curiosity only; that channel is fed to the model as *absent* when computing M, so the
fused score is not swayed by inputs the model never learned from.

**Typed text**, when given with a recording, replaces the speech transcript. Alone, it is analysed as text only.
"""
CSS = """
.gauge-row .block { min-width: 190px; }
#disagreement { font-size: 1.1em; }
"""


# Uploads (and recordings) live in Gradio's temporary folder; they are deleted this long after they arrived,
# and all of them when the app stops. Until then the same clip can be analysed again (e.g. with typed text).
UPLOAD_TTL = int(os.environ.get("SELFMM_UPLOAD_TTL", "900"))


def temp_dir() -> Path:
    """Gradio's temporary folder, where every upload is written (as Gradio itself resolves it)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


def check_temp_dir(path: Path) -> None:
    """Refuse to start, with a message saying what to do, when uploads cannot be written to `path`."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path) as f:
            f.write(b"x")
    except OSError as e:
        raise SystemExit(f"Cannot write to the temporary folder {path} ({e.strerror or e}); uploads are kept "
                         "there. Set GRADIO_TEMP_DIR to a writable folder.") from None


# Two fixes of Gradio 6.31's file inputs, patched on the instances: a subclass of a Gradio component makes Gradio
# write a .pyi file next to this module at import (into the source tree, or fail where it is read-only).
def local_files_only(component: gr.components.Component) -> gr.components.Component:
    """The component, refusing a file given as a URL: Gradio would download it (from any public address, with
    no size limit) before the app sees it. People upload or record files."""
    move = component.async_move_resource_to_block_cache

    async def refuse_urls(url_or_file_path):
        if url_or_file_path is not None and client_utils.is_http_url_like(str(url_or_file_path)):
            raise gr.Error("Send the file itself: this app does not download URLs.")
        return await move(url_or_file_path)

    component.async_move_resource_to_block_cache = refuse_urls
    return component


def path_only(upload: gr.File) -> gr.File:
    """A gr.File(type="filepath") that hands over the upload's path and nothing else: Gradio's own preprocess
    also creates an empty temporary file per request, which nothing ever deletes."""

    def preprocess(payload):
        if payload is None:
            return None
        if upload.file_types and not client_utils.is_valid_file(payload.path, upload.file_types):
            raise gr.Error(f"Invalid file type. Please upload a file that is one of these formats: {upload.file_types}")
        return payload.path

    upload.preprocess = preprocess
    return upload


EXAMPLE_LABELS = {"positive": "positive sentence", "negative": "negative sentence",
                  "mixed": "two sentences: positive, then negative"}


def disagreement_markdown(level: str | None, summary: str) -> str:
    """The panel: how strongly the channels disagree, in words, with the rule that decided it."""
    head = f"Disagreement: {level}" if level else "Disagreement"
    return f"#### {head}\n{summary}\n\n<small>Rule: {RULE}</small>"


def pick_media(tab: str, video: str | None, audio: tuple | None, upload: Any) -> tuple[Any, str]:
    """The media of the active tab if it holds one, else the first input that does (webcam, file, microphone).
    Returns (media or None, a short description of its source)."""
    upload_path = upload if isinstance(upload, (str, os.PathLike)) or upload is None else getattr(upload, "name", None)
    candidates = {"webcam": (video, "the video"), "upload": (upload_path, "the uploaded file"),
                  "microphone": (audio, "the microphone recording")}
    if tab in candidates and candidates[tab][0] is not None:
        return candidates[tab]
    for media, what in candidates.values():
        if media is not None:
            return media, what
    return None, "the typed text"


def render(res: Result, source: str) -> list:
    """The values of the output components, in `outputs` order."""
    figs = []
    for h in HEADS:
        if res.scores.get(h) is None:
            figs.append(gauge(h, None, "missing", res.missing.get(h, "missing")))
        elif h in res.uncalibrated:
            figs.append(gauge(h, res.scores[h], "uncalibrated"))
        else:
            figs.append(gauge(h, res.scores[h]))
    tl = timeline(res.segments)
    transcript = res.transcript or "(no speech recognised)"
    if res.transcript_source == "given":
        transcript = res.transcript + "\n(typed)"
    return [status_markdown(res.scores, res.missing, res.uncalibrated, res.notes, res.duration, source), *figs,
            disagreement_markdown(res.disagreement.level, res.disagreement.summary), transcript,
            gr.Plot(value=tl, visible=tl is not None), segments_markdown(res.segments),
            timings_markdown(res.timings), res.to_json()]


def live_render(u: Update, session: LiveSession) -> list:
    """The live outputs (status, four gauges, disagreement, transcript, timeline) of one update."""
    figs = [gauge(h, None, "missing", u.missing.get(h, "missing")) if u.scores.get(h) is None else
            gauge(h, u.scores[h], "uncalibrated" if h in u.uncalibrated else "ok") for h in HEADS]
    cfg = session.config
    status = (f"**Live**: {u.t:.1f} s recorded; the gauges read the last {cfg.window:g} s, about every "
              f"{cfg.every:g} s (this update took {u.seconds:.2f} s"
              + (f"; {session.skipped} skipped to keep up" if session.skipped else "") + "). Stop the recording for "
              "the full analysis.")
    tl = timeline(list(session.history), title="Live: the last seconds, update by update", at_end=True)
    return [status, *figs, disagreement_markdown(u.disagreement.level, u.disagreement.summary),
            u.transcript or "(listening)", gr.Plot(value=tl, visible=tl is not None)]


def build(analyzer: Analyzer, upload_ttl: int = UPLOAD_TTL) -> gr.Blocks:
    """The Blocks layout around one loaded analyzer; uploads are deleted `upload_ttl` seconds after arrival."""
    examples = sorted(EXAMPLES.glob("*.mp4")) if EXAMPLES.is_dir() else []

    def analyze(tab: str, video, audio, upload, text: str, progress=gr.Progress()):
        media, source = pick_media(tab, video, audio, upload)
        # the file's own name, never its path on the server, in results and messages
        name = Path(media).name if isinstance(media, (str, os.PathLike)) else None
        try:
            if name is not None and not Path(media).is_file():
                after = f"{upload_ttl // 60} minutes" if upload_ttl >= 120 else f"{upload_ttl} seconds"
                raise InputError(f"{name} is no longer on the server (uploads are deleted {after} after they "
                                 "arrive): record or upload it again.")
            res = analyzer.analyze(media, text, progress=lambda f, d: progress(f, desc=d), name=name)
        except InputError as e:
            raise gr.Error(str(e), duration=None, title="Cannot analyse this input") from None
        except Exception as e:  # keep serving; say what broke
            log.exception("analysis failed")
            message = str(e).replace(str(media), name) if name else str(e)
            raise gr.Error(f"The analysis failed: {type(e).__name__}: {message}", duration=None) from None
        return render(res, source)

    live_outputs_n = 8  # status, four gauges, disagreement, transcript, timeline

    def live_start():
        return LiveSession()

    def live_chunk(chunk, session: LiveSession | None):
        """A microphone chunk: stored at once; it starts an update when one is due and shows the newest finished
        one (else the outputs stay as they are)."""
        if session is None:
            session = LiveSession()
        if chunk is not None:
            session.add_audio(*chunk)
        try:
            u = live_step(analyzer, session)
        except Exception:  # a failed update must not stop the stream: the next one may succeed
            log.exception("live update failed")
            u = None
        if u is None:
            return [gr.skip()] * live_outputs_n + [session]
        return [*live_render(u, session), session]

    def live_frame(frame, session: LiveSession | None):
        if session is not None and frame is not None:
            session.add_face(face_row(analyzer, frame))

    def live_stop(session: LiveSession | None, text: str):
        if session is None or session.seconds == 0:
            raise gr.Error("Nothing was recorded: allow the microphone, press record, speak, then stop.")
        try:
            res = live_finish(analyzer, session, text)
        except InputError as e:
            raise gr.Error(str(e), duration=None, title="Cannot analyse this recording") from None
        return render(res, "the live recording")

    # delete_cache: every `frequency` s, Gradio deletes the uploads older than `upload_ttl` s (examples stay)
    with gr.Blocks(title="Self-MM live", delete_cache=(max(1, min(60, upload_ttl // 4)), upload_ttl)) as app:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        tab = gr.State("live")
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                with gr.Tabs():
                    # Live first: Gradio 6.31 streams a microphone in a tab not shown at load in 0.1 s pieces
                    # and drops the rest (stream_every is lost), so the streaming inputs must be on the first tab.
                    with gr.Tab("Live", id="live") as t_live:
                        gr.Markdown("Press record: the gauges follow the last few seconds while you talk. Press "
                                    "record on the webcam too for the face. Stop for the full analysis.")
                        live_mic = gr.Audio(sources=["microphone"], type="numpy", streaming=True,
                                            label="Microphone (live)", elem_id="live-mic")
                        live_cam = gr.Image(sources=["webcam"], type="numpy", streaming=True,
                                            label="Webcam (live)", elem_id="live-cam", height=240)
                    with gr.Tab("Webcam", id="webcam") as t_cam:
                        # include_audio: Gradio drops the sound of webcam videos otherwise. Not mirrored, so the
                        # server need not flip the clip with ffmpeg. "upload" as a second source also keeps
                        # Gradio 6.31 from reading webcam_options after an example click, where it has become
                        # a dict ('dict' object has no attribute 'mirror').
                        video = local_files_only(gr.Video(
                            sources=["webcam", "upload"], include_audio=True,
                            label="Webcam with sound (or a video file)", webcam_options=gr.WebcamOptions(mirror=False),
                            height=300, elem_id="webcam"))
                    with gr.Tab("Microphone", id="microphone") as t_mic:
                        audio = local_files_only(gr.Audio(sources=["microphone"], type="numpy",
                                                          label="Microphone", elem_id="microphone"))
                    with gr.Tab("Upload", id="upload") as t_up:
                        upload = path_only(local_files_only(gr.File(
                            label=f"Video or audio file (up to {human_bytes(LIMITS.max_bytes)})",
                            file_types=list(VIDEO_FORMATS + AUDIO_FORMATS), type="filepath")))
                text = gr.Textbox(label="Text (optional)", lines=2, max_length=LIMITS.max_text_chars,
                                  placeholder="Type a sentence: alone it is analysed as text; with a recording "
                                              "it replaces the transcript.")
                button = gr.Button("Analyze", variant="primary", elem_id="analyze")
                if examples:
                    gr.Examples([[str(p)] for p in examples], inputs=[video], label="Examples (made offline: "
                                "espeak-ng speech over a photo's face)", examples_per_page=6,
                                example_labels=[EXAMPLE_LABELS.get(p.stem, p.stem) for p in examples])
            with gr.Column(scale=3, min_width=480):
                status = gr.Markdown("Record, upload or type, then press **Analyze**.", elem_id="status",
                                     label="Status")
                plots = []
                for pair in (("M", "T"), ("A", "V")):  # two rows of two: readable on a laptop screen
                    with gr.Row(elem_classes="gauge-row", equal_height=True):
                        plots += [gr.Plot(value=gauge(h, None, "missing", "waiting for input"), label=f"Gauge {h}",
                                          show_label=False, elem_id=f"gauge-{h}", min_width=200) for h in pair]
                dis = gr.Markdown(disagreement_markdown(None, "Analyse a clip to compare its channels."),
                                  elem_id="disagreement", label="Disagreement")
                transcript = gr.Textbox(label="Transcript", lines=2, interactive=False, elem_id="transcript")
                tl = gr.Plot(label="Per sentence", visible=False, elem_id="timeline")
                seg_table = gr.Markdown(label="Sentences")
                with gr.Accordion("Time per stage", open=False):
                    timings = gr.Markdown(elem_id="timings", label="Time per stage")
        with gr.Accordion("How to read the gauges", open=False):
            gr.Markdown(HOW_TO_READ)
        with gr.Accordion("Model card", open=False):
            gr.Markdown(card_markdown(analyzer.card) + f"\n\nLoaded from `{analyzer.model_dir}` in "
                        f"{analyzer.load_seconds:.1f} s, warmed up in {analyzer.warmup_seconds:.1f} s.")
        with gr.Accordion("Raw result (JSON)", open=False):
            raw = gr.JSON(elem_id="raw", label="Result")

        for t, name in ((t_cam, "webcam"), (t_mic, "microphone"), (t_up, "upload")):
            t.select(lambda n=name: n, None, tab, queue=False, api_visibility="private")
        # The faces of a clip are read as soon as it is recorded or uploaded, while the person reaches for Analyze.
        for source in (video, upload):
            source.change(lambda path: analyzer.read_faces_ahead(path) and None, source, None, queue=False,
                          show_progress="hidden", api_visibility="private")
        button.click(analyze, [tab, video, audio, upload, text],
                     [status, *plots, dis, transcript, tl, seg_table, timings, raw], api_name="analyze")
        live = gr.State(None)  # one LiveSession per visitor
        t_live.select(lambda: "live", None, tab, queue=False, api_visibility="private")
        live_mic.start_recording(live_start, None, live, queue=False, api_name="live_start")
        live_mic.stream(live_chunk, [live_mic, live], [status, *plots, dis, transcript, tl, live],
                        stream_every=LiveConfig().chunk, concurrency_limit=1, concurrency_id="live",
                        api_name="live_chunk", show_progress="hidden")
        live_cam.stream(live_frame, [live_cam, live], None, stream_every=LiveConfig().frame_every,
                        concurrency_limit=2, concurrency_id="live_frame", api_name="live_frame",
                        show_progress="hidden")
        # The same handlers as plain endpoints, for scripts (scripts/bench_live.py): gradio_client cannot drive
        # a stream event (its status "process_streaming" is unknown to it). Same queue, same per-visitor state.
        push = gr.Button(visible=False)
        push.click(live_chunk, [live_mic, live], [status, *plots, dis, transcript, tl, live], api_name="live_push",
                   concurrency_limit=1, concurrency_id="live", show_progress="hidden")
        push.click(live_frame, [live_cam, live], None, api_name="live_frame_push", concurrency_limit=2,
                   concurrency_id="live_frame", show_progress="hidden")
        live_mic.stop_recording(live_stop, [live, text],
                                [status, *plots, dis, transcript, tl, seg_table, timings, raw], api_name="live_stop")
    return app


def launch(model_dir: str | os.PathLike = DEFAULT_MODEL, host: str | None = None, port: int | None = None,
           warm_up: bool = True, asr_model: str | None = None, **kw) -> gr.Blocks:
    t0 = time.perf_counter()
    analyzer = Analyzer.load(model_dir, warm_up=warm_up, asr_model=asr_model)
    print(f"model {analyzer.model_name} from {model_dir}: loaded in {analyzer.load_seconds:.1f} s, "
          f"warmed up in {analyzer.warmup_seconds:.1f} s ({time.perf_counter() - t0:.1f} s)", flush=True)
    app = build(analyzer)
    app.queue(default_concurrency_limit=1, max_size=16)
    app.launch(server_name=host, server_port=port, max_file_size=LIMITS.max_bytes, css=CSS,
               theme=gr.themes.Soft(), footer_links=["api"], **kw)
    return app


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Self-MM live sentiment demo")
    p.add_argument("--model", default=os.environ.get("SELFMM_MODEL", str(DEFAULT_MODEL)),
                   help="model artifact folder (default assets/model, or $SELFMM_MODEL)")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME"))
    p.add_argument("--port", type=int, default=int(os.environ["GRADIO_SERVER_PORT"])
                   if os.environ.get("GRADIO_SERVER_PORT") else None)
    p.add_argument("--asr-model", default=os.environ.get("SELFMM_ASR_MODEL") or None,
                   help="a CTranslate2 Whisper model folder (default: the offline tiny.en, or $SELFMM_ASR_MODEL)")
    p.add_argument("--no-warm-up", action="store_true", help="skip the warm-up run (faster start, slower first request)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not Path(args.model, "model.onnx").is_file():
        sys.exit(f"No model at {args.model} (model.onnx missing). Pass --model DIR or set SELFMM_MODEL.")
    check_temp_dir(temp_dir())
    from demo.artifact import ArtifactError
    from demo.analyzer import SetupError

    try:
        launch(args.model, args.host, args.port, warm_up=not args.no_warm_up, asr_model=args.asr_model)
    except ArtifactError as e:
        sys.exit(f"Cannot use the model in {args.model}: {e}")
    except SetupError as e:
        sys.exit(f"Cannot load the speech recognition model: {e}")
