"""The app's pure logic: the disagreement rule, input limits, batching, formatting and the gauges' states.
Fast: no models, no server."""
import numpy as np
import pytest

from demo.disagreement import GAP, NEUTRAL, RULE, disagreement, polarity, strength
from demo.formatting import card_markdown, result_table, score_line, segments_markdown, timings_markdown
from demo.gauges import gauge, timeline
from demo.limits import Limits, InputError, check_duration, check_file, check_text, human_bytes, media_kind
from demo.analyzer import Features, frame_slice, make_batch


# -- disagreement ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("score,expected", [(0.0, "neutral"), (0.49, "neutral"), (-0.49, "neutral"),
                                            (0.5, "positive"), (-0.5, "negative"), (3.0, "positive")])
def test_polarity_bands(score, expected):
    assert polarity(score) == expected


def test_words_positive_face_negative_is_a_strong_disagreement():
    d = disagreement({"M": 0.2, "T": 2.0, "A": 0.8, "V": -1.5})
    strongest = d.pairs[0]
    assert (strongest.a, strongest.b) == ("T", "V")
    assert strongest.gap == pytest.approx(3.5) and strongest.strength == "strong"
    assert d.summary.startswith("The words are positive, the face is negative (strong disagreement, 3.5 apart)")
    assert d.level == "strong"
    # the voice (positive, 0.8) disagrees with the face too (gap 2.3), but not with the words
    assert {(p.a, p.b) for p in d.pairs} == {("T", "V"), ("A", "V")}


def test_same_polarity_never_disagrees_however_far_apart():
    d = disagreement({"T": 0.6, "A": 3.0, "V": 1.5})
    assert d.pairs == [] and d.level == "none"
    assert d.summary.startswith("The channels agree")


def test_small_gap_across_a_band_edge_is_not_a_disagreement():
    # 0.55 is positive and 0.3 neutral, but only 0.25 apart: below GAP
    assert disagreement({"T": 0.55, "A": 0.3, "V": None}).pairs == []
    d = disagreement({"T": NEUTRAL + GAP, "A": NEUTRAL - 0.01, "V": None})
    assert len(d.pairs) == 1 and d.pairs[0].strength == "mild"


@pytest.mark.parametrize("gap,word", [(1.0, "mild"), (1.99, "mild"), (2.0, "clear"), (2.99, "clear"), (3.0, "strong")])
def test_strength_words(gap, word):
    assert strength(gap) == word


def test_missing_and_uncalibrated_channels_are_not_compared():
    d = disagreement({"T": 2.0, "A": None, "V": -2.0}, {"V": "uncalibrated"})
    assert d.compared == ["T"] and d.pairs == []
    assert "Nothing to compare" in d.summary
    assert "Not compared: the voice (missing), the face (uncalibrated)." in d.summary


def test_rule_text_states_the_numbers():
    assert f"{NEUTRAL}" in RULE and f"{GAP:g} apart" in RULE
    assert disagreement({"T": 1, "A": -1, "V": 0}).to_dict()["rule"] == RULE


