"""Find a face where it is, small or large, and crop it the way FER2013's faces are cropped.

FaceMesh looks for faces with MediaPipe's short-range detector on the whole frame scaled to 128 pixels, so a
face that fills less than about a tenth of the frame (someone a few metres from a wide camera) is never found.
`FaceFinder` keeps FaceMesh's tracking on the whole frame, which finds the usual webcam face at the usual cost,
and only when that finds nothing asks MediaPipe's full-range detector where a face is: on the whole frame, then
on overlapping tiles of large frames, since the detector too sees the frame scaled to 192 pixels. FaceMesh then
runs on a square crop around the largest detection, upscaled, and the landmarks are mapped back to the frame.
The next frame tries the same region first, so a distant face costs one crop per frame, not a search.

`crop_face` turns landmarks into a 48x48 grey face, eyes level, framed like FER2013's crops, so a model trained
on FER2013 sees webcam faces as it saw its training faces.
"""
from __future__ import annotations

import threading

import numpy as np

# Where FER2013's faces lie in their 48x48 crops, as fractions of the crop side: the midpoint of the two eye
# centres (each the mean of an eye's two corners) and the distance between the eye centres.
EYE_X = 0.5  # median measured on FER2013 Training (scripts/face_baselines.py)
EYE_Y = 0.397  # median measured on FER2013 Training (scripts/face_baselines.py)
EYE_DISTANCE = 0.353  # median measured on FER2013 Training (scripts/face_baselines.py)

EYE_R_CORNERS, EYE_L_CORNERS = (33, 133), (263, 362)  # the subject's right and left eye (FaceMesh indices)

CROP_SIZE = 256  # FaceMesh's input for a small face: its own detector needs a face of a few dozen pixels
DETECTION_MARGIN = 2.0  # crop side / the detector's box side (the box covers brows to chin)
LANDMARK_MARGIN = 1.6  # crop side / the landmarks' box side, for the region carried to the next frame
TILE = 384  # tile side: the full-range detector finds faces from about 1/16 of its input's side
TILE_OVERLAP = 128  # so that every face up to this size lies whole inside some tile
MAX_CROPS = 4  # detections checked with FaceMesh per frame


def _largest(faces: list[np.ndarray]) -> np.ndarray:
    areas = [np.ptp(f[:, 0]) * np.ptp(f[:, 1]) for f in faces]
    return faces[int(np.argmax(areas))]


def _starts(length: int, side: int, stride: int) -> list[int]:
    last = max(length - side, 0)
    return sorted({*range(0, last, stride), last})


def tiles(height: int, width: int, side: int = TILE, overlap: int = TILE_OVERLAP) -> list[tuple[int, int, int]]:
    """Square tiles (x, y, side) covering a frame whose long side is at least twice `side`, else none: on a
    smaller frame the whole-frame detection already sees the face nearly as large."""
    if max(height, width) < 2 * side:
        return []
    side = min(side, height, width)
    stride = max(side - overlap, 1)
    return [(x, y, side) for y in _starts(height, side, stride) for x in _starts(width, side, stride)]


