"""Feature-file loading / writing, the torch Dataset, and the synthetic generator."""

import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from selfmm.data import (
    FeatureFile,
    MMSADataset,
    Split,
    load_feature_file,
    make_loader,
    save_feature_file,
    synth_feature_file,
)

ROOT = Path(__file__).resolve().parents[1]


def mmsa_split(n: int = 3, L: int = 5, ta: int = 4, da: int = 2, tv: int = 3, dv: int = 2) -> dict:
    """A split the way MMSA pickles store it: float64 features and text_bert, (N, 1) labels, extra keys."""
    rng = np.random.default_rng(0)
    ids = np.zeros((n, 3, L))
    ids[:, 0, :3] = [101, 2000, 102]
    ids[:, 1, :3] = 1
    return {
        "id": np.array([f"vid{i}$_${i}" for i in range(n)]),
        "raw_text": np.array(["good"] * n),
        "text": rng.normal(size=(n, L, 8)),  # frozen BERT features: must be ignored
        "text_bert": ids,
        "audio": rng.normal(size=(n, ta, da)),
        "audio_lengths": np.array([ta] * n),
        "vision": rng.normal(size=(n, tv, dv)),
        "vision_lengths": np.array([tv] * n),
        "regression_labels": np.linspace(-1, 1, n).reshape(n, 1),
        "annotations": np.array(["Negative"] * n),
        "classification_labels": np.zeros(n),
    }


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "f.pkl"
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path


def three(split: dict) -> dict:
    return {"train": split, "valid": mmsa_split(), "test": mmsa_split()}


def test_load_casts_like_mmsa(tmp_path):
    f = load_feature_file(write(tmp_path, three(mmsa_split())))
    s = f["train"]
    assert isinstance(s, Split) and len(s) == 3 and f.specs is None and f.nonfinite == {}
    assert s.text_ids.dtype == s.text_mask.dtype == np.int64 and s.text_ids.shape == (3, 5)
    assert s.text_ids[0, :4].tolist() == [101, 2000, 102, 0] and s.text_mask[0].tolist() == [1, 1, 1, 0, 0]
    assert s.audio.dtype == s.vision.dtype == np.float32
    assert s.audio_lengths.dtype == s.vision_lengths.dtype == np.int64
    assert s.labels.dtype == np.float32 and s.labels.shape == (3,)
    assert f.feature_dims == (5, 2, 2) and (s.audio_len, s.vision_len) == (4, 3)


def test_inf_and_nan_become_zero(tmp_path):
    d = mmsa_split()
    d["audio"][0, 0, 0] = -np.inf  # COVAREP log(0): zeroed silently like MMSA
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = load_feature_file(write(tmp_path, three(d)))["train"]
    assert s.audio[0, 0, 0] == 0.0

    d["audio"][1, 1, 1] = np.nan
    d["vision"][2, 0, 1] = np.inf
    d["vision"][2, 1, 1] = -np.inf
    with pytest.warns(UserWarning, match="NaN/inf"):
        f = load_feature_file(write(tmp_path, three(d)))
    s = f["train"]
    assert f.nonfinite == {"train/audio": 1, "train/vision": 2}
    assert np.isfinite(s.audio).all() and np.isfinite(s.vision).all()
    assert s.audio[1, 1, 1] == 0.0 and s.vision[2, 0, 1] == 0.0 and s.vision[2, 1, 1] == 0.0


def test_lengths_clipped_and_defaulted(tmp_path):
    d = mmsa_split(ta=4, tv=3)
    d["audio_lengths"] = np.array([9, -1, 2])  # old MMSA files: lengths beyond the padded length
    del d["vision_lengths"]  # aligned files carry no lengths: full length
    s = load_feature_file(write(tmp_path, three(d)))["train"]
    assert s.audio_lengths.tolist() == [4, 0, 2]
    assert s.vision_lengths.tolist() == [3, 3, 3]


def test_aligned_files_run_audio_and_vision_over_the_text_length(tmp_path):
    """MMSA's aligned files hold one audio / vision row per word piece and no lengths; MMSA's Self-MM
    (need_data_aligned) reads them up to the text length, not the padded length."""
    d = mmsa_split(L=5, ta=5, tv=5)
    d["text_bert"][1, 1, :] = [1, 1, 1, 1, 0]  # a longer sentence: 4 word pieces
    del d["audio_lengths"], d["vision_lengths"]
    s = load_feature_file(write(tmp_path, three(d)))["train"]
    assert s.audio_lengths.tolist() == s.vision_lengths.tolist() == [3, 4, 3]


