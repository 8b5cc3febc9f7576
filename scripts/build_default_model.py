"""Rebuild the default model artifact (assets/model) from the labelled data in ../shared/data.

    python -m scripts.build_default_model --data ../shared/data --work runs/default [--stage all]

Stages (each reuses the previous stage's output in --work):
  face    the face CNN (selfmm.face_cnn) trained on FER2013 Training, kept by PublicTest, exported to ONNX: the
          face features of the corpus and of the app (skipped with --faces none).
  corpus  a partially observed MMSA-format feature file, made with the project's own extractors: CMU-MOSI
          transcripts (text only, the standard split), RAVDESS speech (voice + its sentence, actors 1-16 / 17-20 /
          21-24), EmoDB speech (voice only, by speaker), FER2013 faces (vision only: a stratified sample of
          Training, of PublicTest, and all of PrivateTest) and CK+ faces (test only). Each training voice clip
          also enters as --voice-copies copies through a random recording chain (selfmm.augment).
  encoder all-MiniLM-L6-v2 fine-tuned alone on VADER's 23,703 human-rated sentences (L1 regression, one epoch,
          kept by MOSI dev MAE): the MOSI text alone is small (1,281 transcripts) for the text branch.
          Skipped with --text-pretrain none.
  warmup  off by default (--mosi-warmup EPOCHS): that encoder fine-tuned alone on MOSI train transcripts, the
          text-only recipe, before Self-MM. Tried and not shipped: docs/experiments.md.
  train   Self-MM (selfmm.train, MOSI hyper-parameters, DEMO_OVERRIDES) starting from that encoder; each seed's
          epoch and the seed that ships are picked by --select (default `per-branch`: the mean over the validation
          sources of M's MAE, with each branch kept at its own best epoch where that scores lower: selfmm.branches).
  export  ONNX artifact with its card and the face CNN (export/), evaluated through ONNX Runtime on the held-out
          splits.

Unimodal labels the data state (used with --set given_unimodal_labels=true): a MOSI transcript alone is its text
label (T = y); a RAVDESS clip's words are fixed neutral sentences (T = 0) and its valence is acted in the voice
(A = y); an EmoDB clip's valence is in the voice (A = y); a face's is in the face (V = y).

The corpora carry acted or posed emotions, not sentiment; selfmm.corpora.VALENCE maps them to [-3, 3] (RAVDESS's
normal intensity is 2/3 of it), as docs/default-model.md states.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from export.release import remeasure, ship
from selfmm.features.pipeline import AUDIO_FEATURES
from selfmm.recipe.card import card_extra
from selfmm.recipe.corpus import build_corpus
from selfmm.recipe.scores import SELECTIONS, combination_scores, torch_metrics, torch_predict
from selfmm.recipe.splits import AUDIO
from selfmm.recipe.text import pretrain_encoder, warm_up_on_mosi

# Demo-model changes to MMSA's MOSI setting (docs/default-model.md): standardised audio and face frames, the mean
# of the frames instead of the LSTM subnets (it reads the voice better on both corpora's validation speakers:
# scripts/baselines.py --branch-seeds), the larger audio head of MMSA's tuning space, the unimodal labels the data
# state, every head bounded to [-3, 3] and M a weighted mean of the present channels (docs/method.md).
DEMO_OVERRIDES = ["normalize_inputs=true", "av_encoder=mean", "post_audio_dim=32", "given_unimodal_labels=true",
                  "bounded_heads=true", "fusion=convex"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--work", type=Path, default=Path("runs/default"))
    p.add_argument("--out", type=Path, default=Path("assets/model"))
    p.add_argument("--stage", choices=["face", "corpus", "encoder", "warmup", "train", "evaluate", "export", "all",
                                       "remeasure"], default="all",
                   help="remeasure (not part of all): rewrite the card of --out for today's extractors, no training")
    p.add_argument("--why", default="", help="stage remeasure: the reason, kept in the card")
    p.add_argument("--faces", choices=["face-cnn", "none"], default="face-cnn",
                   help="stage face trains the face CNN on FER2013 and the corpus adds FER2013 and CK+ faces; none "
                        "leaves vision absent (the earlier defaults)")
    p.add_argument("--audio", choices=AUDIO_FEATURES, default=AUDIO,
                   help="stage corpus: the audio features, Whisper tiny.en's encoder states or the 24 librosa columns "
                        "of the earlier defaults")
    p.add_argument("--voice-copies", type=int, default=2,
                   help="stage corpus: recording-chain copies (selfmm.augment) of each training voice clip added to "
                        "the training split (the shipped model: 2); 0 adds none")
    p.add_argument("--text-pretrain", choices=["vader", "vader+meld", "none"], default="vader",
                   help="start Self-MM's text encoder from MiniLM fine-tuned on VADER (stage encoder; with MELD: "
                        "tried, not better on MOSI dev) or from MiniLM itself")
    p.add_argument("--mosi-warmup", type=int, default=0, metavar="EPOCHS",
                   help="stage warmup: fine-tune the encoder alone on MOSI train transcripts for up to EPOCHS epochs "
                        "(best by dev MAE) before Self-MM; 0 skips it")
    p.add_argument("--max-epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, nargs="+", default=[1111, 1112, 1113],
                   help="one Self-MM run each; the run with the best selection score (--select) ships")
    p.add_argument("--select", choices=list(SELECTIONS), default="per-branch",
                   help="epoch and seed selection: the mean of M's validation MAE over the data sources, with each "
                        "branch at its own best epoch where that assembly scores lower (per-branch) or not, the "
                        "validation MAE of M over all rows (MMSA's), or the MOSI dev MAE of M among epochs whose audio "
                        "head reaches the 70%% target on the validation actors")
    p.add_argument("--quantize", choices=["none", "int8"], default="int8")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="stage train: more selfmm.train options after the builder's own, e.g. early_stop=15 ema_decay=0.98 "
                        "(tried, not shipped: docs/experiments.md)")
    args = p.parse_args()
    if args.stage == "remeasure":
        print(json.dumps(remeasure(args.data, args.out, args.why)["metrics"], indent=1))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    corpus = args.work / "corpus.pkl"
    face_dir = args.work / "face_cnn"
    face_model = face_dir / "face_cnn.onnx" if args.faces != "none" else None
    if args.stage in ("face", "all") and face_model is not None:
        from selfmm.face_cnn import main as train_face_cnn
        train_face_cnn(["--data", str(args.data), "--out", str(face_dir)])
    if args.stage in ("corpus", "all"):
        build_corpus(args.data, corpus, args.audio, face_model, args.voice_copies)
    encoder = args.work / "encoder"
    if args.stage in ("encoder", "all") and args.text_pretrain != "none":
        pretrain_encoder(args.data, corpus, encoder, args.text_pretrain)
    from selfmm.features.text import default_encoder_dir
    start = encoder if args.text_pretrain != "none" else default_encoder_dir()
    if args.mosi_warmup > 0:
        if args.stage in ("warmup", "all"):
            warm_up_on_mosi(corpus, start, args.work / "encoder_mosi", args.mosi_warmup)
        start = args.work / "encoder_mosi"
    selection_file = args.work / "train" / "selection.json"  # read back by the export stage, for the card
    if args.stage in ("train", "all"):
        from selfmm.train import main as train
        rule = SELECTIONS[args.select]
        train(["--dataset", "mosi", "--data", str(corpus), "--text-encoder", str(start),
               "--out", str(args.work / "train"), "--max-epochs", str(args.max_epochs), "--quiet",
               "--seeds", *map(str, args.seeds), "--set", *DEMO_OVERRIDES, *args.set],
              **({"score": rule.score} if rule.score else {}), branch_score=rule.branch_score)
        selection_file.write_text(json.dumps({"select": args.select}))
    if args.stage in ("evaluate", "all"):
        for split in ("valid", "test"):
            print(split, json.dumps(torch_metrics(args.work / "train" / "best.pt", corpus, split), indent=1))
    if args.stage in ("export", "all"):
        pretrain = start / "pretrain.json" if start != default_encoder_dir() else None
        selection = json.loads(selection_file.read_text())["select"] if selection_file.is_file() else "pooled"
        from selfmm.data import load_feature_file
        from selfmm.train import load_checkpoint

        extra = card_extra(corpus, pretrain, selection, face_dir / "report.json")
        extra["metrics"] = {"combinations": combination_scores(
            torch_predict(load_checkpoint(args.work / "train" / "best.pt")[0]), load_feature_file(corpus)["test"])}
        print(json.dumps(extra["metrics"], indent=1))
        ship(args.work / "train" / "best.pt", corpus, args.out, args.quantize != "none", extra,
               [face_model] if face_model else None)


if __name__ == "__main__":
    main()
