"""End to end: `python app.py` in a subprocess on a free port, driven through gradio_client with generated
clips (espeak-ng speech over a real face photo). Also the headless CLI, and bad inputs: each gets a clear
message and the app keeps serving. Slow (real Whisper, FaceMesh, librosa, ONNX): about a minute."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import media
from harness.app_model import REPO, analyze, model_dir, running_app

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not media.have_espeak(), reason="espeak-ng is needed to make speech")]


@pytest.fixture(scope="module")
def model():
    return model_dir()


@pytest.fixture(scope="module")
def client(model, tmp_path_factory):
    from gradio_client import Client

    log = tmp_path_factory.mktemp("app") / "app.log"
    with running_app(model, log_path=log) as url:
        yield Client(url, verbose=False)


@pytest.fixture(scope="module")
def card(model):
    return json.loads((Path(model) / "card.json").read_text())


def gauge(out: dict, head: str) -> dict:
    """The plotly Indicator of one gauge output."""
    assert out[head]["type"] == "plotly"
    return json.loads(out[head]["plot"])["data"][0]


def error_of(client, **inputs) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as e:
        analyze(client, **inputs)
    return str(e.value)


def still_serving(client):
    out = analyze(client, text="Still here and happy.")
    assert out["raw"]["scores"]["T"] is not None


# -- the happy path -------------------------------------------------------------------------------------------
def test_webcam_clip_gives_four_gauges_transcript_and_timings(client, card):
    clip = media.clip("face+speech", 4.0, ".webm")  # what a browser records: VP8 + Opus in webm
    out = analyze(client, video=clip)
    raw = out["raw"]
    assert "love" in out["transcript"].lower() and "movie" in out["transcript"].lower()
    for h in "MTAV":
        g = gauge(out, h)
        assert g["type"] == "indicator" and g["gauge"]["axis"]["range"] == [-3, 3]
        assert [s["range"] for s in g["gauge"]["steps"]] == [[-3, -0.5], [-0.5, 0.5], [0.5, 3]]
    calibrated = {h: card["heads"][h]["calibrated"] for h in "MTAV"}
    for h in "TAV":  # every channel is in this clip: each gauge shows its number
        g = gauge(out, h)
        assert g["mode"] == "gauge+number" and g["value"] == pytest.approx(raw["scores"][h], abs=0.006)  # shown to 2 decimals
        assert ("uncalibrated" in g["title"]["text"]) == (not calibrated[h])
    assert raw["missing"] == [] or raw["missing"] == ["M"]
    assert sorted(raw["uncalibrated"]) == sorted(h for h, ok in calibrated.items() if not ok)
    assert out["disagreement"].startswith("#### Disagreement") and raw["disagreement"]["rule"] in out["disagreement"]
    assert {"asr", "audio", "vision", "predict", "total"} <= set(raw["timings"])
    assert "speech recognition" in out["timings"]
    assert raw["duration"] == pytest.approx(4.0, abs=0.2)


def test_typed_text_alone(client):
    out = analyze(client, text="What a wonderful, happy day.")
    raw = out["raw"]
    assert raw["scores"]["T"] is not None and raw["scores"]["M"] is not None
    assert raw["scores"]["A"] is None and raw["scores"]["V"] is None
    assert gauge(out, "A")["mode"] == "gauge" and "missing" in gauge(out, "A")["title"]["text"]


def test_microphone_recording(client):
    wav = media.speech_wav()  # gr.Audio turns it into (rate, int16 samples), as from a browser microphone
    raw = analyze(client, audio=wav)["raw"]
    assert "love" in raw["transcript"].lower()
    assert raw["scores"]["A"] is not None and raw["missing"] == ["V"]
    assert "no video" in raw["missing_reasons"]["V"]


def test_uploaded_two_sentence_clip_has_a_timeline(client):
    example = REPO / "assets" / "examples" / "mixed.mp4"
    if not example.exists():
        pytest.skip("run scripts/make_examples.py")
    out = analyze(client, upload=example)
    segments = out["raw"]["segments"]
    assert len(segments) >= 2 and all(set(s["scores"]) == set("MTAV") for s in segments)
    plot = out["timeline"]  # a component update: {"visible": True, "value": {"type": "plotly", "plot": ...}}
    assert plot.get("visible", True)
    timeline = json.loads(plot.get("value", plot)["plot"])
    assert {t["name"] for t in timeline["data"]} >= {"M: fused", "T: text"}
    assert "brilliant" in segments[0]["text"].lower()


# -- inputs that lack something: analysed, with the reason shown -----------------------------------------------
def test_video_without_audio(client):
    out = analyze(client, video=media.clip("face", 3.0, ".mp4"))
    raw = out["raw"]
    assert {"T", "A"} <= set(raw["missing"]) and "no audio" in raw["missing_reasons"]["A"]
    assert "no audio track" in out["status"]
    assert gauge(out, "A")["mode"] == "gauge"  # empty gauge, no number
    still_serving(client)


def test_audio_only_file(client):
    wav = media.clip("speech", 3.0, ".wav")
    out = analyze(client, upload=wav)
    assert out["raw"]["missing"] == ["V"] and "Audio only" in out["status"]


def test_no_face(client):
    out = analyze(client, video=media.clip("noface+speech", 3.0, ".mp4"))
    raw = out["raw"]
    assert "V" in raw["missing"] and "no face" in raw["missing_reasons"]["V"]
    assert "The face (V): missing, no face found" in out["status"]


def test_silence_with_a_face(client):
    out = analyze(client, video=media.clip("face+silence", 2.0, ".mp4"))
    raw = out["raw"]
    assert {"T", "A"} <= set(raw["missing"]) and "silence" in raw["missing_reasons"]["A"]


# -- inputs that cannot be analysed: a clear message, and the app goes on --------------------------------------
def test_not_a_media_file(client, tmp_path):
    fake = tmp_path / "holiday.mp4"
    fake.write_text("this is not a video\n" * 50)
    msg = error_of(client, upload=fake)
    assert "not a readable audio or video file" in msg
    still_serving(client)


def test_empty_file(client, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert "empty" in error_of(client, upload=empty)
    still_serving(client)


def test_wrong_format_is_refused_by_extension(client, tmp_path):
    doc = tmp_path / "notes.txt"
    doc.write_text("hello")
    assert "Invalid file type" in error_of(client, upload=doc)


def test_only_silence(client):
    msg = error_of(client, upload=media.clip("silence", 2.0, ".wav"))
    assert msg.startswith("Nothing to analyse") and "silence" in msg
    still_serving(client)


def test_too_long(client):
    long_clip = media.clip("face", 61.0, ".mp4", fps=2.0)  # 61 s, few frames: quick to make
    assert "too long (61.0 s); the limit is 60 s" in error_of(client, video=long_clip)
    still_serving(client)


def test_too_short(client):
    assert "too short" in error_of(client, upload=media.clip("speech", 0.3, ".wav"))


def test_nothing_given(client):
    assert "Nothing to analyse" in error_of(client)


# -- the headless CLI -----------------------------------------------------------------------------------------
def test_cli_json_one_line_per_input(model, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    good = media.clip("face+speech", 3.0, ".mp4")
    run = subprocess.run([sys.executable, "-m", "demo.analyze", str(good), str(bad), "--model", str(model), "--json",
                          "--no-warm-up"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr[-2000:]  # one input failed
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [x["input"] for x in lines] == [str(good), str(bad)]
    ok, err = lines
    assert set(ok) >= {"input", "scores", "missing", "uncalibrated", "disagreement", "transcript", "segments",
                       "timings", "model"}
    assert set(ok["scores"]) == set("MTAV") and "love" in ok["transcript"].lower()
    assert "not a readable audio or video file" in err["error"]


def test_cli_text_table(model):
    run = subprocess.run([sys.executable, "-m", "demo.analyze", "--text", "I hate waiting.", "--model", str(model),
                          "--no-warm-up"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "<text>" in run.stdout and "A  missing" in run.stdout and "disagreement:" in run.stdout


def test_app_refuses_an_artifact_of_another_format(model, tmp_path):
    """The app checks the artifact before serving, and stops with a message that says what is wrong."""
    broken = tmp_path / "model"
    shutil.copytree(model, broken)
    card = json.loads((broken / "card.json").read_text())
    card["format_version"] = 99
    (broken / "card.json").write_text(json.dumps(card))
    run = subprocess.run([sys.executable, "app.py", "--model", str(broken)], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode != 0 and "format version 99" in run.stderr


def test_no_torch_at_run_time(model):
    """Loading every model of the app and analysing a clip imports neither torch nor transformers."""
    code = ("import sys; from demo.analyzer import Analyzer; a = Analyzer.load(sys.argv[1]); "
            "a.analyze(sys.argv[2]); bad = [m for m in ('torch', 'transformers') if m in sys.modules]; "
            "print(bad); sys.exit(bool(bad))")
    clip = media.clip("face+speech", 3.0, ".mp4")
    run = subprocess.run([sys.executable, "-c", code, str(model), str(clip)], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
