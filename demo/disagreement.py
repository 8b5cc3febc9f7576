"""When do the channels disagree? One small rule, pure, shown verbatim in the UI.

Scores live on Self-MM's regression scale [-3, 3]. A score is *neutral* inside the band |s| < NEUTRAL, else
positive or negative. Two channels disagree when their polarities differ (positive vs negative, or one of them
neutral) and their scores are at least GAP apart; the size of the gap is the strength. Only channels that are
present and calibrated are compared: a missing or uncalibrated head says nothing about the clip.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Mapping

NEUTRAL = 0.5  # |s| below this is neutral
GAP = 1.0  # two polarities that differ by less than this are not called a disagreement
SCALE = (-3.0, 3.0)

# What each head reads, in the words the UI uses ("the words are positive, the face is negative").
CHANNELS = {"M": "overall", "T": "the words", "A": "the voice", "V": "the face"}
UNIMODAL = ("T", "A", "V")

RULE = (f"Each score is on [-3, 3]: negative below -{NEUTRAL}, neutral from -{NEUTRAL} to {NEUTRAL}, positive "
        f"above {NEUTRAL}. Two of words (T), voice (A) and face (V) disagree when their polarities differ and "
        f"their scores are at least {GAP:g} apart; the gap is the strength (under 2 mild, 2 to 3 clear, 3 or more "
        f"strong). Missing and uncalibrated channels are not compared.")


def polarity(score: float) -> str:
    """'positive', 'neutral' or 'negative' by the neutral band."""
    if score >= NEUTRAL:
        return "positive"
    if score <= -NEUTRAL:
        return "negative"
    return "neutral"


def strength(gap: float) -> str:
    """A word for how far apart two disagreeing scores are."""
    if gap >= 3.0:
        return "strong"
    if gap >= 2.0:
        return "clear"
    return "mild"


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    polarity_a: str
    polarity_b: str
    gap: float
    strength: str

    def sentence(self) -> str:
        return (f"{_says(self.a, self.polarity_a)}, {_says(self.b, self.polarity_b)} "
                f"({self.strength} disagreement, {self.gap:.1f} apart)")


@dataclass(frozen=True)
class Disagreement:
    pairs: list[Pair]  # strongest first
    compared: list[str]  # heads that took part
    summary: str  # one plain sentence for people

    @property
    def level(self) -> str:
        """'none' or the strength of the strongest disagreeing pair."""
        return self.pairs[0].strength if self.pairs else "none"

    def to_dict(self) -> dict:
        return {"level": self.level, "summary": self.summary, "compared": list(self.compared),
                "pairs": [asdict(p) for p in self.pairs], "rule": RULE}


def _says(head: str, p: str) -> str:
    """'the words are positive', 'the face is negative'."""
    return f"{CHANNELS[head]} {'are' if head == 'T' else 'is'} {p}"


def disagreement(scores: Mapping[str, float | None], excluded: Mapping[str, str] | None = None) -> Disagreement:
    """Compare the unimodal heads of `scores` (None = missing); `excluded` maps a head to why it is left out."""
    excluded = dict(excluded or {})
    for h in UNIMODAL:
        if scores.get(h) is None:
            excluded.setdefault(h, "missing")
    compared = [h for h in UNIMODAL if h not in excluded]
    pairs = []
    for a, b in combinations(compared, 2):
        sa, sb = float(scores[a]), float(scores[b])
        pa, pb = polarity(sa), polarity(sb)
        gap = abs(sa - sb)
        if pa != pb and gap >= GAP:
            pairs.append(Pair(a, b, pa, pb, round(gap, 3), strength(gap)))
    pairs.sort(key=lambda p: -p.gap)
    return Disagreement(pairs, compared, _summary(scores, pairs, compared, excluded))


def _summary(scores: Mapping[str, float | None], pairs: list[Pair], compared: list[str],
             excluded: Mapping[str, str]) -> str:
    left_out = [f"{CHANNELS[h]} ({excluded[h]})" for h in UNIMODAL if h in excluded]
    tail = f" Not compared: {', '.join(left_out)}." if left_out else ""
    if len(compared) < 2:
        return "Nothing to compare: fewer than two channels are usable." + tail
    if not pairs:
        return "The channels agree: " + ", ".join(_says(h, polarity(float(scores[h]))) for h in compared) + "." + tail
    text = pairs[0].sentence()
    text = text[0].upper() + text[1:]
    if len(pairs) > 1:
        text += "; also " + "; ".join(p.sentence() for p in pairs[1:])
    return text + "." + tail
