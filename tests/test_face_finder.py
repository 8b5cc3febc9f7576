"""FaceFinder finds a face too small for FaceMesh alone, and crop_face frames faces like FER2013 (real MediaPipe,
the astronaut photo)."""
from __future__ import annotations

import numpy as np
import pytest

from selfmm.features import face_finder
from selfmm.features.face_finder import crop_face, eye_centres, tiles

slow = pytest.mark.slow
SMALL = 200  # the 512 px photo scaled to this width: a face of about 37 px, under FaceMesh's own detector's reach


def wide_frame(background: int = 0, x: int = 1400, y: int = 150) -> np.ndarray:
    """1920x1080, the small astronaut pasted at (x, y), off-centre."""
    import cv2
    from skimage import data

    frame = np.full((1080, 1920, 3), background, np.uint8)
    frame[y:y + SMALL, x:x + SMALL] = cv2.resize(data.astronaut(), (SMALL, SMALL), interpolation=cv2.INTER_AREA)
    return frame


@pytest.fixture(scope="module")
def finder():
    f = face_finder.FaceFinder()
    yield f
    f.close()


# -- pure geometry, no MediaPipe -----------------------------------------------------------------------------

def test_tiles_cover_large_frames_with_overlap():
    assert tiles(480, 640) == [] and tiles(720, 767) == []  # small frames: the whole-frame detection suffices
    t = tiles(1080, 1920)
    assert {s for _, _, s in t} == {face_finder.TILE}
    covered = np.zeros((1080, 1920), bool)
    for x, y, s in t:
        assert 0 <= x <= 1920 - s and 0 <= y <= 1080 - s
        covered[y:y + s, x:x + s] = True
    assert covered.all()
    xs = sorted({x for x, _, _ in t})
    assert all(b - a <= face_finder.TILE - face_finder.TILE_OVERLAP for a, b in zip(xs, xs[1:]))


def test_crop_face_levels_and_places_the_eyes():
    """Two bright dots where the landmarks say the eyes are, on a frame tilted by 30 degrees: in the crop they
    lie level, where FER2013's eyes lie."""
    import cv2

    right, left = (265, 180), (335, 220)  # pixel indices: a tilt of 30 degrees
    frame = np.zeros((480, 640, 3), np.uint8)
    points = np.zeros((478, 3))
    for eye, corners in ((right, face_finder.EYE_R_CORNERS), (left, face_finder.EYE_L_CORNERS)):
        cv2.circle(frame, eye, 6, (255, 255, 255), -1)
        points[list(corners), :2] = np.add(eye, 0.5)  # landmarks count pixel edges
    crop = crop_face(frame, points, 48)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    found = []
    for half_crop in (crop[:, :24], crop[:, 24:]):
        ys, xs = np.nonzero(half_crop > 128)
        found.append((xs.mean(), ys.mean()))
    (rx, ry), (lx, ly) = found
    lx += 24
    assert abs(ry - ly) < 0.3  # level
    expected_y = face_finder.EYE_Y * 48 - 0.5  # landmarks count pixel edges, the indices pixel centres
    assert abs(ry - expected_y) < 0.3 and abs(ly - expected_y) < 0.3
    assert abs((lx - rx) - face_finder.EYE_DISTANCE * 48) < 0.3
    assert abs((lx + rx) / 2 - (face_finder.EYE_X * 48 - 0.5)) < 0.3
    with pytest.raises(ValueError):
        crop_face(frame, np.zeros((478, 3)))


# -- real MediaPipe --------------------------------------------------------------------------------------------

