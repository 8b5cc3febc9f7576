"""demo.formatting: score lines, tables and the model card as the app shows them."""
from demo.formatting import card_markdown, result_table, score_line, segments_markdown, timings_markdown


def test_score_lines():
    assert score_line("T", 1.234, {}, []) == "T  +1.23  positive"
    assert score_line("V", None, {"V": "no face found"}, []) == "V  missing (no face found)"
    assert score_line("A", 0.1, {}, ["A"]).endswith("neutral  (uncalibrated)")


def test_timings_and_segments_tables():
    t = timings_markdown({"asr": 0.5, "vision": 0.4, "total": 0.6})
    assert "speech recognition | 0.50 s" in t and "**0.60 s**" in t and "before Analyze" not in t
    ahead = timings_markdown({"asr": 0.5, "vision": 0.4, "vision_wait": 0.0, "total": 0.6})
    assert "face features (on upload, before Analyze) | 0.40 s" in ahead and "wait for the face features" in ahead
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
