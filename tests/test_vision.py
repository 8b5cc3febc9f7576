"""FaceMesh face features of the astronaut photo as video: found, stable, invariant, missing."""
from __future__ import annotations

import numpy as np
import pytest

from harness import media

pytestmark = pytest.mark.skipif(not media.have_espeak(), reason="espeak-ng is not installed")


def test_face_found_in_nearly_every_frame_and_features_are_stable(full, pipeline):
    v = full.vision
    stats = full.stats["vision"]
    assert stats["frames"] == 40 and stats["frames_with_face"] >= 38
    assert v.shape == (stats["frames_with_face"], pipeline.face.spec.dim) and v.dtype == np.float32
    assert np.isfinite(v).all()
    cols = pipeline.face.spec.columns
    # The photo only moves and zooms: the expression stays put.
    expression = [cols.index(c) for c in ("mouth_open", "mouth_width", "eye_open", "brow_raise", "jaw_open")]
    assert (v[:, expression].std(0) < 0.05 * np.abs(v[:, expression].mean(0)) + 0.01).all()
    assert v[:, cols.index("mouth_corner_lift")].mean() > 0  # she smiles
    assert len(stats["times"]) == len(v)


def test_face_features_ignore_position_size_and_mirroring(pipeline):
    import cv2
    from skimage import data

    photo = data.astronaut()[:300, 60:460]  # 300 x 400 with the face
    canvas = np.full((480, 640, 3), 90, np.uint8)
    views = []
    for scale, x, y in ((1.0, 0, 0), (0.8, 300, 200), (1.4, 80, 20), (1.0, 120, 100)):
        img = cv2.resize(photo, None, fx=scale, fy=scale)
        c = canvas.copy()
        h, w = min(480 - y, img.shape[0]), min(640 - x, img.shape[1])
        c[y:y + h, x:x + w] = img[:h, :w]
        views.append(c)
    views.append(views[0][:, ::-1])  # mirrored
    feats = [pipeline.face.extract(np.stack([f] * 3), 10).frames.mean(0) for f in views]
    ref = feats[0]
    for f in feats[1:]:
        assert np.abs(f - ref).max() < 0.06, np.abs(f - ref).round(3)


def test_several_faces_follow_the_largest(pipeline):
    import cv2
    import mediapipe as mp
    from skimage import data

    face = data.astronaut()[:260, 100:360]
    big = cv2.resize(face, (300, 300))
    small = cv2.resize(face, (260, 260))
    m = cv2.getRotationMatrix2D((130, 130), 25, 1.0)  # the smaller face is tilted by 25 degrees
    small = cv2.warpAffine(small, m, (260, 260), borderValue=(90, 90, 90))
    canvas = np.full((480, 640, 3), 90, np.uint8)
    canvas[60:360, 10:310] = big
    canvas[120:380, 370:630] = small
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=2) as mesh:
        assert len(mesh.process(canvas).multi_face_landmarks) == 2  # both faces are seen
    cols = pipeline.face.spec.columns
    roll = pipeline.face.extract(np.stack([canvas] * 3), 10).frames[:, cols.index("head_roll_abs")]
    only_small = canvas.copy()
    only_small[60:360, 10:310] = 90
    roll_small = pipeline.face.extract(np.stack([only_small] * 3), 10).frames[:, cols.index("head_roll_abs")]
    assert roll_small.mean() > 0.3  # the smaller face alone is seen tilted
    assert roll.mean() < 0.15  # with both, the larger upright face is followed


def test_no_face_is_missing_with_counts(pipeline):
    frames = media.moving_frames(1.0, 10, "noface")
    r = pipeline.face.extract(frames, 10)
    assert r.frames is None and "no face" in r.missing
    assert r.stats["frames"] == 10 and r.stats["frames_skipped"] == 10
    assert pipeline.face.extract(None).missing == "no video track"
