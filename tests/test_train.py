"""Training end to end on small synthetic MMSA files with a tiny random BERT (fast, CPU)."""
import json
import math

import pytest
import torch
from transformers import BertConfig, BertModel

from selfmm.config import dataset_configs
from selfmm.data import load_feature_file, save_feature_file, synth_feature_file
from selfmm.model import SelfMM
from selfmm.train import Trainer, load_checkpoint, main, param_groups

SHAPE = dict(audio_len=20, vision_len=16, text_len=16, text_vocab=1200)


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_bert")
    cfg = BertConfig(vocab_size=1200, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "synth.pkl"
    save_feature_file(path, synth_feature_file("mosi", 96, 32, 32, seed=0, **SHAPE))
    return path


def make_trainer(encoder_dir, data_file, **overrides) -> Trainer:
    data = load_feature_file(data_file)
    _, a, v = data.feature_dims
    model_cfg, cfg = dataset_configs("mosi", BertConfig.from_pretrained(encoder_dir).to_dict(), a, v, **overrides)
    torch.manual_seed(0)
    return Trainer(SelfMM.from_pretrained_text(model_cfg, str(encoder_dir)), cfg, data, torch.device("cpu"))


@pytest.mark.parametrize("batch_size,step_remainder,expected", [(16, False, 1), (16, True, 2), (4, False, 6), (8, False, 3)])
def test_optimizer_steps_per_epoch_is_floor_of_batches_over_4(encoder_dir, data_file, batch_size, step_remainder, expected):
    # 96 training samples: bs 16 -> 6 batches -> floor(6/4) = 1 step (2 with the remainder fixed);
    # bs 4 -> 24 batches -> 6 steps; bs 8 -> 12 batches -> 3 steps
    t = make_trainer(encoder_dir, data_file, batch_size=batch_size, step_remainder=step_remainder)
    t.train_epoch(1)
    assert t.optimizer_steps == expected


def test_five_parameter_groups_cover_every_parameter_once(encoder_dir, data_file):
    t = make_trainer(encoder_dir, data_file)
    groups = param_groups(t.model, t.cfg)
    assert len(groups) == 5
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(t.model.parameters()))
    assert [g["lr"] for g in groups] == [5e-5, 5e-5, 5e-3, 5e-3, 1e-3]
    assert groups[1]["weight_decay"] == 0.0 and all("LayerNorm" in n or n.endswith("bias")
        for n, p in t.model.text_model.named_parameters() if any(p is q for q in groups[1]["params"]))


def test_ema_keeps_the_moving_average_of_the_weights_after_each_step(encoder_dir, data_file):
    """ema_decay=d: after the first Adam step the average is those weights, after the second
    d * w1 + (1 - d) * w2; evaluation and the restored best state use the average, training the live weights."""
    d = 0.75
    t = make_trainer(encoder_dir, data_file, batch_size=8, ema_decay=d)  # 12 batches -> 3 steps per epoch
    snapshots = []
    step = t.optimizer.step

    def step_and_keep(*args, **kwargs):
        step(*args, **kwargs)
        snapshots.append({n: p.detach().clone() for n, p in t.model.named_parameters()})

    def average(name: str) -> torch.Tensor:
        ema = snapshots[0][name]
        for w in snapshots[1:]:
            ema = d * ema + (1 - d) * w[name]
        return ema

    t.optimizer.step = step_and_keep
    t.train_epoch(1)
    assert len(snapshots) == 3
    avg = dict(t.eval_model.named_parameters())
    for name in ("post_fusion.layer_3.weight", "text_model.bert.embeddings.word_embeddings.weight"):
        assert torch.allclose(avg[name], average(name), atol=1e-6)
        assert not torch.allclose(avg[name], snapshots[-1][name])  # the live weights differ from the average
    t.cfg.max_epochs = 1
    t.fit()  # one more epoch, 3 more steps; its average is the best (only) state and is restored
    assert len(snapshots) == 6 and t.eval_model is t.model
    for name, p in t.model.named_parameters():
        assert torch.allclose(p, average(name), atol=1e-6), name


def test_no_ema_by_default(encoder_dir, data_file):
    t = make_trainer(encoder_dir, data_file)
    assert t.cfg.ema_decay == 0.0 and t.ema is None and t.eval_model is t.model


