"""Feature specs: what an extractor computes, written into every feature file and every model.

A model only works on the features it was trained on, so each extractor describes itself in a FeatureSpec
(name, version, rates, dimension, column names, parameters). The spec travels with the features; comparing
two specs (`diff`) says exactly what differs, and `hash()` gives a short stable fingerprint.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in 1 MB chunks (models, tokenizers and feature files are checked by content)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()



def _canonical(value: Any) -> Any:
    """Plain JSON types only (tuples -> lists, numpy scalars -> python), so equal specs hash equally."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 16000.0 and 16000 are the same rate
    return value


@dataclass(frozen=True)
class FeatureSpec:
    """Describes one extractor's output. rate: input sample rate (Hz) or 0; hop: samples between frames or 0;
    fps: output frames per second (0 for text); dim: columns per frame (text: max token length)."""

    name: str
    version: str
    modality: str  # "text" | "audio" | "vision"
    rate: float = 0
    hop: int = 0
    fps: float = 0
    dim: int = 0
    columns: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "params", _canonical(dict(self.params)))  # equal after a JSON round trip
        if self.columns and len(self.columns) != self.dim:
            raise ValueError(f"spec {self.name}: {len(self.columns)} column names for dim {self.dim}")

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        return _canonical(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known - {"hash"}
        if unknown:
            raise ValueError(f"unknown FeatureSpec keys: {sorted(unknown)}")
        kwargs = {k: v for k, v in d.items() if k in known}
        kwargs["columns"] = tuple(kwargs.get("columns", ()))
        kwargs["params"] = dict(kwargs.get("params", {}))
        return cls(**kwargs)

    def hash(self) -> str:
        """First 16 hex digits of the sha256 of the canonical JSON."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def diff(self, other: FeatureSpec | dict[str, Any]) -> list[str]:
        """Human-readable differences, e.g. ["fps: 10 != 15", "columns: missing ['yaw']"]; [] when equal."""
        a = self.to_dict()
        b = other.to_dict() if isinstance(other, FeatureSpec) else _canonical(
            {k: v for k, v in other.items() if k != "hash"})
        out = []
        for key in sorted(set(a) | set(b)):
            va, vb = a.get(key), b.get(key)
            if va == vb:
                continue
            if key == "columns" and isinstance(va, list) and isinstance(vb, list):
                only_a = [c for c in va if c not in vb]
                only_b = [c for c in vb if c not in va]
                parts = []
                if only_a:
                    parts.append(f"only here {only_a}")
                if only_b:
                    parts.append(f"only there {only_b}")
                if not parts:
                    parts.append("same names, different order")
                out.append("columns: " + "; ".join(parts))
            elif key == "params" and isinstance(va, dict) and isinstance(vb, dict):
                for p in sorted(set(va) | set(vb)):
                    if va.get(p) != vb.get(p):
                        out.append(f"params.{p}: {va.get(p)!r} != {vb.get(p)!r}")
            else:
                out.append(f"{key}: {va!r} != {vb!r}")
        return out


@dataclass
class Extracted:
    """An extractor's result: frames (T, D) float32, or None with the reason the modality is missing."""

    frames: np.ndarray | None
    missing: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def present(self) -> bool:
        return self.frames is not None
