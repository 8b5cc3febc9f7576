"""Dataset preparation: a folder of generated clips + a label CSV -> an MMSA feature file."""
from __future__ import annotations

import csv
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness import media

pytestmark = pytest.mark.skipif(not media.have_espeak(), reason="espeak-ng is not installed")

MMSA_HEADER = ["video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V", "annotation", "mode"]


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture(scope="session")
def mmsa_dataset(tmp_path_factory):
    """MMSA-FET layout: Raw/<video_id>/<clip_id>.<ext>, with a corrupt clip and one without a file."""
    root = tmp_path_factory.mktemp("mmsa")
    raw = root / "Raw"
    clips = {
        ("vidA", "1"): media.clip("face+speech", 3.0, ".mp4"),
        ("vidA", "2"): media.clip("face+speech", 2.0, ".mkv", text="This was a terrible waste of time."),
        ("vidB", "1"): media.clip("face+silence", 2.0, ".mp4"),
        ("vidB", "2"): media.clip("speech", 2.0, ".flac"),  # audio only
        ("vidC", "1"): media.clip("noface+speech", 2.0, ".webm"),
        ("vidC", "2"): media.clip("face+speech", 5.0, ".mp4"),
    }
    for (v, c), src in clips.items():
        (raw / v).mkdir(parents=True, exist_ok=True)
        shutil.copy(src, raw / v / f"{c}{src.suffix}")
    (raw / "vidD").mkdir()
    (raw / "vidD" / "1.mp4").write_bytes(b"\x00not a video at all" * 50)  # corrupt
    rows = [
        ["vidA", "1", "", 2.4, 2.0, 1.0, 1.6, "Positive", "train"],  # empty text -> Whisper
        ["vidA", "2", "this was a terrible waste of time", -2.2, -2.0, -1.0, -0.4, "Negative", "train"],
        ["vidB", "1", "", 0.0, 0.0, 0.0, 0.0, "Neutral", "train"],  # silence -> no text
        ["vidB", "2", "i love it", 1.2, 1.0, 0.8, 0.0, "Positive", "valid"],
        ["vidC", "1", "it was fine i guess", 0.4, 0.2, 0.0, -0.2, "Positive", "test"],
        ["vidC", "2", "", 1.8, 1.6, 1.2, 1.0, "Positive", "test"],
        ["vidD", "1", "broken", -1.0, -1.0, -1.0, -1.0, "Negative", "test"],
        ["vidE", "1", "no file", 1.0, 1.0, 1.0, 1.0, "Positive", "test"],
    ]
    labels = _write_csv(root / "label.csv", MMSA_HEADER, rows)
    return raw, labels, root


@pytest.fixture(scope="session")
def prepared(mmsa_dataset):
    from selfmm.prepare import prepare

    raw, labels, root = mmsa_dataset
    out = root / "out" / "features.pkl"
    report = prepare(raw, labels, out, workers=1)
    return out, report


def test_feature_file_layout(prepared, mmsa_dataset):
    out, report = prepared
    with open(out, "rb") as f:
        data = pickle.load(f)
    assert {"train", "valid", "test", "specs"} <= set(data)
    assert set(data["specs"]) == {"text", "audio", "vision"}
    assert [len(data[s]["id"]) for s in ("train", "valid", "test")] == [3, 1, 2]
    train = data["train"]
    assert list(train["id"]) == ["vidA$_$1", "vidA$_$2", "vidB$_$1"]
    n, a_len, a_dim = train["audio"].shape
    assert train["text_bert"].shape == (3, 3, 50) and train["text_bert"].dtype == np.float32
    assert a_dim == data["specs"]["audio"]["dim"] and train["audio"].dtype == np.float32
    assert train["vision"].shape[2] == data["specs"]["vision"]["dim"]
    assert train["audio_lengths"].dtype == np.int64 and train["vision_lengths"].dtype == np.int64
    assert train["regression_labels"].dtype == np.float32
    assert list(train["annotations"]) == ["Positive", "Negative", "Neutral"]
    assert list(train["classification_labels"]) == [2, 0, 1]
    np.testing.assert_allclose(train["regression_labels_T"], [2.0, -2.0, 0.0])
    for split in ("train", "valid", "test"):
        d = data[split]
        assert d["audio"].shape[1:] == (a_len, a_dim)  # one padded length for the whole file
        for m in ("audio", "vision"):  # padding is zeros and lengths are clipped
            for x, length in zip(d[m], d[f"{m}_lengths"]):
                assert length <= x.shape[0] and not x[length:].any()


