"""The default model's recipe (selfmm/recipe): corpus labels and speech caches, selection scores, the combination
probe."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from selfmm import corpora
from selfmm.features.spec import Extracted, FeatureSpec
from selfmm.metrics import valence_sign_accuracy
from selfmm.recipe.corpus import face_samples, stratified
from selfmm.recipe.scores import branch_scores, combination_scores, emotion_of, per_source, text_with_audio_gate
from selfmm.recipe.splits import AUDIO_GATE


def test_speech_corpora_read_emotion_speaker_and_valence_from_file_names(tmp_path):
    (tmp_path / "Actor_07").mkdir()
    for name in ("03-01-03-02-01-01-07.flac", "03-01-05-01-02-02-07.flac"):
        (tmp_path / "Actor_07" / name).touch()
    for name in ("03a01Fa.flac", "16b10Lb.flac"):
        (tmp_path / name).touch()
    happy, angry = corpora.ravdess(tmp_path)
    assert (happy.emotion, happy.speaker, happy.valence, happy.text) == ("happy", "07", 2.5,
                                                                         "kids are talking by the door")
    assert (angry.emotion, angry.valence) == ("angry", round(-2.5 * 2 / 3, 3))  # normal intensity: 2/3
    f, boredom = corpora.emodb(tmp_path)
    assert (f.emotion, f.speaker, f.valence, f.text) == ("happy", "03", 2.5, "")
    assert (boredom.emotion, boredom.speaker, boredom.valence) == ("boredom", "16", -1.0)
    assert emotion_of("ravdess$_$03-01-05-01-02-02-07") == "angry" and emotion_of("emodb$_$16b10Lb") == "boredom"
    assert emotion_of("fer$_$12_sad") == "sad" and emotion_of("mosi$_$abc_1") == ""


def test_valence_sign_accuracy_is_balanced_and_ignores_neutral_and_surprise():
    emotions = np.array(["happy"] + ["angry"] * 8 + ["neutral", "surprise"])
    pred = np.array([-1.0] + [-1.0] * 8 + [5.0, -5.0])  # always negative: majority-class accuracy 8/9
    assert valence_sign_accuracy(pred, emotions) == 0.5
    assert valence_sign_accuracy(np.array([1.0] + [-1.0] * 8 + [0, 0]), emotions) == 1.0


def test_still_faces_become_sequences_of_one_embedding():
    faces = corpora.Faces(np.zeros((30, 48, 48), np.uint8), np.array(["happy", "sad", "fear"] * 10),
                          np.array(["Training"] * 30))
    rows = face_samples(faces, lambda x: np.arange(len(x) * 4, dtype=np.float32).reshape(-1, 4), "fer")
    lengths = [len(r.vision) for r in rows]
    assert min(lengths) >= 1 and max(lengths) <= 50 and len(set(lengths)) > 5
    assert all(np.all(r.vision == r.vision[0]) for r in rows) and rows[1].given == {"V": -2.0}
    picked = stratified(np.array(["a"] * 90 + ["b"] * 10), 20, seed=0)
    assert len(picked) == 20 and np.sum(picked >= 90) == 2


def test_per_source_selection_weighs_each_source_equally():
    ids = np.array(["mosi$_$a"] + [f"fer$_${i}_happy" for i in range(9)])
    labels = np.zeros(10)
    m = np.r_[1.0, np.zeros(9)]  # MOSI's one row off by 1, nine faces exact
    assert per_source({"M": m}, labels, ids) == pytest.approx(0.5)  # pooled it would be 0.1


def test_branch_scores_read_each_head_on_the_sources_that_inform_it():
    ids = np.array(["mosi$_$a", "ravdess$_$03-01-03-02-01-01-17", "emodb$_$12a01Fb", "emodb$_$13a01Wa",
                    "fer$_$1_happy"])
    labels = np.zeros(5)
    out = {"M": np.full(5, 9.0), "T": np.array([0.5, 9, 9, 9, 9]), "A": np.array([9, 1.0, 2.0, 4.0, 9]),
           "V": np.array([9, 9, 9, 9, 0.25])}
    # the audio branch: RAVDESS (1.0) and EmoDB (mean 3.0) weigh the same; M and the other heads' rows never count
    assert branch_scores(out, labels, ids) == pytest.approx({"text": 0.5, "audio": 2.0, "vision": 0.25})
    assert branch_scores(out, labels[:1], ids[:1]) == pytest.approx({"text": 0.5})  # no voice, no face: left out


def test_combination_probe_measures_m_against_its_channels():
    n = 8
    split = SimpleNamespace(
        ids=np.array(["mosi$_$a"] * n + ["ravdess$_$03-01-03-02-01-01-07"] * n + [f"fer$_${i}_sad" for i in range(n)]),
        text_ids=np.ones((3 * n, 4), np.int64), text_mask=np.ones((3 * n, 4), np.int64),
        audio=np.ones((3 * n, 3, 2), np.float32), audio_lengths=np.full(3 * n, 3),
        vision=np.ones((3 * n, 2, 5), np.float32), vision_lengths=np.full(3 * n, 2))

    def predict(feeds, between: bool):
        b = len(feeds["text_ids"])
        t, a, v = np.full(b, 1.0), np.full(b, -2.0), np.full(b, 0.5)
        return {"M": np.full(b, -0.5 if between else -4.0), "T": t, "A": a, "V": v}

    inside = combination_scores(lambda f: predict(f, True), split, n=100)
    assert inside["T+A+V"]["between_channels"] == 1.0 and inside["T+A"]["on_scale"] == 1.0
    assert inside["T+A"]["M_sign_follows_A"] == 1.0 and inside["T+A"]["sign_conflicts"] == 100
    outside = combination_scores(lambda f: predict(f, False), split, n=100)
    assert outside["T+V"]["between_channels"] == 0.0 and outside["T+V"]["on_scale"] == 0.0
    no_faces = SimpleNamespace(**{k: v[:2 * n] for k, v in vars(split).items()})  # a corpus built with --faces none
    voice_and_text = combination_scores(lambda f: predict(f, True), no_faces, n=100)
    assert set(voice_and_text) == {"T+A"} and voice_and_text["T+A"]["between_channels"] == 1.0


def split(audio_sign_acc: float):
    """Two MOSI rows with M off by 0.5, and 20 non-neutral RAVDESS rows whose A has the given sign accuracy."""
    ids = np.array(["mosi$_$a", "mosi$_$b"] + [f"ravdess$_${i}" for i in range(20)])
    labels = np.array([1.0, -2.0] + [2.0, -2.0] * 10)
    a = labels.copy()
    a[2:2 + round((1 - audio_sign_acc) * 20)] *= -1  # wrong sign on the first clips
    m = labels + 0.5
    return {"M": m, "T": m, "A": a, "V": np.zeros_like(m)}, labels, ids


@pytest.mark.parametrize("acc", [AUDIO_GATE, 0.9])
def test_selection_at_or_above_the_audio_gate_is_the_mosi_mae_of_m(acc):
    assert text_with_audio_gate(*split(acc)) == pytest.approx(0.5)


def test_selection_below_the_audio_gate_ranks_after_every_epoch_that_passes():
    score = text_with_audio_gate(*split(AUDIO_GATE - 0.05))
    assert score == pytest.approx(10.5)  # 10 + the pooled MAE of M (0.5 on every row)
    outputs, labels, ids = split(AUDIO_GATE)
    outputs["M"] = labels + 3.0  # a far worse text side still wins once the audio head passes
    assert text_with_audio_gate(outputs, labels, ids) < score


class LoudnessExtractor:
    """A real, tiny audio extractor: one frame holding the clip's RMS; quieter than 0.01 is missing."""

    spec = FeatureSpec("loudness", "1", "audio", rate=16000, dim=1, columns=("rms",))

    def __init__(self) -> None:
        self.calls = 0

    def extract(self, wave: np.ndarray) -> Extracted:
        self.calls += 1
        rms = float(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))
        return Extracted(np.array([[rms]], np.float32)) if rms >= 0.01 else Extracted(None, "silence")


