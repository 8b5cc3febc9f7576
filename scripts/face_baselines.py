"""How far the 17 FaceMesh columns carry the valence of still faces, and the FER2013 framing crop_face copies.

    python -m scripts.face_baselines --data ../shared/data [--train 6000] [--crop-check 300] [--finder]

FaceMesh (static mode, refine_landmarks) runs on every 48x48 face upscaled to 192 px: a stratified sample of
FER2013 Training, all of FER2013 PrivateTest and all of CK+48. The 17 columns of selfmm.features.vision
(head_motion = 0 for stills) feed a standardised logistic regression (balanced class weights) trained on the
Training faces, for the valence sign: positive = happy; negative = angry, disgust, fear, sad (and CK+'s
contempt); neutral and surprise left out. Printed per test set: the face detection rate and the balanced
accuracy (mean of the two classes' recalls), on the detected faces and counting undetected faces as wrong.
`--finder` finds faces with face_finder.FaceFinder (its detector fallback) instead of FaceMesh alone; `--pad`
puts a grey border around the upscaled face first.

The same Training landmarks give FER2013's framing: where the eye centres fall in the 48x48 crop and how far
apart they are (medians), the constants of face_finder.crop_face. `--crop-check N` then compares crop_face on
N upscaled Training faces with the original crops (mean absolute difference and correlation of the pixels).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from selfmm.features import face_finder
from selfmm.features.vision import landmarks_to_features

UPSCALE = 192  # 4x: FaceMesh's detector does not find faces of 48 pixels
POSITIVE = ("happy",)
NEGATIVE = ("angry", "disgust", "fear", "sad", "anger", "contempt", "sadness")  # FER2013's and CK+'s names


def stratified(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """About n rows, each class in proportion to its share."""
    out = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        out.append(rng.choice(rows, int(round(n * len(rows) / len(labels))), replace=False))
    return np.sort(np.concatenate(out))


def upscale(image: np.ndarray) -> np.ndarray:
    import cv2

    big = cv2.resize(image, (UPSCALE, UPSCALE), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(np.repeat(big[:, :, None], 3, axis=2))


def find_landmarks(images: np.ndarray, finder: bool = False, pad: int = 0) -> np.ndarray:
    """(N, 478, 3) landmarks in the upscaled image's pixels, NaN where no face is found. `pad` pixels of grey
    around the upscaled image first: FaceMesh's detector misses many faces that fill the whole image."""
    import cv2

    import mediapipe as mp

    out = np.full((len(images), 478, 3), np.nan)
    if finder:
        ff = face_finder.FaceFinder(max_num_faces=1)
    else:
        mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                               min_detection_confidence=0.5)
    side = UPSCALE + 2 * pad
    for i, image in enumerate(images):
        big = upscale(image)
        if pad:
            big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))
        if finder:
            ff.reset()  # each image is a clip of its own
            points = ff.find(big)
            if points is not None:
                out[i] = points
        else:
            result = mesh.process(big)
            if result.multi_face_landmarks:
                out[i] = [(m.x * side, m.y * side, m.z * side) for m in result.multi_face_landmarks[0].landmark]
    (ff if finder else mesh).close()
    out[:, :, :2] -= pad
    return out


def features(points: np.ndarray) -> np.ndarray:
    """(N, 17) columns of selfmm.features.vision (head_motion 0), NaN rows where no face was found."""
    out = np.full((len(points), 17), np.nan)
    for i, p in enumerate(points):
        if np.isfinite(p).all():
            f = landmarks_to_features(p)[0]
            out[i] = np.concatenate([f[:3], [0.0], f[3:]])
    return out


def valence_sign(names: np.ndarray) -> np.ndarray:
    """+1 positive, -1 negative, 0 left out (neutral, surprise)."""
    return np.where(np.isin(names, POSITIVE), 1, np.where(np.isin(names, NEGATIVE), -1, 0))


def evaluate(clf, x: np.ndarray, sign: np.ndarray) -> dict[str, float]:
    found = np.isfinite(x).all(1)
    pred = np.zeros(len(x), int)
    if found.any():
        pred[found] = np.where(clf.predict(x[found]), 1, -1)
    recall = {}
    for s in (1, -1):
        rows = sign == s
        recall[s] = (np.mean(pred[rows & found] == s), np.sum(pred[rows] == s) / rows.sum())
    return {"images": len(x), "detected": float(found.mean()),
            "balanced_acc_detected": (recall[1][0] + recall[-1][0]) / 2,
            "balanced_acc_all": (recall[1][1] + recall[-1][1]) / 2,
            "valence_faces": int((sign != 0).sum()), "valence_detected": int(((sign != 0) & found).sum())}