class FaceFinder:
    """find(frame RGB) -> (478, 3) landmarks of the largest face in frame pixels (z scaled like x), or None.

    One clip at a time: call reset() before a new clip so tracking starts clean. The lock makes one instance
    safe to share between threads, one frame at a time."""

    def __init__(self, max_num_faces: int = 2, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5):
        import mediapipe as mp

        self._mp = mp
        self.options = dict(static_image_mode=False, max_num_faces=max_num_faces, refine_landmarks=True,
                            min_detection_confidence=min_detection_confidence,
                            min_tracking_confidence=min_tracking_confidence)
        # Keys all start with "detector", so that an extractor can merge them into its spec's params.
        self.params = {
            "detector": "mediapipe face_detection full-range (model_selection=1) when FaceMesh on the whole "
                        "frame finds none",
            "detector_tiles": f"{TILE} px squares overlapping by {TILE_OVERLAP} when the whole frame gives no "
                              f"face and its long side is at least {2 * TILE} px",
            "detector_crop": f"square of {DETECTION_MARGIN}x the detection box, at least {CROP_SIZE} px, FaceMesh "
                             f"static_image_mode, largest face, up to {MAX_CROPS} detections a frame",
            "detector_follow": f"the previous frame's crop ({LANDMARK_MARGIN}x its landmarks' box) tried first"}
        self._lock = threading.Lock()
        self._mesh = self._crop_mesh = self._detector = None
        self._region: tuple[float, float, float] | None = None  # (centre x, centre y, side) of the last crop
        self.last_source: str | None = None  # "mesh" (whole frame), "detector" (a crop) or None
        self.counts = {"frames": 0, "found_whole_frame": 0, "found_by_detector": 0}  # since reset()

    def reset(self) -> None:
        """A new clip: FaceMesh's tracking and the carried crop region start clean, counters restart."""
        with self._lock:
            if self._mesh is not None:
                self._mesh.reset()  # 3 ms, against ~60 ms for a new graph and its first frame
            self._region = None
            self.last_source = None
            self.counts = dict.fromkeys(self.counts, 0)

    def stats(self) -> dict[str, int]:
        """For an extractor's stats (keys that do not collide with its own): faces found through the detector
        since reset()."""
        return {"frames_found_by_detector": self.counts["found_by_detector"]}

    def close(self) -> None:
        with self._lock:
            for graph in (self._mesh, self._crop_mesh, self._detector):
                if graph is not None:
                    graph.close()
            self._mesh = self._crop_mesh = self._detector = None

    def find(self, frame_rgb: np.ndarray) -> np.ndarray | None:
        frame = np.ascontiguousarray(frame_rgb)
        with self._lock:
            self.counts["frames"] += 1
            if self._mesh is None:
                self._mesh = self._mp.solutions.face_mesh.FaceMesh(**self.options)
            points = self._landmarks(self._mesh, frame, (0.0, 0.0), (frame.shape[1], frame.shape[0]))
            if points is not None:
                self._region, self.last_source = None, "mesh"
                self.counts["found_whole_frame"] += 1
                return points
            points = self._in_region(frame, self._region) if self._region is not None else None
            for region in ([] if points is not None else self._candidates(frame)):
                points = self._in_region(frame, region)
                if points is not None:
                    break
            self.last_source = "detector" if points is not None else None
            self._region = None
            if points is not None:
                self.counts["found_by_detector"] += 1
                (x0, y0), (x1, y1) = points[:, :2].min(0), points[:, :2].max(0)
                self._region = ((x0 + x1) / 2, (y0 + y1) / 2, LANDMARK_MARGIN * max(x1 - x0, y1 - y0))
            return points

    @staticmethod
    def _landmarks(mesh, image: np.ndarray, origin: tuple[float, float], span: tuple[float, float]
                   ) -> np.ndarray | None:
        """The largest face's landmarks in frame pixels: `image` shows the frame's rectangle at `origin` that
        is `span` (width, height) frame pixels large, and FaceMesh's coordinates are fractions of the image."""
        result = mesh.process(image)
        if not result.multi_face_landmarks:
            return None
        (x0, y0), (sx, sy) = origin, span
        faces = [np.array([(x0 + m.x * sx, y0 + m.y * sy, m.z * sx) for m in f.landmark])
                 for f in result.multi_face_landmarks]
        return _largest(faces)

    def _candidates(self, frame: np.ndarray):
        """Crop regions (centre x, centre y, side) around full-range detections, largest first: the whole
        frame's, then the tiles'. At most MAX_CROPS: the detector's false alarms are many on a busy frame, and
        FaceMesh on the crop is what tells them from a face."""
        if self._detector is None:
            self._detector = self._mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=self.options["min_detection_confidence"])
        h, w = frame.shape[:2]
        tried = 0
        for views in ([(0, 0, w, h)], [(x, y, s, s) for x, y, s in tiles(h, w)]):
            boxes = []
            for x, y, vw, vh in views:
                image = frame if (vw, vh) == (w, h) else np.ascontiguousarray(frame[y:y + vh, x:x + vw])
                for d in self._detector.process(image).detections or []:
                    b = d.location_data.relative_bounding_box
                    boxes.append((x + (b.xmin + b.width / 2) * vw, y + (b.ymin + b.height / 2) * vh,
                                  DETECTION_MARGIN * max(b.width * vw, b.height * vh)))
            for box in sorted(boxes, key=lambda b: -b[2]):
                if tried == MAX_CROPS:
                    return
                tried += 1
                yield box

    def _in_region(self, frame: np.ndarray, region: tuple[float, float, float]) -> np.ndarray | None:
        """FaceMesh (static mode) on the square region, scaled up to CROP_SIZE when smaller; frame pixels out."""
        import cv2

        cx, cy, side = region
        if side < 8:
            return None
        out = max(CROP_SIZE, int(round(side)))
        k = out / side
        x0, y0 = cx - side / 2, cy - side / 2
        # crop = k (frame - origin) in MediaPipe's coordinates (pixel edges); OpenCV's count pixel centres.
        m = np.array([[k, 0, k * (0.5 - x0) - 0.5], [0, k, k * (0.5 - y0) - 0.5]])
        crop = cv2.warpAffine(frame, m, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if self._crop_mesh is None:
            self._crop_mesh = self._mp.solutions.face_mesh.FaceMesh(**{**self.options, "static_image_mode": True})
        return self._landmarks(self._crop_mesh, crop, (x0, y0), (side, side))


def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(right eye, left eye) centres in pixels: the mean of each eye's two corners (steadier than the iris)."""
    p = np.asarray(points, np.float64)[:, :2]
    return p[list(EYE_R_CORNERS)].mean(0), p[list(EYE_L_CORNERS)].mean(0)


def crop_face(frame_rgb: np.ndarray, points: np.ndarray, size: int = 48) -> np.ndarray:
    """(size, size) uint8 grey face: rotated so the eyes are level, scaled and placed as in FER2013's crops.

    The subject's right eye is on the image's left, as in a photo (a mirrored webcam image gives the mirror
    crop). Parts of the crop outside the frame repeat the frame's edge."""
    import cv2

    right, left = eye_centres(points)
    d = left - right
    distance = float(np.hypot(*d))
    if not distance > 0:
        raise ValueError("the eye centres coincide")
    scale = EYE_DISTANCE * size / distance
    # Draw at a multiple of `size` no smaller than about the face itself, then average down: no aliasing.
    over = int(np.clip(np.floor(1 / scale), 1, 8))
    s = scale * over
    c, sn = np.cos(-np.arctan2(d[1], d[0])) * s, np.sin(-np.arctan2(d[1], d[0])) * s
    mid = (right + left) / 2
    target = np.array([EYE_X, EYE_Y]) * size * over
    m = np.array([[c, -sn, 0.0], [sn, c, 0.0]])
    m[:, 2] = target - 0.5 + m[:, :2] @ (0.5 - mid)  # landmarks count pixel edges, OpenCV pixel centres
    grey = frame_rgb if frame_rgb.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(frame_rgb), cv2.COLOR_RGB2GRAY)
    out = cv2.warpAffine(grey, m, (size * over, size * over), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    if over > 1:
        out = cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA)
    return out.astype(np.uint8)
