"""Face features from a learned expression embedding: the small CNN of selfmm.face_cnn, run by ONNX Runtime.

Each frame's largest face is found (FaceMesh, or the full-range detector then FaceMesh on its crop), cropped to
48x48 grey with the eyes level and framed like FER2013's faces (face_finder.crop_face), and the CNN's embedding is
the frame's feature vector, at 5 frames/s. The CNN file is part of the spec (its SHA-256), so a model trained on
one embedding refuses another. Training data that are face crops already (FER2013, CK+) go through `embed`
directly: the same network, without the finder.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from .spec import Extracted, FeatureSpec, file_sha256
from .vision import TrackedFaces, face_stats

NAME = "face-cnn"
FPS = 5.0  # half FaceMesh's 10: the mean over a clip's faces barely moves, the CPU work halves
SIZE = 48


class FaceEmbeddingExtractor(TrackedFaces):
    """extract(frames (T, H, W, 3) uint8 RGB, fps) -> Extracted((T', D) float32 at 5 fps, or None + reason)."""

    def __init__(self, model_path: str | Path, fps: float = FPS, threads: int = 1, finder=None):
        from ..contract import open_session
        from .face_finder import FaceFinder

        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"face embedding model {self.model_path} not found")
        self.session = open_session(self.model_path, threads)
        self.input = self.session.get_inputs()[0].name
        dim = int(self.session.get_outputs()[0].shape[1])
        self.fps = fps
        self.finder = finder or FaceFinder()
        self._lock = threading.Lock()
        self.spec = FeatureSpec(
            name=NAME, version="1", modality="vision", fps=fps, dim=dim,
            params={"file": self.model_path.name, "sha256": file_sha256(self.model_path)[:16],
                    "crop": f"{SIZE}x{SIZE} grey, eyes level, framed like FER2013", "output": "embedding",
                    "follow": "largest face", "no_face_frames": "skipped", **self.finder.params})

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, 48, 48) grey crops (uint8 or float in [0, 255]) -> (N, D) float32 embeddings."""
        if len(crops) == 0:
            return np.zeros((0, self.spec.dim), np.float32)
        out = [self.session.run(None, {self.input: crops[i:i + 256].astype(np.float32)})[0]
               for i in range(0, len(crops), 256)]
        return np.concatenate(out).astype(np.float32)

    def read(self, n: int, found: list[tuple[float, np.ndarray, np.ndarray]], counts: dict[str, int]) -> Extracted:
        from .face_finder import crop_face

        crops = [crop_face(frame, points, SIZE) for _, frame, points in found]
        stats = face_stats(n, [t for t, _, _ in found], counts)
        if not crops:
            return Extracted(None, f"no face found in any of {n} frames", stats)
        return Extracted(self.embed(np.stack(crops)), None, stats)
