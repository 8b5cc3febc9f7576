"""demo.gauges: a gauge's state (calibrated, uncalibrated, missing) and the per-sentence timeline."""
from demo.gauges import gauge, timeline


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
