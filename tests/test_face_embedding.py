"""The learned face features: the face CNN exported to ONNX, run on face crops by ONNX Runtime (no torch), with
its file's hash in the spec; and the export that ships it beside the model."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from selfmm.face_cnn import FaceCNN, FaceCNNConfig, augment, export_onnx, run


@pytest.fixture(scope="module")
def cnn(tmp_path_factory) -> tuple[FaceCNN, Path]:
    torch.manual_seed(0)
    model = FaceCNN(FaceCNNConfig()).eval()
    path = tmp_path_factory.mktemp("face") / "face_cnn.onnx"
    export_onnx(model, path)
    return model, path


def astronaut_frames(n: int = 6) -> np.ndarray:
    from skimage.data import astronaut

    return np.stack([astronaut()[4:244, 64 + i:384 + i] for i in range(n)])  # 320x240, drifting, as the examples


def test_onnx_embedding_equals_pytorch(cnn):
    from selfmm.features.face_embedding import FaceEmbeddingExtractor

    model, path = cnn
    crops = np.random.default_rng(0).integers(0, 256, (5, 48, 48)).astype(np.uint8)
    extractor = FaceEmbeddingExtractor(path)
    got = extractor.embed(crops)
    want, _ = run(model, crops)
    assert got.shape == (5, FaceCNNConfig.embed_dim) and got.dtype == np.float32
    assert np.abs(got - want).max() < 1e-4
    extractor.close()


def test_spec_names_the_network_by_its_hash(cnn, tmp_path):
    from selfmm.features.face_embedding import FaceEmbeddingExtractor
    from selfmm.features.spec import file_sha256

    _, path = cnn
    extractor = FaceEmbeddingExtractor(path)
    assert extractor.spec.name == "face-cnn" and extractor.spec.params["sha256"] == file_sha256(path)[:16]
    other = tmp_path / "face_cnn.onnx"
    torch.manual_seed(1)
    export_onnx(FaceCNN(FaceCNNConfig()).eval(), other)
    retrained = FaceEmbeddingExtractor(other)
    assert any(d.startswith("params.sha256") for d in extractor.spec.diff(retrained.spec))
    extractor.close()
    retrained.close()
    with pytest.raises(FileNotFoundError):
        FaceEmbeddingExtractor(tmp_path / "missing.onnx")


def test_extracts_one_embedding_per_face_frame_and_reports_no_face(cnn):
    from selfmm.features.face_embedding import FaceEmbeddingExtractor

    _, path = cnn
    extractor = FaceEmbeddingExtractor(path)
    got = extractor.extract(astronaut_frames(), fps=extractor.fps)  # at its own rate: every frame is read
    assert got.present and got.frames.shape == (6, FaceCNNConfig.embed_dim)
    assert got.stats["frames_with_face"] == 6 and len(got.stats["times"]) == 6
    blank = extractor.extract(np.full((4, 240, 320, 3), 128, np.uint8), fps=extractor.fps)
    assert not blank.present and "no face" in blank.missing and blank.stats["frames_skipped"] == 4
    assert not extractor.extract(None).present
    extractor.close()


def test_pipeline_builds_the_extractor_the_name_says(cnn):
    from selfmm.features.pipeline import FeaturePipeline

    _, path = cnn
    with FeaturePipeline(use_asr=False, vision_features="face-cnn", vision_model=path, parallel=False) as p:
        assert p.specs["vision"].name == "face-cnn"
    with pytest.raises(ValueError, match="ONNX file"):
        FeaturePipeline(use_asr=False, vision_features="face-cnn", parallel=False)


def test_augment_flips_and_shifts_within_bounds():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(48 * 48, dtype=torch.float32).view(1, 48, 48).repeat(16, 1, 1)
    y = augment(x, 4, g)
    assert y.shape == x.shape and y.min() >= x.min() and y.max() <= x.max()
    assert not torch.equal(y, x)  # some moved


def test_export_ships_only_the_extractor_file_the_spec_names(cnn, tmp_path):
    from export.build import _check_extractor_file
    from export.onnx_export import ExportError
    from selfmm.features.spec import file_sha256

    _, path = cnn
    specs = {"vision": {"name": "face-cnn", "params": {"file": path.name, "sha256": file_sha256(path)[:16]}}}
    _check_extractor_file(path, specs)
    other = tmp_path / path.name
    other.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ExportError, match="SHA-256"):
        _check_extractor_file(other, specs)
    with pytest.raises(ExportError, match="not named"):
        _check_extractor_file(tmp_path / "something.onnx", specs)