def test_unimodal_losses_are_zero_until_labels_have_moved(encoder_dir, data_file):
    """Labels change from epoch 2 on, but each sample's label is updated after its own batch's loss, so the
    unimodal weights tanh(|y_s - y_m|) are exactly 0 in epochs 1 and 2 and non-zero from epoch 3 (as the
    reference code does)."""
    t = make_trainer(encoder_dir, data_file, batch_size=8)
    for epoch in (1, 2):
        losses = t.train_epoch(epoch)
        assert losses["loss_T"] == losses["loss_A"] == losses["loss_V"] == 0.0 and losses["loss_M"] > 0
    assert not torch.equal(t.ulgm.labels["text"], t.ulgm.labels["fusion"])
    third = t.train_epoch(3)
    assert third["loss_T"] > 0 and third["loss_A"] > 0 and third["loss_V"] > 0
    for m in ("text", "audio", "vision"):
        assert t.ulgm.labels[m].abs().max() <= t.cfg.H + 1e-6


def test_batch_size_one_trains(encoder_dir, tmp_path):
    path = tmp_path / "small.pkl"
    save_feature_file(path, synth_feature_file("mosi", 9, 3, 3, seed=1, **SHAPE))
    t = make_trainer(encoder_dir, path, batch_size=1, max_epochs=2)
    best_epoch, epochs, valid = t.fit()
    assert epochs == 2 and best_epoch >= 1 and math.isfinite(valid["MAE"])
    assert t.optimizer_steps == 2 * (9 // 4)


def test_missing_modalities_train_and_are_masked(encoder_dir, tmp_path):
    path = tmp_path / "missing.pkl"
    save_feature_file(path, synth_feature_file("mosi", 48, 16, 16, seed=2, missing_rate=0.5, **SHAPE))
    t = make_trainer(encoder_dir, path, batch_size=8)
    t.train_epoch(1)
    t.train_epoch(2)
    absent = ~t.ulgm.present["audio"]
    assert absent.any()
    assert torch.equal(t.ulgm.labels["audio"][absent], t.ulgm.labels["fusion"][absent])  # never regenerated


def test_cli_short_training_lowers_loss_and_writes_results(encoder_dir, data_file, tmp_path):
    out = tmp_path / "run"
    main(["--dataset", "mosi", "--data", str(data_file), "--text-encoder", str(encoder_dir), "--seeds", "1111", "1112",
          "--out", str(out), "--max-epochs", "6", "--batch-size", "4", "--save-labels", "--quiet"])
    log = [json.loads(line) for line in (out / "seed-1111" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 6
    assert log[-1]["loss_M"] < log[0]["loss_M"]
    results = json.loads((out / "results.json").read_text())
    assert set(results["seeds"]) == {"1111", "1112"}
    assert set(results["test_x100"]) == {"Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score",
                                         "Mult_acc_5", "Mult_acc_7", "MAE", "Corr"}
    assert (out / "seed-1111" / "labels.png").stat().st_size > 1000
    model, ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["result"]["seed"] == results["best_seed"]
    assert ckpt["model_config"]["audio_in"] == 5 and ckpt["train_config"]["dataset"] == "mosi"


def test_trimming_padding_does_not_change_outputs(encoder_dir, data_file):
    from selfmm.data import make_loader
    from selfmm.train import model_inputs

    t = make_trainer(encoder_dir, data_file)
    t.model.eval()
    batch = next(iter(make_loader(t.data["valid"], 8, shuffle=False)))
    pad = lambda x, n: torch.cat([x, torch.zeros_like(x[:, :n])], dim=1)  # noqa: E731
    full = {"text_ids": pad(batch["text_ids"], 10), "text_mask": pad(batch["text_mask"], 10),
            "audio": pad(batch["audio"], 7), "audio_lengths": batch["audio_lengths"],
            "vision": pad(batch["vision"], 5), "vision_lengths": batch["vision_lengths"]}
    trimmed = model_inputs(full, torch.device("cpu"))
    assert trimmed["text_ids"].shape[1] == int(batch["text_mask"].sum(1).max())
    assert trimmed["audio"].shape[1] == int(batch["audio_lengths"].max())
    with torch.no_grad():
        a, b = t.model(**full), t.model(**trimmed)
    for h in "MTAV":
        assert torch.allclose(a[h], b[h], atol=1e-5)


def test_a_given_selection_score_picks_the_epoch_and_drives_early_stopping(encoder_dir, data_file):
    calls = []

    def first_epoch_best(outputs, labels, ids):  # the score only grows: epoch 1 stays the best
        assert set(outputs) == set("MTAV") and len(labels) == len(ids)
        calls.append(1)
        return float(len(calls))

    t = make_trainer(encoder_dir, data_file, early_stop=2, max_epochs=10)
    t.score = first_epoch_best
    best_epoch, epochs, valid = t.fit()
    assert (best_epoch, epochs, valid["score"]) == (1, 3, 1.0)


@pytest.mark.parametrize("branches", [False, True])
def test_a_branch_still_improving_keeps_a_per_branch_run_going(encoder_dir, data_file, branches):
    """The whole model is best at epoch 1; the audio branch improves every epoch. Alone, early stopping ends the
    run at epoch 3; with branches kept apart, it runs to max_epochs."""
    calls = []

    def first_epoch_best(outputs, labels, ids):
        calls.append(1)
        return float(len(calls))

    t = make_trainer(encoder_dir, data_file, early_stop=2, max_epochs=5)
    t.score = first_epoch_best
    if branches:
        t.branch_score = lambda outputs, labels, ids: {"audio": -float(len(calls))}
    best_epoch, epochs, _ = t.fit()
    assert (best_epoch, epochs) == (1, 5 if branches else 3)


def test_bf16_is_refused_off_the_gpu(encoder_dir, data_file):
    """bf16 autocast is a GPU option (no GPU here to test it on); on the CPU it is refused, not slowed down."""
    with pytest.raises(ValueError, match="bf16 autocast is for GPUs"):
        make_trainer(encoder_dir, data_file, bf16=True)


def scripted_scores(epochs: int, assembly_score: float):
    """Selection and branch scores that depend only on the call count: during training the whole model improves
    every epoch while the text branch is best at epoch 1 and the audio branch at the last; after training, each
    assembly scores `assembly_score`."""
    calls = {"score": 0, "branches": 0}

    def score(outputs, labels, ids):
        calls["score"] += 1
        return 10.0 - calls["score"] if calls["score"] <= epochs else assembly_score

    def branches(outputs, labels, ids):
        calls["branches"] += 1
        return {"text": float(calls["branches"]), "audio": -float(calls["branches"])}
    return score, branches


@pytest.mark.parametrize("assembly_wins", [True, False])
def test_each_branch_keeps_its_best_epoch_only_where_the_assembly_validates_better(encoder_dir, data_file,
                                                                                   assembly_wins):
    epochs = 3
    t = make_trainer(encoder_dir, data_file, early_stop=10, max_epochs=epochs)
    t.score, t.branch_score = scripted_scores(epochs, 0.0 if assembly_wins else 100.0)
    states = {}

    def keep_state(epoch, ulgm):
        states[epoch] = {k: v.detach().clone() for k, v in t.model.state_dict().items()}

    best_epoch, _, valid = t.fit(on_epoch=keep_state)
    assert best_epoch == epochs
    now = t.model.state_dict()
    if assembly_wins:
        # the text branch and the fusion head (the first candidate: the earliest branch epoch's) from epoch 1,
        # the audio branch from epoch 3, the vision branch (no score) from the best single epoch
        assert t.assembly == {"text": 1, "audio": 3, "fusion": 1} and valid["score"] == 0.0
        expect = {"text_model.": 1, "post_text.": 1, "post_fusion.": 1, "audio_model.": 3, "post_audio.": 3,
                  "video_model.": 3, "post_video.": 3}
    else:
        assert t.assembly is None and valid["score"] == 10.0 - epochs
        expect = {"text_model.": 3, "post_text.": 3, "post_fusion.": 3, "audio_model.": 3}
    for prefix, epoch in expect.items():
        names = [k for k in now if k.startswith(prefix)]
        assert names and all(torch.equal(now[k], states[epoch][k]) for k in names), prefix
    assert not all(torch.equal(states[1][k], states[3][k]) for k in now if k.startswith("text_model."))