def eye_geometry(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per face (landmarks in the upscaled image): eye midpoint (N, 2) and eye distance (N,) as fractions of
    the crop, and roll (N,) in degrees."""
    right, left = (np.array(e) for e in zip(*(face_finder.eye_centres(p / UPSCALE) for p in points)))
    d = left - right
    return (right + left) / 2, np.hypot(d[:, 0], d[:, 1]), np.degrees(np.arctan2(d[:, 1], d[:, 0]))


def framing(points: np.ndarray) -> dict[str, tuple[float, float, float]]:
    """Quartiles (25, 50, 75 %) of the eye midpoint x, y, the eye distance (fractions of the crop) and |roll|."""
    mid, distance, roll = eye_geometry(points[np.isfinite(points).all((1, 2))])
    q = (25, 50, 75)
    return {"faces": len(mid), "eye_x": np.percentile(mid[:, 0], q), "eye_y": np.percentile(mid[:, 1], q),
            "eye_distance": np.percentile(distance, q), "abs_roll_deg": np.percentile(np.abs(roll), q)}


def crop_check(images: np.ndarray, points: np.ndarray, n: int, rng: np.random.Generator) -> dict[str, dict]:
    """crop_face on the upscaled image against the original 48x48 crop (medians of the pixels' mean absolute
    difference and correlation): on all the sampled faces, on those FER2013 framed like the medians (eyes level
    within 3 degrees, midpoint within 1.5 px, distance within 8 %), and a random other face as the floor."""
    ok = np.flatnonzero(np.isfinite(points).all((1, 2)))
    rows = rng.choice(ok, min(n, len(ok)), replace=False)
    mid, distance, roll = eye_geometry(points[rows])
    typical = ((np.abs(roll) < 3) & (np.hypot(*(mid - [face_finder.EYE_X, face_finder.EYE_Y]).T) * 48 < 1.5)
               & (np.abs(distance / face_finder.EYE_DISTANCE - 1) < 0.08))
    crops = [face_finder.crop_face(upscale(images[i]), points[i], 48).astype(float) for i in rows]

    def compare(refs, keep) -> dict[str, float]:
        pairs = [(c, r.astype(float)) for c, r, k in zip(crops, refs, keep) if k]
        return {"faces": len(pairs), "mad": float(np.median([np.abs(c - r).mean() for c, r in pairs])),
                "corr": float(np.median([np.corrcoef(c.ravel(), r.ravel())[0, 1] for c, r in pairs]))}

    every = np.ones(len(rows), bool)
    return {"all": compare(images[rows], every), "framed like the medians": compare(images[rows], typical),
            "a random other face": compare(images[rng.permutation(rows)], every)}


def load(data: Path, n_train: int, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train", "fer_private", "ckplus"}: (images (N, 48, 48) uint8, emotion names (N,))."""
    import cv2

    with np.load(data / "faces" / "fer2013.npz", allow_pickle=False) as z:
        images, names, usage = z["images"], np.asarray(z["classes"]).astype(str)[z["labels"]], z["usage"].astype(str)
    train = np.flatnonzero(usage == "Training")
    train = train[stratified(names[train], n_train, rng)]
    private = np.flatnonzero(usage == "PrivateTest")
    paths = sorted((data / "faces" / "ckplus48").glob("*/S*_*.png"))
    ck = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths])
    return {"train": (images[train], names[train]), "fer_private": (images[private], names[private]),
            "ckplus": (ck, np.array([p.parent.name for p in paths]))}


def main(argv: list[str] | None = None) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--train", type=int, default=6000, help="FER2013 Training faces, stratified by class")
    p.add_argument("--limit", type=int, default=0, help="at most this many faces per test set (a quick trial)")
    p.add_argument("--crop-check", type=int, default=300, help="Training faces to check crop_face on (0: none)")
    p.add_argument("--finder", action="store_true", help="find faces with FaceFinder instead of FaceMesh alone")
    p.add_argument("--pad", type=int, default=0, help="grey border around the upscaled face, pixels")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    sets = load(args.data, args.train, rng)
    if args.limit:
        for k in ("fer_private", "ckplus"):
            rows = np.sort(rng.permutation(len(sets[k][1]))[:args.limit])
            sets[k] = (sets[k][0][rows], sets[k][1][rows])
    points = {}
    for name, (images, _) in sets.items():
        t = time.perf_counter()
        points[name] = find_landmarks(images, args.finder, args.pad)
        found = np.isfinite(points[name]).all((1, 2)).mean()
        print(f"{name}: {len(images)} faces, {'FaceFinder' if args.finder else 'FaceMesh'} found {found:.1%} "
              f"({time.perf_counter() - t:.0f} s)",
              flush=True)

    f = framing(points["train"])
    print(f"\nFER2013 Training framing ({f['faces']} faces; quartiles 25/50/75 %; fractions of the 48 px crop):")
    for key, now in (("eye_x", face_finder.EYE_X), ("eye_y", face_finder.EYE_Y),
                     ("eye_distance", face_finder.EYE_DISTANCE), ("abs_roll_deg", None)):
        print(f"  {key:14s}" + "".join(f"{v:9.4f}" for v in f[key]) + (f"   crop_face: {now}" if now else ""))
    if args.crop_check:
        print("crop_face(upscaled Training face) against the original crop (medians):")
        for what, c in crop_check(sets["train"][0], points["train"], args.crop_check, rng).items():
            print(f"  {what:24s} {c['faces']:4d} faces: mean |difference| {c['mad']:5.1f} grey levels, "
                  f"correlation {c['corr']:.3f}")

    x, sign = features(points["train"]), valence_sign(sets["train"][1])
    fit = np.isfinite(x).all(1) & (sign != 0)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, class_weight="balanced"))
    clf.fit(x[fit], sign[fit] > 0)
    print(f"\nlogistic regression on {fit.sum()} FER2013 Training faces (17 columns, valence sign)")
    print(f"{'test set':14s}{'images':>8s}{'detected':>10s}{'bal. acc (detected)':>21s}{'bal. acc (all)':>16s}")
    for name in ("train", "fer_private", "ckplus"):
        r = evaluate(clf, features(points[name]), valence_sign(sets[name][1]))
        print(f"{name:14s}{r['images']:8d}{r['detected']:10.1%}{r['balanced_acc_detected']:21.1%}"
              f"{r['balanced_acc_all']:16.1%}   ({r['valence_detected']} of {r['valence_faces']} valence faces "
              f"detected)")


if __name__ == "__main__":
    main()
