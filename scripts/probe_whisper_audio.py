"""Probe: how much RAVDESS valence the Whisper tiny.en encoder's states carry, against the project's own 24
audio columns. Prints figures; trains nothing that ships.

    python -m scripts.probe_whisper_audio --data ../shared/data

Each clip goes through the encoder the app already runs for its transcript (`WhisperAudioExtractor.states`:
faster-whisper, int8; the log-mel input padded to Whisper's 30 s window, as Whisper does). The states of the
clip's own frames (50 a second) are pooled to their mean and standard deviation (768 numbers), and a
logistic regression on them predicts the valence sign of non-neutral clips: trained on actors 1-16, scored on
actors 17-20 (validation) and 21-24 (test), the default model's split. `scripts.baselines` gives the same probe
on the 24 columns.
Why: the audio head's 70 % target sits at the edge of what those columns carry (docs/experiments.md).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from selfmm.corpora import ravdess
from selfmm.recipe.scores import sign_accuracy, sign_classifier
from selfmm.recipe.splits import RAVDESS_SPLIT


def encoder_states(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pooled states, valence, actor) of every RAVDESS clip."""
    from selfmm.features.media import load_audio
    from selfmm.features.whisper_audio import WhisperAudioExtractor

    extractor = WhisperAudioExtractor()
    clips = ravdess(data / "ravdess")
    pooled, valence, actors, t0 = [], [], [], time.time()
    for i, clip in enumerate(clips):
        own = extractor.states(load_audio(clip.path).waveform.astype(np.float32))
        pooled.append(np.concatenate([own.mean(0), own.std(0)]))
        valence.append(clip.valence)
        actors.append(clip.speaker)
        if i % 200 == 0:
            print(f"{i}/{len(clips)} clips, {time.time() - t0:.0f} s", flush=True)
    return np.array(pooled), np.array(valence), np.array(actors)


def split_accuracy(x: np.ndarray, valence: np.ndarray, actors: np.ndarray, c: float) -> dict[str, float]:
    """Fitted on the training actors, the sign accuracy on the validation and test actors."""
    rows = {name: np.isin(actors, r) for name, r in RAVDESS_SPLIT.items()}
    clf = sign_classifier(x[rows["train"]], valence[rows["train"]], c)
    return {name: sign_accuracy(clf, x[m], valence[m]) for name, m in rows.items() if name != "train"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = p.parse_args()
    x, valence, actors = encoder_states(args.data)
    dim = x.shape[1] // 2
    for name, cols in (("mean", slice(0, dim)), ("mean+std", slice(None))):
        for c in (0.01, 0.1, 1.0):
            print(f"Whisper tiny.en states, {name} ({cols.stop or x.shape[1]} numbers), C={c}: "
                  f"sign accuracy {split_accuracy(x[:, cols], valence, actors, c)}")


if __name__ == "__main__":
    main()
