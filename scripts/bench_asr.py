"""Transcription on real speech with known words: the app's way (Silero VAD as a gate, the whole clip decoded
from the voice features' encoder pass) against faster-whisper's VAD filter (the clip cut to its speech chunks,
encoded again), on RAVDESS clips whose two sentences are known.

    python -m scripts.bench_asr --data ../shared/data --actors 17 18 [--clips 96]

Prints the word error rate of each way and the median seconds per clip for the voice features and the
transcript together (run on an idle machine for the times).
"""
from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np

SENTENCES = {1: "kids are talking by the door", 2: "dogs are sitting by the door"}  # RAVDESS statement codes


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = reference.split(), re.sub(r"[^a-z' ]", " ", hypothesis.lower()).split()
    d = np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, 1):
        prev, d[0] = d.copy(), i
        for j, h in enumerate(hyp, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r != h))
    return float(d[len(hyp)]) / len(ref)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--actors", nargs="+", default=["17", "18"], help="RAVDESS actors (17-20 are the validation ones)")
    p.add_argument("--clips", type=int, default=96)
    args = p.parse_args(argv)
    from selfmm.corpora import ravdess
    from selfmm.features.asr import DECODING, Transcriber
    from selfmm.features.media import load_audio
    from selfmm.features.whisper_audio import WhisperAudioExtractor

    clips = [u for u in ravdess(args.data / "ravdess") if u.path.parent.name[-2:] in args.actors][:args.clips]
    transcriber = Transcriber()
    voice = WhisperAudioExtractor(transcriber.model)
    errors: dict[str, list[float]] = {"app": [], "vad-filter": []}
    seconds: dict[str, list[float]] = {"app": [], "vad-filter": []}
    for u in clips:
        wave = load_audio(u.path).waveform
        words = SENTENCES[int(u.path.stem.split("-")[4])]
        t = time.perf_counter()
        voice.extract(wave)
        text = transcriber.transcribe(wave).text  # decodes from the encoder pass above
        seconds["app"].append(time.perf_counter() - t)
        errors["app"].append(word_error_rate(words, text))
        t = time.perf_counter()
        transcriber.model.take(wave[:480000])  # nothing kept: this way encodes its own input
        voice.extract(wave)
        transcriber.model.take(wave[:480000])
        segments, _ = transcriber.model.transcribe(wave, language="en", beam_size=1, vad_filter=True, **DECODING)
        text = " ".join(s.text.strip() for s in segments if not (s.no_speech_prob > 0.6 and s.avg_logprob < -1.0))
        seconds["vad-filter"].append(time.perf_counter() - t)
        errors["vad-filter"].append(word_error_rate(words, text))
    print(f"{len(clips)} RAVDESS clips of actors {', '.join(args.actors)}")
    for way in errors:
        print(f"{way:>10}: word error rate {np.mean(errors[way]):.3f}, voice features + transcript "
              f"{np.median(seconds[way]):.3f} s median per clip")


if __name__ == "__main__":
    main()