def test_bad_files_are_refused(tmp_path):
    d = mmsa_split()
    del d["text_bert"]
    with pytest.raises(ValueError, match="text_bert"):
        load_feature_file(write(tmp_path, three(d)))
    d = mmsa_split()
    d["regression_labels"][0] = np.nan
    with pytest.raises(ValueError, match="labels"):
        load_feature_file(write(tmp_path, three(d)))
    with pytest.raises(ValueError, match="missing splits"):
        load_feature_file(write(tmp_path, {"train": mmsa_split()}))
    with pytest.raises(ValueError, match="differ"):
        load_feature_file(write(tmp_path, {"train": mmsa_split(), "valid": mmsa_split(da=3), "test": mmsa_split()}))


def test_round_trip(tmp_path):
    data = synth_feature_file("sims", 6, 3, 2, seed=1, audio_len=7, vision_len=5, missing_rate=0.5)
    path = tmp_path / "a" / "synth.pkl"
    save_feature_file(path, data)
    f = load_feature_file(path)
    for name in ("train", "valid", "test"):
        d, s = data[name], f[name]
        assert s.ids.tolist() == d["id"].tolist() and s.raw_text.tolist() == d["raw_text"].tolist()
        np.testing.assert_array_equal(s.text_ids, d["text_bert"][:, 0])
        np.testing.assert_array_equal(s.audio, d["audio"])
        np.testing.assert_array_equal(s.vision_lengths, d["vision_lengths"])
        np.testing.assert_array_equal(s.labels, d["regression_labels"])
        np.testing.assert_array_equal(s.unimodal_labels["V"], d["regression_labels_V"])

    # FeatureFile -> file -> FeatureFile keeps everything, specs included
    f.specs = {"audio": {"name": "x", "dim": 33}}
    save_feature_file(path, f)
    g = load_feature_file(path)
    assert g.specs == f.specs and not list(path.parent.glob("*.tmp"))
    for name in ("train", "valid", "test"):
        for key, value in vars(f[name]).items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(getattr(g[name], key), value, err_msg=key)
    raw = pickle.loads(path.read_bytes())["train"]
    assert raw["text_bert"].shape == (6, 3, 39) and raw["text_bert"].dtype == np.float32
    assert (raw["text_bert"][:, 2] == 0).all()  # token_type_ids
    assert set(raw["annotations"]) <= {"Negative", "Neutral", "Positive"}
    np.testing.assert_array_equal(raw["classification_labels"], np.sign(raw["regression_labels"]) + 1)


def test_dataset_items_and_loader():
    split = FeatureFile.from_dict(synth_feature_file("mosi", 10, 2, 2, seed=0, audio_len=6, vision_len=4))["train"]
    item = MMSADataset(split)[3]
    keys = {"index", "text_ids", "text_mask", "audio", "audio_lengths", "vision", "vision_lengths", "labels"}
    assert set(item) == keys
    assert item["index"] == 3
    assert item["text_ids"].dtype == torch.int64 and item["text_ids"].shape == (50,)
    assert item["audio"].shape == (6, 5) and item["audio"].dtype == torch.float32
    assert item["vision"].shape == (4, 20) and item["audio_lengths"].dtype == torch.int64
    assert item["labels"].dtype == torch.float32 and item["labels"].shape == ()

    batches = list(make_loader(split, batch_size=4, shuffle=True, seed=7))
    assert [len(b["index"]) for b in batches] == [4, 4, 2]  # drop_last=False
    b = batches[0]
    assert b["audio"].shape == (4, 6, 5) and b["audio_lengths"].shape == (4,) and b["labels"].shape == (4,)
    order = torch.cat([b["index"] for b in batches]).tolist()
    assert sorted(order) == list(range(10))
    again = torch.cat([b["index"] for b in make_loader(split, 4, True, seed=7)]).tolist()
    assert order == again
    assert torch.equal(b["labels"], torch.from_numpy(split.labels[b["index"].numpy()]))
    plain = torch.cat([b["index"] for b in make_loader(split, 4, False)]).tolist()
    assert plain == list(range(10))


