"""The corpus of the default model: labelled samples read from ../shared/data, turned into features with the
project's own extractors and saved as one partially observed MMSA-format feature file."""
from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from selfmm.recipe.splits import (AUDIO, EMODB_SPLIT, FER_ROWS, MAX_STILL_FRAMES, MOSI_MODES, RAVDESS_SPLIT,
                                  SOURCES, source_rows)

VADER_SCALE = 0.75  # VADER's mean ratings on [-4, 4] -> MOSI's [-3, 3]
MELD_VALENCE = {"positive": 1.5, "neutral": 0.0, "negative": -1.5}  # tried, not used: docs/experiments.md


@dataclass
class Sample:
    id: str
    text: str
    label: float
    audio: np.ndarray | None = None
    given: dict[str, float] | None = None  # unimodal labels the data state (T, A, V), see GIVEN below
    vision: np.ndarray | None = None


def mosi_samples(data: Path) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {"train": [], "valid": [], "test": []}
    with open(data / "mosi" / "label.csv", newline="") as f:
        for row in csv.DictReader(f):
            y = float(row["label"])
            out[MOSI_MODES[row["mode"]]].append(Sample(f"mosi$_${row['id']}", row["text"], y, given={"T": y}))
    return out


def vader_sentences(data: Path) -> tuple[list[str], np.ndarray]:
    """VADER's 23,703 human-rated sentences (tweets, movie reviews, NYT editorials, Amazon reviews), rescaled."""
    texts, labels = [], []
    for path in sorted((data / "vader").glob("*_GroundTruth.txt")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[2].strip():
                texts.append(parts[2].strip())
                labels.append(float(parts[1]) * VADER_SCALE)
    return texts, np.array(labels, dtype=np.float32)


def meld_sentences(data: Path) -> tuple[list[str], np.ndarray]:
    """MELD's training utterances with their sentiment class mapped by MELD_VALENCE."""
    texts, labels = [], []
    with open(data / "meld" / "train_sent_emo.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["Utterance"].strip():
                texts.append(row["Utterance"].strip())
                labels.append(MELD_VALENCE[row["Sentiment"]])
    return texts, np.array(labels, dtype=np.float32)


def speech_features(utterances: list, extractor, cache: Path | None = None,
                    transform: ChainCopy | None = None) -> dict[str, np.ndarray]:
    """Audio frames of each utterance (by file stem), computed once and kept in `cache` (a pickle of this
    project's own making) with the extractor's spec, so that corpus variants and probes reuse them. The cache
    also remembers the clips the extractor reported missing, and grows: asking for other clips adds them.
    `transform`, if given, changes each waveform first (an augmented copy); its spec is part of the cache's."""
    import os
    import pickle

    from selfmm.features.media import load_audio

    spec = extractor.spec.to_dict()
    made_by = None if transform is None else transform.spec
    kept: dict = {"spec": spec, "transform": made_by, "frames": {}, "missing": {}}
    if cache is not None and cache.is_file():
        with open(cache, "rb") as f:
            old = pickle.load(f)
        if old["spec"] == spec and old.get("transform") == made_by:
            kept.update(frames=old["frames"], missing=old.get("missing", {}))
    todo = [u for u in utterances if u.path.stem not in kept["frames"] and u.path.stem not in kept["missing"]]
    for i, u in enumerate(todo):
        wave = load_audio(u.path).waveform
        if wave is not None and transform is not None:
            wave = transform(wave, u.path.stem)
        got = extractor.extract(wave)
        if got.frames is None:
            print(f"skipping {u.path.name}: {got.missing}", file=sys.stderr)
            kept["missing"][u.path.stem] = got.missing
        else:
            kept["frames"][u.path.stem] = got.frames
        if i % 200 == 0:
            print(f"speech {i}/{len(todo)}", file=sys.stderr)
    if todo and cache is not None:
        part = cache.with_name(cache.name + ".part")
        with open(part, "wb") as f:
            pickle.dump(kept, f)
        os.replace(part, cache)  # an interrupted write leaves the old cache whole
    return {u.path.stem: kept["frames"][u.path.stem] for u in utterances if u.path.stem in kept["frames"]}


CHAIN_TAG = "-chain"  # a recording-chain copy's sample id: "<corpus>$_$<stem>-chain<copy>"


def speech_samples(corpus: str, utterances: list, frames: dict[str, np.ndarray],
                   split_of: dict[str, str], copy: int = 0) -> dict[str, list[Sample]]:
    """Speech clips as samples: audio, and the fixed sentence where the corpus has an English one (RAVDESS: its
    words are neutral by design, T = 0); EmoDB's German sentences are left out (text absent). A recording-chain
    copy's id ends in "-chain<copy>" (the stem's fields, which carry the emotion, stay readable)."""
    out: dict[str, list[Sample]] = {"train": [], "valid": [], "test": []}
    tag = f"{CHAIN_TAG}{copy}" if copy else ""
    for u in utterances:
        if u.path.stem not in frames:
            continue
        given = {"T": 0.0, "A": u.valence} if u.text else {"A": u.valence}
        out[split_of[u.speaker]].append(Sample(f"{corpus}$_${u.path.stem}{tag}", u.text, u.valence,
                                               frames[u.path.stem], given=given))
    return out


def speech_cache(cache_dir: Path | None, corpus: str, audio: str, copy: int = 0) -> Path | None:
    """Where speech_features keeps a corpus's frames: the clips as recorded (copy 0) or recording-chain copy k."""
    if cache_dir is None:
        return None
    return cache_dir / (f"audio_{corpus}_{audio}.pkl" if copy == 0 else f"audio_{corpus}_{audio}_chain{copy}.pkl")


@dataclass(frozen=True)
class ChainCopy:
    """The waveform transform of recording-chain copy `copy` (1, 2, ...): one random chain per clip and copy,
    fixed by the clip's name and the copy number (selfmm.augment)."""

    copy: int

    def __call__(self, wave: np.ndarray, stem: str) -> np.ndarray:
        import zlib

        from selfmm.augment import recording_chain

        return recording_chain(wave, seed=zlib.crc32(f"{stem}/{self.copy}".encode()))

    @property
    def spec(self) -> dict:
        from selfmm.augment import describe

        return {**describe(), "copy": self.copy}


def face_samples(faces, embed, prefix: str, seed: int = 0) -> list[Sample]:
    """Still faces as samples: the embedding repeated over 1..MAX_STILL_FRAMES frames (a still held for up to
    10 s at the face features' 5 frames/s), so that the vision branch learns the still's valence whatever the
    clip's length."""
    rng = np.random.default_rng(seed)
    emb = embed(faces.images)
    lengths = rng.integers(1, MAX_STILL_FRAMES + 1, len(emb))
    return [Sample(f"{prefix}$_${i}_{e}", "", float(v), None, given={"V": float(v)},
                   vision=np.repeat(emb[i:i + 1], n, axis=0))
            for i, (e, v, n) in enumerate(zip(faces.emotions, faces.valence, lengths))]


def stratified(groups: np.ndarray, n: int, seed: int) -> np.ndarray:
    """About n row indices, each group (class) in proportion to its size, sorted."""
    rng = np.random.default_rng(seed)
    rows = [rng.permutation(np.flatnonzero(groups == g))[:max(1, round(n * np.mean(groups == g)))]
            for g in np.unique(groups)]
    return np.sort(np.concatenate(rows))


def corpus_samples(data: Path, voice, faces=None, cache_dir: Path | None = None,
                   splits: tuple[str, ...] = ("train", "valid", "test"), voice_copies: int = 0
                   ) -> dict[str, list[Sample]]:
    """Every labelled sample of `splits`: MOSI transcripts, RAVDESS and EmoDB clips through the audio extractor
    `voice`, and, with a face embedding extractor `faces`, FER2013 and CK+ faces. cache_dir: keep the speech
    features there (speech_features). voice_copies: that many recording-chain copies of every training clip
    (selfmm.augment) join the training split; validation and test clips stay as recorded."""
    from selfmm import corpora

    samples = {name: rows for name, rows in mosi_samples(data).items() if name in splits}
    for corpus, reader, split in (("ravdess", corpora.ravdess, RAVDESS_SPLIT), ("emodb", corpora.emodb, EMODB_SPLIT)):
        split_of = {speaker: name for name, speakers in split.items() for speaker in speakers}
        utterances = [u for u in reader(data / corpus) if split_of[u.speaker] in splits]
        frames = speech_features(utterances, voice, speech_cache(cache_dir, corpus, voice.spec.name))
        for name, rows in speech_samples(corpus, utterances, frames, split_of).items():
            if name in splits:
                samples[name] += rows
        train = [u for u in utterances if split_of[u.speaker] == "train"]
        for copy in range(1, voice_copies + 1) if train else ():
            frames = speech_features(train, voice, speech_cache(cache_dir, corpus, voice.spec.name, copy),
                                     ChainCopy(copy))
            samples["train"] += speech_samples(corpus, train, frames, split_of, copy)["train"]
    if faces is not None:
        fer = corpora.fer2013(data / "faces" / "fer2013.npz")
        for name, (usage, n) in FER_ROWS.items():
            if name in splits:
                rows = np.flatnonzero(fer.groups == usage)
                rows = rows[stratified(fer.emotions[rows], n, seed=len(name))] if n else rows
                samples[name] += face_samples(fer.take(rows), faces.embed, "fer", seed=len(name))
        if "test" in splits:
            samples["test"] += face_samples(corpora.ckplus(data / "faces" / "ckplus48"), faces.embed, "ckplus")
    return samples


def samples_split(rows: list[Sample], tokenizer, audio_shape: tuple[int, int], vision_shape: tuple[int, int]):
    """A selfmm.data.Split of samples, with the unimodal labels they state."""
    from selfmm.data import build_split

    ids, mask = tokenizer.encode_batch([x.text for x in rows])
    return build_split([x.id for x in rows], [x.text for x in rows], ids, mask, [x.audio for x in rows],
                       [x.vision for x in rows], [x.label for x in rows], audio_shape, vision_shape,
                       {m: [x.given.get(m, np.nan) for x in rows] for m in ("T", "A", "V")})


def build_corpus(data: Path, out: Path, audio: str = AUDIO, face_model: Path | None = None,
                 voice_copies: int = 0) -> None:
    """The corpus stage; `audio` names the audio extractor (selfmm.features.pipeline.AUDIO_FEATURES);
    `face_model` the face CNN's ONNX file (stage face), without which vision stays absent; `voice_copies`
    recording-chain copies of each training clip (corpus_samples)."""
    from selfmm.data import FeatureFile, padded_length, save_feature_file
    from selfmm.features.pipeline import audio_extractor
    from selfmm.features.text import TextTokenizer
    from selfmm.features.vision import FaceExtractor

    tokenizer = TextTokenizer()
    voice = audio_extractor(audio)
    faces = None
    if face_model is not None:
        from selfmm.features.face_embedding import FaceEmbeddingExtractor

        faces = FaceEmbeddingExtractor(face_model)
    vision_spec = faces.spec if faces is not None else FaceExtractor().spec
    samples = corpus_samples(data, voice, faces, out.parent, voice_copies=voice_copies)
    audio_len = padded_length([x.audio for rows in samples.values() for x in rows])
    vision_len = max(1, padded_length([x.vision for rows in samples.values() for x in rows]))
    splits = {}
    for name, rows in samples.items():
        splits[name] = samples_split(rows, tokenizer, (audio_len, voice.spec.dim), (vision_len, vision_spec.dim))
        print(f"{name}: " + ", ".join(f"{len(source_rows(splits[name].ids, src))} {src}" for src in SOURCES),
              file=sys.stderr)
    specs = {"text": tokenizer.spec.to_dict(), "audio": voice.spec.to_dict(), "vision": vision_spec.to_dict()}
    save_feature_file(out, FeatureFile(splits=splits, specs=specs))


def shipped_test_split(data: Path, model: Path, card: dict):
    """The test split (MOSI test transcripts, RAVDESS actors 21-24, EmoDB speakers 15-16, FER2013 PrivateTest,
    CK+) rebuilt from `data` with today's extractors for the artifact in `model`: what the card's figures are
    measured on."""
    from selfmm.features.face_embedding import FaceEmbeddingExtractor
    from selfmm.features.pipeline import audio_extractor
    from selfmm.features.text import TextTokenizer

    voice = audio_extractor(card["feature_specs"]["audio"]["name"])
    faces = FaceEmbeddingExtractor(model / "face_cnn.onnx")
    rows = corpus_samples(data, voice, faces, splits=("test",))["test"]
    vision_len = max(len(x.vision) for x in rows if x.vision is not None)
    split = samples_split(rows, TextTokenizer(model / "tokenizer.json"),
                          (card["corpus"]["audio_padded_length"], card["feature_dims"]["audio"]),
                          (vision_len, card["feature_dims"]["vision"]))
    return split, voice.spec
