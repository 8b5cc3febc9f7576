"""Fixtures that several test modules share."""
from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory) -> dict:
    """Checkpoint, feature file and its fp32 artifact of the tiny model (exported through the CLI), made once per
    test session and shared read-only by test_export.py and test_artifact.py."""
    from tests.support.tiny_model import CARD_EXTRA, make_checkpoint, run_export

    root = tmp_path_factory.getbasetemp() / "tiny-export"
    ckpt, data, out = root / "best.pt", root / "synth.pkl", root / "artifact"
    if not (out / "card.json").exists():
        ckpt, data = make_checkpoint(root)
        proc = run_export("--checkpoint", str(ckpt), "--out", str(out), "--eval-data", str(data),
                          "--card-extra", json.dumps(CARD_EXTRA))
        assert proc.returncode == 0, proc.stderr
    return {"checkpoint": ckpt, "data": data, "out": out, "card": json.loads((out / "card.json").read_text())}


@pytest.fixture(scope="session")
def pipeline():
    """The default FeaturePipeline, warmed up, shared by the feature tests."""
    from selfmm.features import FeaturePipeline

    with FeaturePipeline() as p:
        p.warm_up()
        yield p


@pytest.fixture(scope="session")
def full_clip():
    """A 4 s mp4 of espeak-ng speech over the moving astronaut photo."""
    from harness import media

    return media.clip("face+speech", 4.0, ".mp4")


@pytest.fixture(scope="session")
def full(pipeline, full_clip):
    """That clip's extracted features."""
    return pipeline.extract(full_clip)
