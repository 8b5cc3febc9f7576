"""Feature specs: what names an extractor's output, hashed and compared."""
from __future__ import annotations

import json

import pytest

from selfmm.features import FeatureSpec


def test_spec_round_trip_hash_and_diff():
    a = FeatureSpec("x", "1", "audio", rate=16000, hop=800, fps=20.0, dim=2, columns=("a", "b"),
                    params={"n": 1, "t": (1, 2)})
    b = FeatureSpec.from_dict(json.loads(json.dumps(a.to_dict())))
    assert b == a and b.hash() == a.hash() and len(a.hash()) == 16
    assert a.diff(b) == [] and a.diff(a.to_dict()) == []
    c = FeatureSpec("x", "1", "audio", rate=16000, hop=800, fps=25.0, dim=2, columns=("a", "c"), params={"n": 2})
    d = a.diff(c)
    assert c.hash() != a.hash()
    assert any(s.startswith("fps:") for s in d)
    assert any("columns" in s and "'b'" in s and "'c'" in s for s in d)
    assert any(s.startswith("params.n") for s in d) and any(s.startswith("params.t") for s in d)
    with pytest.raises(ValueError):
        FeatureSpec("x", "1", "audio", dim=3, columns=("a",))


def test_extractor_specs_name_every_column(pipeline):
    specs = pipeline.specs
    assert set(specs) == {"text", "audio", "vision"}
    for m in ("audio", "vision"):
        s = specs[m]
        assert s.dim == len(s.columns) == len(set(s.columns)) > 10
        assert s.fps > 0 and s.modality == m
        assert FeatureSpec.from_dict(s.to_dict()).hash() == s.hash()
    assert specs["audio"].rate == 16000 and specs["audio"].fps == 20
    assert specs["vision"].fps == 10
    assert specs["text"].dim == 50