def test_padding_follows_mmsa(prepared):
    out, report = prepared
    with open(out, "rb") as f:
        data = pickle.load(f)
    for m, fps in (("audio", 20), ("vision", 10)):
        lengths = np.concatenate([data[s][f"{m}_lengths"] for s in ("train", "valid", "test")])
        present = lengths[lengths > 0]
        # With fewer than 11 clips mean + 3 std never cuts, so these are the unclipped lengths.
        expected = int(min(present.max(), int(present.mean() + 3 * present.std())))
        assert data["train"][m].shape[1] == report["padded_length"][m] == expected
        assert abs(present.max() - 5.0 * fps) <= 2  # the 5 s clip


def test_missing_modalities_and_transcripts(prepared):
    out, report = prepared
    with open(out, "rb") as f:
        data = pickle.load(f)
    train, valid, test = data["train"], data["valid"], data["test"]
    # vidA/1: Whisper filled the empty text.
    assert "love" in train["raw_text"][0].lower() and train["text_bert"][0, 1].sum() > 5
    # vidA/2: the given text is used, not Whisper's.
    assert train["raw_text"][1] == "this was a terrible waste of time"
    # vidB/1: silent: audio and text missing, the face is there.
    assert train["audio_lengths"][2] == 0 and not train["text_bert"][2, 1].any() and train["raw_text"][2] == ""
    assert train["vision_lengths"][2] > 0
    # vidB/2: audio only: vision missing.
    assert valid["vision_lengths"][0] == 0 and valid["audio_lengths"][0] > 0
    # vidC/1: no face.
    assert test["vision_lengths"][0] == 0 and test["audio_lengths"][0] > 0
    assert report["transcripts"] == {"given": 3, "whisper": 3, "none": 0}
    assert report["missing"]["audio"] == {"silence": 1}
    assert report["missing"]["text"] == {"no recognisable speech": 1}
    assert sum(report["missing"]["vision"].values()) == 2


def test_unreadable_and_absent_clips_are_reported(prepared):
    out, report = prepared
    assert set(report["skipped"]) == {"vidD$_$1", "vidE$_$1"}
    assert "not a readable" in report["skipped"]["vidD$_$1"]
    assert "no media file" in report["skipped"]["vidE$_$1"]
    saved = json.loads(out.with_name(out.name + ".report.json").read_text())
    assert saved["skipped"] == report["skipped"] and saved["written"] == 6


def test_loads_with_selfmm_data(prepared):
    data_mod = pytest.importorskip("selfmm.data")
    out, _ = prepared
    ff = data_mod.load_feature_file(out)
    train = ff["train"]
    assert len(train) == 3 and train.text_ids.shape == (3, 50)
    assert ff.specs["audio"]["columns"][0] == "f0_oct"
    assert set(train.unimodal_labels) == {"T", "A", "V"}


def test_resume_uses_the_cache(prepared, mmsa_dataset, capsys):
    from selfmm.prepare import prepare

    raw, labels, root = mmsa_dataset
    out, first = prepared
    out2 = out.with_name("again.pkl")
    report = prepare(raw, labels, out2, cache_dir=Path(first["cache"]).parent)
    assert "6 cached, 1 to extract" in capsys.readouterr().err  # the corrupt clip is tried again
    with open(out, "rb") as f1, open(out2, "rb") as f2:
        a, b = pickle.load(f1), pickle.load(f2)
    for split in ("train", "valid", "test"):
        for key in ("audio", "vision", "text_bert", "audio_lengths", "vision_lengths"):
            np.testing.assert_array_equal(a[split][key], b[split][key])
    assert report["skipped"] == first["skipped"]


def test_interrupted_run_resumes(mmsa_dataset, tmp_path, monkeypatch):
    """A run that dies after two clips leaves their cache files; the next run extracts only the rest."""
    import selfmm.prepare as P

    raw, labels, root = mmsa_dataset
    out = tmp_path / "f.pkl"
    real, calls = P._extract_one, []

    def dying(*args):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(args[0])
        return real(*args)

    monkeypatch.setattr(P, "_extract_one", dying)
    with pytest.raises(KeyboardInterrupt):
        P.prepare(raw, labels, out, asr="never", vision=False)
    assert not out.exists() and len(list((tmp_path / "f.cache").rglob("*.npz"))) == 2
    calls.clear()
    monkeypatch.setattr(P, "_extract_one", lambda *a: (calls.append(a[0]), real(*a))[1])
    report = P.prepare(raw, labels, out, asr="never", vision=False)
    assert len(calls) == 5  # 7 files, 2 cached; the corrupt one is tried again
    assert report["written"] == 6 and report["transcripts"]["none"] == 3
    assert report["missing"]["vision"] == {"vision disabled": 6}