def test_sims_items_carry_unimodal_labels():
    split = FeatureFile.from_dict(synth_feature_file("sims", 4, 1, 1, audio_len=5, vision_len=5))["train"]
    item = MMSADataset(split)[0]
    assert {"labels_T", "labels_A", "labels_V"} <= set(item)


@pytest.mark.parametrize(
    "dataset, dims, lens, label_max, step",
    [
        ("mosi", (50, 5, 20), (375, 500), 3.0, 0.2),
        ("mosei", (50, 74, 35), (500, 500), 3.0, 1 / 3),
        ("sims", (39, 33, 709), (400, 55), 1.0, 0.2),
    ],
)
def test_synth_shapes_and_labels(dataset, dims, lens, label_max, step):
    data = synth_feature_file(dataset, 40, 2, 2, seed=3)
    d = data["train"]
    assert d["text_bert"].shape == (40, 3, dims[0])
    assert d["audio"].shape == (40, lens[0], dims[1]) and d["vision"].shape == (40, lens[1], dims[2])
    labels = d["regression_labels"]
    assert np.abs(labels).max() <= label_max + 1e-6 and labels.min() < 0 < labels.max()
    np.testing.assert_allclose(labels / step, np.round(labels / step), atol=1e-4)
    assert ("regression_labels_T" in d) == (dataset == "sims")
    ids = d["text_bert"][:, 0]
    assert (ids[:, 0] == 101).all() and ((ids == 102).sum(1) == 1).all()  # [CLS] ... [SEP] pad
    np.testing.assert_array_equal(d["text_bert"][:, 1], ids != 0)


def test_synth_padding_missing_and_determinism():
    a = synth_feature_file("mosi", 60, 5, 5, seed=5, audio_len=12, vision_len=8, missing_rate=0.3)
    b = synth_feature_file("mosi", 60, 5, 5, seed=5, audio_len=12, vision_len=8, missing_rate=0.3)
    np.testing.assert_array_equal(a["train"]["audio"], b["train"]["audio"])
    d = a["train"]
    for m, t in (("audio", 12), ("vision", 8)):
        lengths = d[f"{m}_lengths"]
        assert 5 <= (lengths == 0).sum() <= 35  # about 30 % absent
        assert lengths.max() <= t
        frames = d[m]
        padded = np.arange(t)[None, :] >= lengths[:, None]
        assert (frames[padded] == 0).all() and (frames[~padded] != 0).any(axis=-1).all()


def test_synth_signal_is_learnable():
    # The label follows the means of the first audio / vision columns and the sentiment token ids.
    d = synth_feature_file("mosi", 300, 2, 2, seed=0, audio_len=30, vision_len=30)["train"]
    la, lv = d["audio_lengths"], d["vision_lengths"]
    audio = d["audio"][:, :, :2].sum((1, 2)) / (2 * la)
    vision = d["vision"][:, :, :2].sum((1, 2)) / (2 * lv)
    ids = d["text_bert"][:, 0]
    pos, neg = ((ids >= 1000) & (ids < 1050)).sum(1), ((ids >= 1050) & (ids < 1100)).sum(1)
    text = (pos - neg) / np.maximum(pos + neg, 1)
    for x in (audio, vision, text):
        assert np.corrcoef(x, d["regression_labels"])[0, 1] > 0.6


def test_synth_cli_writes_a_loadable_file(tmp_path):
    out = tmp_path / "mosei.pkl"
    cmd = [sys.executable, "-m", "selfmm.data", "synth", "--out", str(out), "--dataset", "mosei", "--train", "8",
           "--valid", "3", "--test", "2", "--seed", "1", "--audio-len", "10", "--vision-len", "6", "--text-len", "20",
           "--missing-rate", "0.5"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    f = load_feature_file(out)
    assert f.feature_dims == (20, 74, 35)
    assert [len(f[s]) for s in ("train", "valid", "test")] == [8, 3, 2]
    assert f["train"].audio.shape == (8, 10, 74) and f["train"].vision.shape == (8, 6, 35)
    r = subprocess.run([sys.executable, "-m", "selfmm.data", "info", str(out)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "(20, 74, 35)" in r.stdout
