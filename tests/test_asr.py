"""Whisper transcription: the spoken words of real espeak-ng speech; one clip, one transcript (greedy decoding with
no sampling fallback, repeat artefacts removed by a pure function: issue 17, item 2)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import media
from selfmm.features.asr import Segment, collapse_repeated_sentences, drop_repeats

ROOT = Path(__file__).resolve().parents[1]


# -- the repeat guard, without Whisper -----------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("I'm not sure if you can. I'm not sure if you can.", "I'm not sure if you can."),
    ("A. A.", "A."),
    ("A. A. A!", "A."),                       # any number of copies; the first one's punctuation stays
    ("It was fine. It was fine", "It was fine."),  # Whisper often leaves the last copy without its period
    ("Hello there.  Hello there. Bye.", "Hello there. Bye."),
    ("Great! Great! Really great.", "Great! Really great."),
])
def test_back_to_back_sentences_collapse(text, expected):
    assert collapse_repeated_sentences(text) == expected


@pytest.mark.parametrize("text", [
    "I really love this movie, it's wonderful.",
    "A. B. A.",                              # not neighbours
    "It was good. It was really, really good.",  # a different sentence, and a repeated word is not a sentence
    "No, no, no, I did not like it.",
    "I'm not sure. I'm NOT sure.",          # case differs: kept
    "Mr. Smith said hi.",
    "",
])
def test_text_without_a_repeated_sentence_comes_back_unchanged(text):
    assert collapse_repeated_sentences(text) == text


def test_a_segment_that_repeats_the_previous_kept_one_is_dropped():
    segs = [Segment(0.0, 1.5, "I liked it."), Segment(1.5, 3.0, "I liked it."), Segment(3.0, 4.0, "I liked it"),
            Segment(4.0, 5.0, "The end was bad. The end was bad."), Segment(5.0, 6.0, "The end was bad."),
            Segment(6.0, 7.0, "I liked it.")]
    assert drop_repeats(segs) == [Segment(0.0, 1.5, "I liked it."), Segment(4.0, 5.0, "The end was bad."),
                                  Segment(6.0, 7.0, "I liked it.")]  # not a neighbour of the first: kept
    assert segs[3].text == "The end was bad. The end was bad."  # the input is not modified


def test_drop_repeats_keeps_distinct_segments_as_they_are():
    segs = [Segment(0.0, 2.0, "This film was terrible."), Segment(2.4, 4.1, "But the music was nice.")]
    assert drop_repeats(segs) == segs
    assert drop_repeats([]) == []


def test_the_decoding_options_are_stated_in_the_spec():
    from selfmm.features import asr

    assert asr.DECODING["temperature"] == 0.0 and not isinstance(asr.DECODING["temperature"], (list, tuple))
    assert asr.DECODING["condition_on_previous_text"] is False
    assert {"no_repeat_ngram_size", "repetition_penalty"} <= set(asr.DECODING)  # spec.params: the slow test


# -- the real model, in separate processes -------------------------------------------------------------------

# Each process builds its own Transcriber, transcribes the clip twice and prints what it got as JSON.
CHILD = """
import json, sys
import numpy as np
from selfmm.features.asr import Transcriber
wave = np.load(sys.argv[1])
t = Transcriber()
runs = []
for _ in range(2):
    r = t.transcribe(wave)
    runs.append({"text": r.text, "language": r.language,
                 "segments": [[s.start, s.end, s.text] for s in r.segments]})
print(json.dumps({"runs": runs, "params": t.spec.params}, sort_keys=True))
"""


def noisy_speech() -> np.ndarray:
    """About 3.5 s of espeak-ng speech in white noise at -9 dB SNR (fixed seed). With faster-whisper's default
    temperature schedule this clip fell back to sampling on every one of 9 runs (3 processes): 4 different
    transcripts, and different segment ends even where the words agreed."""
    from scripts.make_examples import speak

    x = speak("I really love this movie, it's wonderful.")
    x = x / np.abs(x).max() * 0.5
    noise = np.random.default_rng(3).standard_normal(x.size)
    return (x + noise * np.sqrt(np.mean(x ** 2) / 10 ** (-9 / 10))).astype(np.float32)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_same_noisy_clip_gives_the_same_transcript_in_every_process(tmp_path):
    wave = noisy_speech()
    assert 2.0 < wave.size / 16000 < 6.0
    path = tmp_path / "noisy.npy"
    np.save(path, wave)
    outputs = []
    for _ in range(3):
        run = subprocess.run([sys.executable, "-c", CHILD, str(path)], cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        outputs.append(run.stdout.strip().splitlines()[-1])
    assert outputs[0] == outputs[1] == outputs[2], "\n".join(outputs)
    got = json.loads(outputs[0])
    first, second = got["runs"]
    assert first == second  # run after run in one process, too
    assert first["text"] and first["segments"], got  # the clip is noisy, not silent: Whisper does write text
    params = got["params"]
    assert params["temperature"] == 0 and params["condition_on_previous_text"] is False
    assert {"no_repeat_ngram_size", "repetition_penalty", "repeat_guard"} <= set(params)


# -- the words ----------------------------------------------------------------------------------------------------

WORDS = ("love", "movie", "wonderful")


@pytest.mark.skipif(not media.have_espeak(), reason="espeak-ng is not installed")
def test_whisper_transcribes_the_spoken_words(full):
    assert full.transcript_source == "whisper"
    text = full.transcript.lower()
    assert all(w in text for w in WORDS), text
    assert full.language == "en"
    assert full.segments and all(0 <= s.start < s.end <= 4.5 for s in full.segments)


@pytest.mark.skipif(not media.have_espeak(), reason="espeak-ng is not installed")
def test_a_gate_run_by_the_caller_decides_as_the_transcriber_would(pipeline):
    from selfmm.features.media import load_media

    rate = 16000
    samples, raw_rate = media.speech_samples()
    wave = load_media((raw_rate, samples), rate).waveform
    t = pipeline.transcriber
    silence = np.zeros(rate * 2, np.float32)
    assert t.worth_decoding(wave) and not t.worth_decoding(silence) and not t.worth_decoding(wave[:800])
    assert t.transcribe(wave, rate, gate=True).text == t.transcribe(wave, rate).text != ""
    assert t.transcribe(wave, rate, gate=False).text == ""  # the caller's "no speech" is not second-guessed


def test_whisper_by_unknown_name_says_internet():
    from selfmm.features import ASRError, Transcriber

    with pytest.raises(ASRError, match="internet"):
        Transcriber("no-such-whisper-model-xyz")