@slow
@pytest.mark.parametrize("background, x, y", [(0, 1400, 150), (128, 260, 760)])
def test_small_face_in_a_wide_frame_is_found_through_the_detector(finder, background, x, y):
    import mediapipe as mp
    from skimage import data

    frame = wide_frame(background, x, y)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=2, refine_landmarks=True) as mesh:
        assert not mesh.process(frame).multi_face_landmarks  # FaceMesh alone does not see it
        reference = mesh.process(data.astronaut()).multi_face_landmarks[0].landmark  # the photo at full size
    finder.reset()
    points = finder.find(frame)
    assert points is not None and points.shape == (478, 3)
    assert finder.last_source == "detector" and finder.stats() == {"frames_found_by_detector": 1}
    (x0, y0), (x1, y1) = points[:, :2].min(0), points[:, :2].max(0)
    assert x <= x0 < x1 <= x + SMALL and y <= y0 < y1 <= y + SMALL
    # The landmarks agree with those of the full-size photo, scaled down and moved (eyes within 1.5 px).
    expected = np.array([(m.x * SMALL + x, m.y * SMALL + y, m.z * SMALL) for m in reference])
    for found, truth in zip(eye_centres(points), eye_centres(expected)):
        assert np.linalg.norm(found - truth) < 1.5
    # The next frame starts from this frame's crop, and finds the same face.
    again = finder.find(frame)
    assert again is not None and np.abs(again[:, :2] - points[:, :2]).mean() < 1.0
    assert finder.stats() == {"frames_found_by_detector": 2}


@slow
def test_no_face_anywhere_is_none(finder):
    finder.reset()
    rng = np.random.default_rng(0)
    assert finder.find(np.full((1080, 1920, 3), 128, np.uint8)) is None
    assert finder.find(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)) is None
    assert finder.last_source is None and finder.stats() == {"frames_found_by_detector": 0}


@slow
def test_large_face_goes_through_facemesh_alone(finder):
    from skimage import data

    finder.reset()
    assert finder.find(data.astronaut()) is not None and finder.last_source == "mesh"
    assert finder.stats() == {"frames_found_by_detector": 0}


@slow
def test_crop_face_is_fer_sized_and_undoes_roll(finder):
    import cv2
    from skimage import data

    photo = data.astronaut()
    finder.reset()
    points = finder.find(photo)
    upright = crop_face(photo, points)
    assert upright.shape == (48, 48) and upright.dtype == np.uint8 and upright.std() > 20
    def roll(p: np.ndarray) -> float:
        r, l = eye_centres(p)
        return float(np.degrees(np.arctan2(l[1] - r[1], l[0] - r[0])))

    right, left = eye_centres(points)
    rotated = cv2.warpAffine(photo, cv2.getRotationMatrix2D(tuple((right + left) / 2), 20, 1.0), (512, 512),
                             borderMode=cv2.BORDER_REPLICATE)
    finder.reset()
    tilted = finder.find(rotated)
    assert abs(roll(tilted) - roll(points) + 20) < 2  # the copy really is tilted 20 degrees more
    crop = crop_face(rotated, tilted)
    assert np.corrcoef(crop.ravel(), upright.ravel())[0, 1] > 0.97
    assert np.abs(crop.astype(float) - upright).mean() < 8  # grey levels


@slow
def test_face_extractor_finds_the_small_face():
    """A clip of the wide frame: FaceMesh alone (the extractor before FaceFinder) skipped every frame; now every
    frame has a face, found through the detector, with the expression of the same photo seen large."""
    import cv2
    from skimage import data

    from selfmm.features.vision import COLUMNS, FaceExtractor

    extractor = FaceExtractor()
    try:
        small = extractor.extract(np.stack([wide_frame()] * 3), 10)
        large_frame = np.zeros((480, 640, 3), np.uint8)
        large_frame[:, 80:560] = cv2.resize(data.astronaut(), (480, 480))
        large = extractor.extract(np.stack([large_frame] * 3), 10)
    finally:
        extractor.close()
    assert small.missing is None and small.frames.shape == (3, len(COLUMNS))
    assert small.stats["frames_with_face"] == 3 and small.stats["frames_found_by_detector"] == 3
    assert large.stats["frames_found_by_detector"] == 0
    assert np.abs(small.frames.mean(0) - large.frames.mean(0)).max() < 0.05
    assert small.frames[:, COLUMNS.index("mouth_corner_lift")].mean() > 0  # she smiles
