"""Facial expression features from MediaPipe FaceMesh (478 landmarks with irises) at 10 frames/s.

Landmarks are turned into a few numbers that describe the expression, not where the face is or how large:
the mesh is rotated into a face-aligned frame (across the face, down the face, out of it) and divided by the
distance between the outer eye corners, then distances and heights are read off in that frame. The features
are also mirror-invariant (left and right enter only as their mean and the absolute asymmetry, yaw and roll
as magnitudes), so a mirrored webcam image gives the same numbers as the camera's.

Faces are found by face_finder.FaceFinder: FaceMesh with tracking on the whole frame, and, where that finds
none (a face too small for FaceMesh's own detector), MediaPipe's full-range detector and FaceMesh on a crop
around its detection. With several faces the largest is followed. Frames without a face are skipped (and
counted), as MMSA-FET's MediaPipe extractor does; a clip with no face at all is reported missing.
"""
from __future__ import annotations

import threading

import numpy as np

from .face_finder import FaceFinder
from .spec import Extracted, FeatureSpec

FPS = 10.0

COLUMNS = (
    "head_yaw_abs",  # |left-right head turn|, radians (approximate, from the mesh's depth)
    "head_pitch",  # head tilted back (+) or down (-), radians, includes a constant per-face offset
    "head_roll_abs",  # |in-plane head tilt|, radians
    "head_motion",  # nose-tip displacement since the previous face frame, in eye-distance units
    "mouth_open",  # inner lips apart (13-14)
    "mouth_width",  # mouth corners apart (61-291)
    "mouth_corner_lift",  # corners above the lips' centre (+: smile, -: frown), mean of both sides
    "mouth_corner_asym",  # |difference of the two corners' lift|
    "jaw_open",  # nose tip to chin (1-152)
    "upper_lip_to_nose",  # nose base to upper lip (2-0): short when the upper lip is raised
    "eye_open",  # eyelid opening / eye width, mean of both eyes
    "eye_open_asym",  # |difference between the eyes|
    "brow_raise",  # brow above the upper eyelid, mean of both sides
    "brow_raise_asym",  # |difference between the brows|
    "brow_gap",  # inner brow ends apart (55-285): small when frowning
    "gaze_x_abs",  # |sideways iris offset from the eye centre| / eye width
    "gaze_down",  # downward iris offset from the eye centre / eye width
)

# MediaPipe FaceMesh landmark indices (right = the subject's right).
NOSE_TIP, NOSE_BASE, FOREHEAD, CHIN = 1, 2, 10, 152
FACE_RIGHT, FACE_LEFT = 234, 454
LIP_UPPER_OUTER, LIP_UPPER_INNER, LIP_LOWER_INNER = 0, 13, 14
MOUTH_RIGHT, MOUTH_LEFT = 61, 291
EYE_R = dict(outer=33, inner=133, upper=159, lower=145, iris=468)
EYE_L = dict(outer=263, inner=362, upper=386, lower=374, iris=473)
BROW_R = (70, 63, 105, 66, 107)
BROW_L = (300, 293, 334, 296, 336)
BROW_INNER_R, BROW_INNER_L = 55, 285


