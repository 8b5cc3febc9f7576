"""demo.disagreement: when two channels disagree, and how strongly (fast: no models)."""
import pytest

from demo.disagreement import GAP, NEUTRAL, RULE, disagreement, polarity, strength


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
