"""Readers for the labelled emotion corpora the default model learns its voice and face from.

Each corpus labels acted or posed emotions, not sentiment. One table maps an emotion to a valence on Self-MM's
[-3, 3] scale for all of them (VALENCE), so that a voice head and a face head learn the same scale; the
valence-sign figures compare happy against the four clearly negative emotions (metrics.valence_sign_accuracy).
Nothing here extracts features: the readers return file names or pixels with their labels and speaker or subject,
so that splits can keep a person on one side.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Valence of each emotion at full intensity (the RAVDESS mapping of docs/default-model.md; contempt as disgust,
# boredom mildly negative).
VALENCE = {"happy": 2.5, "surprise": 1.5, "calm": 1.0, "neutral": 0.0, "boredom": -1.0, "fear": -1.5,
           "sad": -2.0, "angry": -2.5, "disgust": -2.5, "contempt": -2.5}
POSITIVE = ("happy",)
NEGATIVE = ("angry", "disgust", "fear", "sad", "contempt")


@dataclass
class Utterance:
    path: Path
    emotion: str
    speaker: str
    valence: float
    text: str = ""  # the spoken sentence where the corpus fixes it (RAVDESS); "" when the words are not English


# RAVDESS: 03-01-EE-II-SS-RR-AA (emotion EE, intensity II: normal speech is 2/3 of the strong valence).
RAVDESS_EMOTIONS = {1: "neutral", 2: "calm", 3: "happy", 4: "sad", 5: "angry", 6: "fear", 7: "disgust", 8: "surprise"}
RAVDESS_INTENSITY = {1: 2 / 3, 2: 1.0}
RAVDESS_STATEMENTS = {1: "kids are talking by the door", 2: "dogs are sitting by the door"}
# EmoDB: SSTTTEV, emotion E by its German initial.
EMODB_EMOTIONS = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fear", "F": "happy", "T": "sad", "N": "neutral"}


def ravdess(root: Path) -> list[Utterance]:
    """The 1,440 RAVDESS speech clips (speaker = actor number)."""
    out = []
    for path in sorted(Path(root).glob("Actor_*/*.flac")):
        _, _, emotion, intensity, statement, _, actor = (int(x) for x in path.stem.split("-"))
        name = RAVDESS_EMOTIONS[emotion]
        out.append(Utterance(path, name, f"{actor:02d}", round(VALENCE[name] * RAVDESS_INTENSITY[intensity], 3),
                             RAVDESS_STATEMENTS[statement]))
    return out


def emodb(root: Path) -> list[Utterance]:
    """The 535 EmoDB utterances (German; speaker = the file name's first two digits)."""
    out = []
    for path in sorted(Path(root).glob("*.flac")):
        name = EMODB_EMOTIONS[path.stem[5]]
        out.append(Utterance(path, name, path.stem[:2], VALENCE[name]))
    return out


@dataclass
class Faces:
    images: np.ndarray  # (N, 48, 48) uint8 grey
    emotions: np.ndarray  # (N,) str
    groups: np.ndarray  # (N,) str: FER2013's official usage, or CK+'s subject

    @property
    def valence(self) -> np.ndarray:
        return np.array([VALENCE[e] for e in self.emotions], dtype=np.float32)

    def take(self, rows: np.ndarray) -> "Faces":
        return Faces(self.images[rows], self.emotions[rows], self.groups[rows])


FER_NAMES = {"angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy", "sad": "sad",
             "surprise": "surprise", "neutral": "neutral"}
CK_NAMES = {"anger": "angry", "contempt": "contempt", "disgust": "disgust", "fear": "fear", "happy": "happy",
            "sadness": "sad", "surprise": "surprise"}


def fer2013(path: Path) -> Faces:
    """FER2013 with its official split in `groups` (Training, PublicTest, PrivateTest)."""
    with np.load(path, allow_pickle=False) as z:
        classes = [FER_NAMES[str(c)] for c in z["classes"]]
        return Faces(z["images"], np.array([classes[i] for i in z["labels"]]), z["usage"].astype(str))


def ckplus(root: Path) -> Faces:
    """CK+48's 981 peak-expression crops; `groups` holds the subject (SNNN) so splits keep a person together."""
    import cv2

    images, emotions, subjects = [], [], []
    for path in sorted(Path(root).glob("*/*.png")):
        images.append(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
        emotions.append(CK_NAMES[path.parent.name])
        subjects.append(path.stem.split("_")[0])
    return Faces(np.stack(images), np.array(emotions), np.array(subjects))