def landmarks_to_features(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """One face: points (478, 3) in pixels (x, y, z with z scaled like x) -> (features without head_motion
    (16,), nose tip (2,), eye distance). Pure numpy, so it is testable without MediaPipe."""
    p = points.astype(np.float64)
    ex = p[FACE_LEFT] - p[FACE_RIGHT]
    ex /= np.linalg.norm(ex)
    ey = p[CHIN] - p[FOREHEAD]
    ey -= ey.dot(ex) * ex
    ey /= np.linalg.norm(ey)
    ez = np.cross(ex, ey)
    scale = float(np.linalg.norm(p[EYE_L["outer"]] - p[EYE_R["outer"]]))
    local = (p - p[NOSE_TIP]) @ np.stack([ex, ey, ez]).T / scale  # columns: across, down, depth

    def dist(a: int, b: int) -> float:
        return float(np.linalg.norm(local[a] - local[b]))

    yaw = abs(np.arcsin(np.clip(ex[2], -1, 1)))
    pitch = -np.arcsin(np.clip(ey[2], -1, 1))
    roll = abs(np.arctan2(ex[1], ex[0]))

    lips_y = (local[LIP_UPPER_INNER, 1] + local[LIP_LOWER_INNER, 1]) / 2
    lift_r, lift_l = lips_y - local[MOUTH_RIGHT, 1], lips_y - local[MOUTH_LEFT, 1]

    def eye(e: dict) -> tuple[float, float, float]:
        width = dist(e["outer"], e["inner"])
        opening = dist(e["upper"], e["lower"]) / width
        centre = (local[e["outer"]] + local[e["inner"]]) / 2
        centre_y = (local[e["upper"], 1] + local[e["lower"], 1]) / 2
        return opening, (local[e["iris"], 0] - centre[0]) / width, (local[e["iris"], 1] - centre_y) / width

    open_r, gx_r, gy_r = eye(EYE_R)
    open_l, gx_l, gy_l = eye(EYE_L)
    brow_r = local[EYE_R["upper"], 1] - local[list(BROW_R), 1].mean()
    brow_l = local[EYE_L["upper"], 1] - local[list(BROW_L), 1].mean()

    feats = np.array([
        yaw, pitch, roll,
        dist(LIP_UPPER_INNER, LIP_LOWER_INNER), dist(MOUTH_RIGHT, MOUTH_LEFT),
        (lift_r + lift_l) / 2, abs(lift_r - lift_l),
        dist(NOSE_TIP, CHIN), dist(NOSE_BASE, LIP_UPPER_OUTER),
        (open_r + open_l) / 2, abs(open_r - open_l),
        (brow_r + brow_l) / 2, abs(brow_r - brow_l),
        dist(BROW_INNER_R, BROW_INNER_L),
        abs((gx_r + gx_l) / 2), (gy_r + gy_l) / 2,
    ])
    return feats, p[NOSE_TIP, :2], scale


def frame_index(n_frames: int, fps: float, target_fps: float) -> np.ndarray:
    """Indices of the frames to read for `target_fps` from `n_frames` at `fps` (all of them at the same rate)."""
    index = np.arange(n_frames)
    if abs(fps - target_fps) > 1e-6:  # resample by picking frames
        index = np.floor(np.arange(0, n_frames / fps, 1 / target_fps) * fps + 1e-6).astype(int)
        index = index[index < n_frames]
    return index


def track_faces(finder: FaceFinder, lock: threading.Lock, frames, fps: float, target_fps: float
                ) -> tuple[int, list[tuple[float, np.ndarray, np.ndarray]], dict[str, int]]:
    """The clip's frames sampled at `target_fps`, one after the other through `finder` from a clean start (its
    tracking follows one clip: `lock` keeps clips apart). Returns how many frames were read, (time in seconds,
    frame, landmarks) of each one with a face, and the finder's counts."""
    index = frame_index(len(frames), fps, target_fps)
    found = []
    with lock:
        finder.reset()
        for i in index:
            frame = np.ascontiguousarray(frames[i])
            points = finder.find(frame)
            if points is not None:
                found.append((round(float(i / fps), 3), frame, points))
        counts = finder.stats()
    return len(index), found, counts


def face_stats(frames: int, times: list[float], counts: dict[str, int]) -> dict:
    """A face extractor's stats: frames read, with and without a usable face, and the kept frames' times."""
    return {"frames": int(frames), "frames_with_face": len(times), "frames_skipped": int(frames) - len(times),
            "times": times, **counts}


class TrackedFaces:
    """What both face extractors share: one FaceFinder followed through one clip at a time; `read` turns the
    frames with a face into features."""

    fps: float
    finder: FaceFinder
    _lock: threading.Lock

    def close(self) -> None:
        self.finder.close()

    def extract(self, frames: np.ndarray | list | None, fps: float | None = None) -> Extracted:
        if frames is None or len(frames) == 0:
            return Extracted(None, "no video track")
        n, found, counts = track_faces(self.finder, self._lock, frames, fps or self.fps, self.fps)
        return self.read(n, found, counts)

    def read(self, n: int, found: list[tuple[float, np.ndarray, np.ndarray]], counts: dict[str, int]) -> Extracted:
        raise NotImplementedError


class FaceExtractor(TrackedFaces):
    """extract(frames (T, H, W, 3) uint8 RGB, fps) -> Extracted((T', 17) float32 at 10 fps, or None + reason)."""

    def __init__(self, fps: float = FPS, max_num_faces: int = 2, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5):
        self.fps = fps
        self.finder = FaceFinder(max_num_faces, min_detection_confidence, min_tracking_confidence)
        self._lock = threading.Lock()  # one clip at a time: the finder's tracking follows one clip
        self.spec = FeatureSpec(
            name="selfmm-face", version="1", modality="vision", fps=fps, dim=len(COLUMNS), columns=COLUMNS,
            params={"landmarks": "mediapipe-facemesh-478", "refine_landmarks": True, "max_num_faces":
                    max_num_faces, "min_detection_confidence": min_detection_confidence,
                    "min_tracking_confidence": min_tracking_confidence, "follow": "largest face",
                    "no_face_frames": "skipped", "scale": "outer eye-corner distance"})

    def read(self, n: int, found: list[tuple[float, np.ndarray, np.ndarray]], counts: dict[str, int]) -> Extracted:
        rows, noses, scales, times = [], [], [], []
        for t, _, points in found:
            feats, nose, scale = landmarks_to_features(points)
            if np.all(np.isfinite(feats)) and scale > 0:
                rows.append(feats)
                noses.append(nose)
                scales.append(scale)
                times.append(t)
        stats = face_stats(n, times, counts)  # times: seconds of each kept frame
        if not rows:
            return Extracted(None, f"no face found in any of {n} frames", stats)
        noses, scales = np.array(noses), np.array(scales)
        motion = np.zeros(len(rows))
        motion[1:] = np.linalg.norm(np.diff(noses, axis=0), axis=1) / scales[1:]
        out = np.column_stack([np.array(rows)[:, :3], motion, np.array(rows)[:, 3:]]).astype(np.float32)
        return Extracted(out, None, stats)