def test_mosi_layout_and_cli(tmp_path):
    from selfmm.prepare import main

    videos = tmp_path / "Segmented"
    videos.mkdir()
    shutil.copy(media.clip("face+speech", 2.0, ".mp4"), videos / "abcDEF_1.mp4")
    shutil.copy(media.clip("speech", 2.0, ".wav"), videos / "abcDEF_2.wav")
    shutil.copy(media.clip("face+speech", 2.0, ".mp4"), videos / "xyz_10.mp4")
    labels = _write_csv(tmp_path / "label.csv", ["id", "text", "label", "mode"], [
        ["abcDEF_1", "i really love this movie", "2.2", "train"],
        ["abcDEF_2", "it is ok", "0.2", "dev"],
        ["xyz_10", "", "-1.5", "test"],
    ])
    out = tmp_path / "mosi.pkl"
    assert main(["--videos", str(videos), "--labels", str(labels), "--out", str(out), "--no-vision",
                 "--audio", "whisper-encoder"]) == 0
    with open(out, "rb") as f:
        data = pickle.load(f)
    assert list(data["train"]["id"]) == ["abcDEF$_$1"] and list(data["valid"]["id"]) == ["abcDEF$_$2"]
    assert list(data["test"]["id"]) == ["xyz$_$10"] and "love" in data["test"]["raw_text"][0].lower()
    assert (data["train"]["vision_lengths"] == 0).all() and "vision" not in data["specs"]
    assert data["specs"]["audio"]["name"] == "whisper-encoder" and data["train"]["audio"].shape[2] == 384
    assert 18 <= data["train"]["audio_lengths"][0] <= 21  # 2 s at 10 frames/s
    assert "regression_labels_T" not in data["train"]


def test_label_csv_errors(tmp_path):
    from selfmm.prepare import read_labels

    bad = _write_csv(tmp_path / "a.csv", ["id", "text", "label", "mode"], [["x_1", "t", "1", "training"]])
    with pytest.raises(ValueError, match="mode"):
        read_labels(bad)
    bad = _write_csv(tmp_path / "b.csv", ["name", "label"], [["x", "1"]])
    with pytest.raises(ValueError, match="lack"):
        read_labels(bad)
    bad = _write_csv(tmp_path / "c.csv", ["id", "text", "label", "mode"], [["x_1", "t", "1", "train"]] * 2)
    with pytest.raises(ValueError, match="duplicate"):
        read_labels(bad)


@pytest.mark.slow
def test_readme_recipe_prepare_train_export_analyze(prepared, mmsa_dataset, tmp_path):
    """The README's recipe for a model trained on one's own raw videos, end to end on generated clips:
    prepare -> selfmm.train (the real MiniLM encoder) -> export -> demo.analyze with that model."""
    import subprocess
    import sys

    from selfmm.features.text import default_encoder_dir

    out, _ = prepared
    run = lambda *cmd: subprocess.run([sys.executable, "-m", *cmd], capture_output=True, text=True, timeout=600)  # noqa: E731
    train = run("selfmm.train", "--dataset", "mosi", "--data", str(out), "--text-encoder", str(default_encoder_dir()),
                "--out", str(tmp_path / "run"), "--seeds", "1111", "--max-epochs", "1", "--batch-size", "2", "--quiet")
    assert train.returncode == 0, train.stderr[-2000:]
    export = run("export", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--out", str(tmp_path / "model"))
    assert export.returncode == 0, export.stderr[-2000:]
    card = json.loads((tmp_path / "model" / "card.json").read_text())
    assert card["feature_specs"]["audio"]["name"] == "selfmm-audio"
    analyze = run("demo.analyze", str(media.clip("face+speech", 3.0, ".mp4")), "--model", str(tmp_path / "model"), "--json")
    assert analyze.returncode == 0, analyze.stderr[-2000:]
    result = json.loads(analyze.stdout.strip().splitlines()[-1])
    assert result["scores"]["M"] is not None and result["scores"]["T"] is not None
    assert "love" in result["transcript"].lower()
