"""What the default model's card states beyond the checkpoint: its data, their licences and provenance, the
selection rule and the text encoder's earlier fine-tuning."""
from __future__ import annotations

import json
from pathlib import Path

from selfmm.augment import describe
from selfmm.corpora import VALENCE
from selfmm.recipe.corpus import CHAIN_TAG, MELD_VALENCE, VADER_SCALE
from selfmm.recipe.scores import SELECTIONS
from selfmm.recipe.splits import EMODB_SPLIT, FER_ROWS, MAX_STILL_FRAMES, SOURCES, source_rows

NOT_COVERED = [  # what no figure in the card measures (docs/default-model.md)
    "faces are still photographs (FER2013 in the wild, CK+ posed peaks), not talking faces in video",
    "voices are acted, by 34 actors reading fixed sentences in English and German; spontaneous speech, other "
    "languages and other microphones are untested beyond the recording-chain copies",
    "text is CMU-MOSI's spoken movie reviews",
    "no sample has two informative channels together: the combination figures describe the fusion's arithmetic, "
    "not its accuracy",
]

AUDIO_NOTES = {"whisper-encoder": "Whisper tiny.en's encoder states (10 frames/s)",
               "selfmm-audio": "24 librosa columns: pitch, voicing, energy, MFCCs, spectral shape (20 frames/s)"}


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def card_extra(corpus: Path, pretrain: Path | None = None, selection: str = "pooled",
               face_report: Path | None = None) -> dict:
    """What the card states beyond the checkpoint; `pretrain` is the encoder stage's pretrain.json, if used;
    `selection` the train stage's --select; `face_report` the face stage's report.json."""
    from selfmm.data import load_feature_file

    data = load_feature_file(corpus)
    copies = {src: int(sum(CHAIN_TAG in str(i) for i in data["train"].ids[source_rows(data["train"].ids, src)]))
              for src in ("ravdess", "emodb")}
    audio_name = (data.specs or {}).get("audio", {}).get("name", "")
    has_faces = (data.specs or {}).get("vision", {}).get("name") == "face-cnn"
    extra = {
        "selection": {"name": selection, "rule": SELECTIONS[selection].rule},
        "corpus": {"built_by": "python -m scripts.build_default_model --stage corpus",
                   "sizes": {name: {src: int(len(source_rows(s.ids, src))) for src in SOURCES}
                             for name, s in data.splits.items()},
                   "audio_padded_length": int(data["train"].audio_len),
                   # training rows that are recording-chain copies of a clip (selfmm.augment), in the sizes above
                   **({"train_recording_chain_copies": copies, "recording_chain": describe()}
                      if any(copies.values()) else {})},
        "not_covered": NOT_COVERED,
        "name": "selfmm-minilm-mosi-speech-faces",
        "description": "Self-MM with all-MiniLM-L6-v2, trained on CMU-MOSI transcripts (text), RAVDESS and EmoDB "
                       "acted speech (voice) and FER2013 faces (still photographs). No sample has two informative "
                       "modalities together: M is a weighted mean of the channels present (it lies between them).",
        "fusion": "M = a softmax-weighted mean of the present channels' T, A, V (weights read from the fusion "
                  "features); T, A, V = 3 tanh(z / 3): every score lies in [-3, 3] and M between its channels",
        "heads": {
            "M": {"calibrated": True, "note": "weighted mean of the present channels; trained on MOSI text, RAVDESS "
                                              "and EmoDB speech, FER2013 faces, never on two informative channels"},
            "T": {"calibrated": True, "note": "text head, CMU-MOSI transcripts (sentiment)"},
            "A": {"calibrated": True, "note": "voice head, RAVDESS (English) and EmoDB (German) acted speech (valence "
                                              f"of the acted emotion), from {AUDIO_NOTES.get(audio_name, audio_name)}"},
            "V": ({"calibrated": True, "note": "face head, FER2013 still photographs (valence of the expression) "
                                               "through the face CNN's embedding; tested on CK+ posed faces"}
                  if has_faces else
                  {"calibrated": False, "note": "no labelled face data in the corpus: never trained on real faces"}),
        },
        "training_data": [
            {"name": "CMU-MOSI transcripts and labels", "modalities": ["text"], "split": "standard train/dev/test",
             "licence": "CMU-MOSI research use", "provenance": "label.csv from jiangbing22/MMCPanda @3e568e4"},
            {"name": "RAVDESS speech (audio only)", "modalities": ["audio", "text"],
             "split": "actors 1-16 train, 17-20 valid, 21-24 test", "licence": "CC BY-NC-SA 4.0",
             "provenance": "Livingstone & Russo 2018; 16 kHz FLAC", "valence": VALENCE,
             "normal_intensity_factor": "2/3"},
            {"name": "EmoDB (Berlin Database of Emotional Speech)", "modalities": ["audio"],
             "split": "speakers " + "; ".join(f"{k} {', '.join(v)}" for k, v in EMODB_SPLIT.items()),
             "licence": "free for research use", "provenance": "Burkhardt et al. 2005; 535 utterances cut or padded to "
             "2.0 s, from sylaschacko/voice-emotion-analysis @4b0f64c", "valence": "as RAVDESS; boredom -1",
             "text": "German sentences, fed as absent"},
        ],
        "license": "CC BY-NC-SA 4.0 (inherited from RAVDESS): non-commercial use only; EmoDB, FER2013 and CK+ were "
                   "released for research use",
    }
    if has_faces:
        extra["training_data"] += [
            {"name": "FER2013 faces (Goodfellow et al. 2013)", "modalities": ["vision"],
             "split": "face CNN: all of Training (28,709), kept by PublicTest; Self-MM: " + "; ".join(
                 f"{k} {n or 'all'} of {u}" for k, (u, n) in FER_ROWS.items()),
             "licence": "released for research through the ICML 2013 challenge",
             "provenance": "decoded from RecepTahirGunlu/Duygu-Tanima @8d42927", "valence": "as RAVDESS",
             "note": f"still photographs, each fed as 1 to {MAX_STILL_FRAMES} identical frames"},
            {"name": "CK+ (Lucey et al. 2010), 48x48 peak frames", "modalities": ["vision"], "use": "test only",
             "split": "all 118 subjects, never trained on", "licence": "non-commercial research",
             "provenance": "WuJie1010/Facial-Expression-Recognition.Pytorch @fefe665", "valence": "contempt as disgust"}]
        if face_report is not None and face_report.is_file():
            report = json.loads(face_report.read_text())
            extra["face_cnn"] = {"trained_by": "python -m selfmm.face_cnn", "config": report["config"],
                                 "epochs": len(report["history"]),
                                 **{k: report[k] for k in ("valid_PublicTest", "test_PrivateTest", "test_CKplus48")}}
    report = json.loads(pretrain.read_text()) if pretrain is not None and pretrain.is_file() else {}
    if "history" in report:  # the encoder stage's intermediate fine-tuning
        sources = report.get("sources", "vader")
        extra["text_encoder"] = {"name": f"all-MiniLM-L6-v2 + {sources.upper().replace('+', ' + ')}",
                                 "base": "all-MiniLM-L6-v2 (Apache-2.0)",
                                 "intermediate_fine_tuning": {k: report[k] for k in ("data", "sentences", "history")},
                                 # what the encoder reads on MOSI test before any MOSI training: T's yardstick
                                 **({"mosi_test_zero_shot": report["mosi_test_zero_shot"]}
                                    if "mosi_test_zero_shot" in report else {})}
        extra["training_data"].insert(0, {
            "name": "VADER human-rated sentences (Hutto & Gilbert, ICWSM 2014)", "modalities": ["text"],
            "use": f"text encoder fine-tuned alone on it (L1 regression, {plural(len(report['history']), 'epoch')}) "
                   "before Self-MM",
            "label_scale": f"mean rating on [-4, 4] x {VADER_SCALE}",
            "licence": "MIT repository (cjhutto/vaderSentiment); the texts come from third parties",
            "provenance": "additional_resources/hutto_ICWSM_2014.tar.gz of cjhutto/vaderSentiment"})
        if "meld" in sources:
            extra["training_data"].insert(1, {
                "name": "MELD train utterances (Poria et al. 2019)", "modalities": ["text"],
                "use": "with VADER, for the text encoder", "label_scale": str(MELD_VALENCE),
                "licence": "GPL-3.0 repository (declare-lab/MELD)", "provenance": "declare-lab/MELD @2d2011b"})
        extra["description"] = extra["description"].replace(
            "with all-MiniLM-L6-v2,", "with all-MiniLM-L6-v2 (first fine-tuned on VADER's rated sentences),")
    if "mosi_warmup" in report:
        warm = report["mosi_warmup"]
        extra.setdefault("text_encoder", {"name": "all-MiniLM-L6-v2", "base": "all-MiniLM-L6-v2 (Apache-2.0)"})
        extra["text_encoder"]["name"] += " + MOSI text"
        extra["text_encoder"]["mosi_warmup"] = {k: warm[k] for k in ("data", "epochs", "best_epoch", "history")}
        mosi = next(d for d in extra["training_data"] if d["name"].startswith("CMU-MOSI"))
        mosi["use"] = "text encoder fine-tuned alone on the train transcripts first (text-only recipe), then Self-MM"
        extra["description"] = extra["description"].replace(
            "rated sentences),", "rated sentences, then on MOSI's train transcripts),").replace(
            "with all-MiniLM-L6-v2,", "with all-MiniLM-L6-v2 (first fine-tuned on MOSI's train transcripts),")
    return extra