def test_speech_features_cache_grows_remembers_missing_clips_and_keeps_copies_apart(tmp_path):
    from scipy.io import wavfile

    from selfmm.recipe.corpus import ChainCopy, speech_cache, speech_features, speech_samples

    (tmp_path / "Actor_01").mkdir()
    names = {"03-01-03-02-01-01-01": 0.3, "03-01-05-02-01-01-01": 0.2, "03-01-01-01-01-01-01": 0.001}
    for stem, amplitude in names.items():
        t = np.arange(16000) / 16000
        wavfile.write(tmp_path / "Actor_01" / f"{stem}.wav", 16000, (amplitude * np.sin(2 * np.pi * 220 * t) * 32767)
                      .astype(np.int16))
    utterances = [corpora.Utterance(p, "happy", "01", 2.5) for p in sorted((tmp_path / "Actor_01").glob("*.wav"))]
    ex, cache = LoudnessExtractor(), speech_cache(tmp_path, "ravdess", "loudness")
    frames = speech_features(utterances[:2], ex, cache)
    assert ex.calls == 2 and len(frames) == 1  # the quiet clip is missing
    frames = speech_features(utterances, ex, cache)
    assert ex.calls == 3 and len(frames) == 2  # only the new clip was extracted
    assert speech_features(utterances, ex, cache) == frames and ex.calls == 3  # the missing one is remembered
    copy = speech_features(utterances, ex, speech_cache(tmp_path, "ravdess", "loudness", 1), ChainCopy(1))
    assert ex.calls == 6 and cache.is_file() and speech_cache(tmp_path, "ravdess", "loudness", 1).is_file()
    assert set(copy) <= set(names) and any(not np.allclose(copy[s], frames[s]) for s in set(copy) & set(frames))
    again = speech_features(utterances, ex, speech_cache(tmp_path, "ravdess", "loudness", 1), ChainCopy(1))
    assert ex.calls == 6 and set(again) == set(copy)  # the same chain: read back
    speech_features(utterances, ex, speech_cache(tmp_path, "ravdess", "loudness", 1), ChainCopy(2))
    assert ex.calls == 9  # another chain in that file: made again, not read back as the first one
    rows = speech_samples("ravdess", utterances, copy, {"01": "train"}, copy=1)["train"]
    assert all(r.id.endswith("-chain1") for r in rows) and {emotion_of(r.id) for r in rows} <= {"happy", "angry"}