# -- limits ---------------------------------------------------------------------------------------------------
def test_file_checks(tmp_path):
    with pytest.raises(InputError, match="not found"):
        check_file(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(InputError, match="empty"):
        check_file(empty)
    big = tmp_path / "big.mp4"
    with open(big, "wb") as f:
        f.truncate(2048)  # sparse: the size is read from the file system, nothing is read
    with pytest.raises(InputError, match=r"too large \(2\.0 KB\); the limit is 1\.0 KB"):
        check_file(big, Limits(max_bytes=1024))
    ok = tmp_path / "voice.WAV"
    ok.write_bytes(b"x")
    assert check_file(ok) == "audio"
    doc = tmp_path / "notes.txt"
    doc.write_bytes(b"x")
    with pytest.raises(InputError, match=r"Unsupported format \(\.txt\)"):
        check_file(doc)


def test_media_kind():
    assert media_kind("a.webm") == "video" and media_kind("a.mp3") == "audio"
    with pytest.raises(InputError, match="without extension"):
        media_kind("README")


@pytest.mark.parametrize("seconds,ok", [(0.49, False), (0.5, True), (60.0, True), (60.1, False)])
def test_duration_limits(seconds, ok):
    if ok:
        check_duration(seconds)
    else:
        with pytest.raises(InputError, match="too short" if seconds < 1 else "too long"):
            check_duration(seconds)


def test_text_limit():
    assert check_text("  hi  ") == "hi" and check_text(None) == ""
    with pytest.raises(InputError, match="too long"):
        check_text("x" * 1001)


def test_human_bytes():
    assert human_bytes(10) == "10 bytes" and human_bytes(50 * 1024 * 1024) == "50.0 MB"


# -- batching -------------------------------------------------------------------------------------------------
def test_make_batch_pads_and_marks_absence():
    ids = np.array([101, 7, 102, 0], np.int64)
    mask = np.array([1, 1, 1, 0], np.int64)
    units = [Features(ids, mask, np.ones((3, 2), np.float32), None),
             Features(None, None, None, np.ones((5, 4), np.float32))]
    b = make_batch(units, text_len=4, audio_dim=2, vision_dim=4)
    assert b["text_ids"].shape == (2, 4) and b["text_mask"][1].sum() == 0
    assert b["audio"].shape == (2, 3, 2) and b["audio_lengths"].tolist() == [3, 0]
    assert b["vision"].shape == (2, 5, 4) and b["vision_lengths"].tolist() == [0, 5]
    assert b["audio"][1].sum() == 0 and b["vision"][0].sum() == 0


def test_make_batch_all_absent_keeps_one_frame():
    b = make_batch([Features(None, None, None, None)], 4, 2, 3)
    assert b["audio"].shape == (1, 1, 2) and b["audio_lengths"][0] == 0


def test_without_drops_modalities():
    u = Features(np.ones(3, np.int64), np.ones(3, np.int64), np.ones((2, 2)), np.ones((2, 2)))
    assert u.present() == {"text": True, "audio": True, "vision": True}
    assert u.without({"vision"}).present() == {"text": True, "audio": True, "vision": False}


def test_frame_slice():
    assert frame_slice(100, 20, 1.0, 2.0) == slice(20, 40)
    assert frame_slice(30, 20, 1.0, 5.0) == slice(20, 30)  # Whisper's end may pass the clip's
    s = frame_slice(10, 10, 3.0, 4.0)
    assert s.start == s.stop  # nothing there


# -- formatting -----------------------------------------------------------------------------------------------
def test_score_lines():
    assert score_line("T", 1.234, {}, []) == "T  +1.23  positive"
    assert score_line("V", None, {"V": "no face found"}, []) == "V  missing (no face found)"
    assert score_line("A", 0.1, {}, ["A"]).endswith("neutral  (uncalibrated)")


def test_timings_and_segments_tables():
    t = timings_markdown({"asr": 0.5, "vision": 0.4, "total": 0.6})
    assert "speech recognition | 0.50 s" in t and "**0.60 s**" in t
    seg = segments_markdown([{"start": 0, "end": 2.5, "text": "Hi.", "scores": {"M": 1, "T": None, "A": 0, "V": 0}}])
    assert "| 0.0-2.5 s | Hi. | +1.00 | missing |" in seg
    assert segments_markdown([]) == ""


def test_card_markdown_shows_training_data_metrics_and_heads():
    card = {"name": "demo", "text_encoder": {"name": "all-MiniLM-L6-v2", "max_length": 50},
            "training_data": [{"name": "CMU-MOSI", "samples": 1281}, "RAVDESS audio"],
            "heads": {"M": {"calibrated": True}, "V": {"calibrated": False, "note": "no real face data"}},
            "metrics": {"mosi_test": {"MAE": 0.81, "Corr": 0.7}, "ravdess_test": {"MAE": 1.2}},
            "license": "CC BY-NC-SA 4.0", "export": {"commit": "0123456789abcdef", "dirty": False,
                                                     "date": "2026-01-02T03:04:05", "quantization": None}}
    md = card_markdown(card)
    for text in ("**demo**", "CMU-MOSI (samples: 1281)", "RAVDESS audio", "V (the face): uncalibrated: no real face data",
                 "| mosi_test | 0.81 | 0.7 |", "CC BY-NC-SA",
                 "Exported from commit 0123456789, on 2026-01-02, no quantization."):
        assert text in md, text
    assert card_markdown({}) == "No model card."


def test_result_table():
    res = {"input": "a.mp4", "scores": {"M": 0.5, "T": 1.0, "A": None, "V": 0.1}, "missing_reasons": {"A": "silence"},
           "uncalibrated": ["V"], "disagreement": {"summary": "Nothing to compare."}, "transcript": "hi",
           "segments": [], "timings": {"total": 1.0}, "model": "m", "duration": 3.0, "notes": []}
    table = result_table(res)
    assert "A  missing (silence)" in table and "V  +0.10  neutral  (uncalibrated)" in table
    assert result_table({"input": "x", "error": "bad"}) == "x\n  error: bad"


# -- gauges ---------------------------------------------------------------------------------------------------
def test_gauge_states():
    ok = gauge("T", 1.5).data[0]
    assert ok.mode == "gauge+number" and ok.value == 1.5 and tuple(ok.gauge.axis.range) == (-3, 3)
    assert [tuple(s.range) for s in ok.gauge.steps] == [(-3, -0.5), (-0.5, 0.5), (0.5, 3)]
    missing = gauge("V", None, "missing", "no face found")
    assert missing.data[0].mode == "gauge" and "missing" in missing.data[0].title.text
    assert "no face found" in missing.data[0].title.text
    grey = gauge("V", 0.3, "uncalibrated").data[0]
    assert "uncalibrated" in grey.title.text and grey.gauge.threshold.line.color == "#9a9a9a"
    assert gauge("M", -1.23456).data[0].value == -1.23  # shown with two decimals


def test_timeline_needs_two_sentences():
    seg = {"start": 0.0, "end": 1.0, "text": "a", "scores": {"M": 1.0, "T": 1.0, "A": None, "V": 0.0}}
    assert timeline([seg]) is None
    fig = timeline([seg, {**seg, "start": 1.0, "end": 2.0}])
    assert [t.name for t in fig.data] == ["M: fused", "T: text", "V: vision"]  # A missing everywhere


# -- choosing the input, timing the face frames ---------------------------------------------------------------
def test_pick_media_prefers_the_active_tab():
    from demo.ui import pick_media

    mic = (44100, np.zeros(10, np.int16))
    assert pick_media("microphone", "cam.webm", mic, None) == (mic, "the microphone recording")
    assert pick_media("webcam", "cam.webm", mic, "up.mp4") == ("cam.webm", "the video")
    assert pick_media("webcam", None, None, "up.mp4") == ("up.mp4", "the uploaded file")
    assert pick_media("upload", None, None, None) == (None, "the typed text")


def test_vision_times_with_and_without_skipped_frames():
    from types import SimpleNamespace

    from selfmm.features.pipeline import FeaturePipeline

    features = SimpleNamespace(face=SimpleNamespace(spec=SimpleNamespace(fps=10.0)))  # a pipeline's face extractor
    vision_times = FeaturePipeline.vision_times
    full = SimpleNamespace(vision=np.zeros((4, 2)), stats={"vision": {"frames": 4, "frames_with_face": 4}})
    assert vision_times(features, full).tolist() == [0.0, 0.1, 0.2, 0.3]
    half = SimpleNamespace(vision=np.zeros((2, 2)), stats={"vision": {"frames": 4, "frames_with_face": 2}})
    assert vision_times(features, half).tolist() == [0.0, 0.2]  # spread evenly when the kept frames are unknown
    exact = SimpleNamespace(vision=np.zeros((2, 2)), stats={"vision": {"frames": 4, "times": [0.1, 0.3]}})
    assert vision_times(features, exact).tolist() == [0.1, 0.3]  # the times the extractors report
    assert vision_times(features, SimpleNamespace(vision=None, stats={})) is None


def test_model_card_shows_the_shipped_files_held_out_figures_grouped_by_metric_family():
    from demo.formatting import _heldout

    metrics = {"checkpoint": {"MAE": 9.0},
               "heldout_data": {"file": "corpus.pkl", "samples": 925},
               "onnx_fp32": {"M_mosi": {"Non0_acc_2": 0.835, "MAE": 0.763}, "T_mosi": {"Non0_acc_2": 0.834, "MAE": 0.757},
                             "A_ravdess": {"sign_acc_non_neutral": 0.701}},
               "onnx_int8": {"M_mosi": {"Non0_acc_2": 0.5, "MAE": 2.0}}}
    text = _heldout(metrics, None)
    assert "corpus.pkl (925 samples)" in text and "| M_mosi | 0.835 | 0.763 |" in text
    assert "| A_ravdess | 0.701 |" in text and "9.0" not in text and "| M_mosi | 0.5 |" not in text
    assert "| M_mosi | 0.5 | 2 |" in _heldout(metrics, {"method": "int8"})
