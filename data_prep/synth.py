"""Synthetic CASIA-FASD: the default data set, written in exactly the CASIA-FASD layout.

    python -m data_prep.synth --out data/synth [--preset full|mini] [--seed N]

CASIA-FASD is licensed, so the project ships this generator instead. It writes
``<out>/train_release/<subject>/<stem>.avi`` and ``<out>/test_release/<subject>/<stem>.avi``
with the 12 CASIA stems of ``data_prep.casia.STEMS`` (Zhang et al., ICB 2012). Nothing
downstream knows the data are synthetic: point ``dataset.root`` at a real copy instead.

Faces are the real faces of ``skimage.data.lfw_subset()`` (the first 100 of its 200
images; bundled with scikit-image, nothing is downloaded). Each subject gets its own
face, skin tone, hair, clothes and room. Motion and lighting are synthesised, frame by
frame, from a physical model of each class; the cues and where they are made:

==================  ==========================================  ======================
cue                 what it is                                  where
==================  ==========================================  ======================
non-rigid motion    smooth facial wobble, mouth opening,        ``_live_canvas``
                    head yaw that foreshortens the face
blink               eyelid closes over each eye (live, cut      ``_live_canvas``
                    photo's real eyes, replayed face)
lighting            head-pose-dependent shading, slow room      ``_live_frame``,
                    light drift; paper shading from the bend    ``_plane_maps``
sensor noise        fresh Gaussian noise each frame, per        ``_camera``
                    quality (low > normal > high)
rigid plane motion  print/screen moves as one plane (homography ``_plane_maps``
                    + hand tremor); face and its background
                    move together
paper bend          cylinder bend, time-varying curvature      ``_plane_maps``
print texture  (s)  halftone dots, paper grain, print blur      ``_make_print``
gamut          (s)  reduced contrast/saturation, paper tint    ``_make_print``
paper border   (s)  white margin, visible when the print moves ``_make_print``
eye holes           cut photo: holes show real, blinking eyes  ``_render_frame``
hole edge      (s)  thin shadow around the cut                 ``_make_print``
screen bezel        dark frame around the display              ``_render_frame``
pixel grid     (s)  sub-pixel grid point-sampled by the camera ``_render_frame``
                    -> moire that moves with the screen
screen gamma   (s)  display gamma, lifted black, blue tint     ``_render_frame``
flicker             brightness beat + rolling band over time   ``_render_frame``
==================  ==========================================  ======================

Cues marked (s) are static (visible in one frame); their strength is
``s = 1 - difficulty`` (``synth.difficulty`` in configs/default.yaml). The temporal cues
do not depend on the difficulty.

Known-answer sets (``synth.cues`` / ``--cues``, used by ``make validate``): the genuine
videos are the natural set's (but for ``reversed``), and every attack is a live video with
exactly one cue, so the right answer holds by construction: ``reversed`` (genuine videos brighten
steadily, their exposure rising a few per cent a frame, and each attack is the subject's
genuine video of the same quality played backwards: the classes share every frame, only
the direction of time differs), ``order`` (the frames of the subject's genuine
video of the same quality, shuffled: the classes share every frame, only the order
differs), ``temporal`` (a live frame held still, fresh sensor noise: no single frame
differs in distribution, only their order does),
``background`` (a screen bezel around the face, outside the face box) and ``static``
(a print's gamut in every frame, the control).

Determinism: every random draw comes from ``numpy.random.default_rng`` seeded with
(seed, split, subject[, stem]) -- never from process order -- and MJPG encoding of
identical frames is byte-identical, so the same seed and package versions give the
same files. ``<out>/synth_manifest.json`` records the parameters and each file's SHA-256.

Reruns: a video whose final name exists is complete (files are written to a temporary
name and renamed), so a rerun with the same parameters skips it. A rerun into a folder
made with other parameters is refused unless ``--force``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

from configs import errors
from configs.files import atomic_path, write_json_atomic
from data_prep.casia import QUALITIES, SPLITS, STEMS, SUBJECTS, VIDEO_EXT
from data_prep.util import file_sha256, progress_bar, run_jobs

MANIFEST = "synth_manifest.json"
N_LFW_FACES = 100            # lfw_subset(): images 0..99 are faces, 100..199 are not
SPLIT_IDS = {"train": 1, "test": 2}
STEM_IDS = {stem: i for i, stem in enumerate(STEMS)}

# Face geometry in lfw_subset units (25x25 crops, aligned): measured from the mean face.
EYES = ((6.2, 8.3), (14.8, 8.3))
MOUTH = (11.2, 19.6)
# The head canvas (lfw units): the 25x25 face sits at FACE_OFF inside a CANVAS-sized
# drawing of hair, neck and shoulders.
CANVAS = (48, 62)            # width, height
FACE_OFF = (11.5, 9.0)
K = 6                        # canvas pixels per lfw unit


# --------------------------------------------------------------------------- config
def synth_params(cfg: dict, preset: str) -> dict:
    """Resolve the ``synth`` config section and one preset into flat parameters."""
    s = cfg["synth"]
    if preset not in s["presets"]:
        raise errors.UserError(f"unknown preset {preset!r}; choose from {sorted(s['presets'])}")
    p = s["presets"][preset]
    if s["cues"] not in CUES:
        raise errors.UserError(f"synth.cues: {s['cues']!r} is not one of {list(CUES)}")
    # synth.cues only enters the parameters (and the manifest) when it is not the natural
    # set's, so that a set made before the key existed is still recognised as up to date
    cues = {} if s["cues"] == "natural" else {"cues": s["cues"]}
    return {
        **cues,
        "preset": preset,
        "seed": int(cfg["seed"]),
        "difficulty": float(s["difficulty"]),
        "fps": float(s["fps"]),
        "frames": int(p["frames"]),
        "subjects": {"train": [int(x) for x in p["train_subjects"]],
                     "test": [int(x) for x in p["test_subjects"]]},
        "sizes": {q: [int(v) for v in s["sizes"][q]] for q in QUALITIES},
        "blink_rate_hz": float(s["blink_rate_hz"]),
        "noise": {q: float(s["noise"][q]) for q in QUALITIES},
        "versions": {"numpy": np.__version__, "opencv": cv2.__version__,
                     "scikit-image": _skimage_version()},
    }


def _skimage_version() -> str:
    import skimage
    return skimage.__version__


# --------------------------------------------------------------------------- faces
@lru_cache(maxsize=1)
def _lfw_faces() -> np.ndarray:
    from skimage.data import lfw_subset
    return lfw_subset()[:N_LFW_FACES].astype(np.float32)


def _cascade() -> cv2.CascadeClassifier:
    """OpenCV's default frontal-face cascade, through data_prep.detect's loader."""
    from data_prep.detect import cascade
    return cascade("haarcascade_frontalface_default.xml")


@lru_cache(maxsize=4)
def face_assignment(seed: int) -> dict:
    """(split, subject) -> lfw face index. Only faces the default Viola-Jones cascade
    finds at rest are used, then a seeded permutation deals them out, 50 distinct faces."""
    faces = _lfw_faces()
    casc = _cascade()
    ok = []
    for i, f in enumerate(faces):
        img = cv2.resize((f * 255).astype(np.uint8), (100, 100), interpolation=cv2.INTER_CUBIC)
        frame = np.full((240, 320), 128, np.uint8)
        frame[70:170, 110:210] = img
        if len(casc.detectMultiScale(frame, 1.1, 5, minSize=(40, 40))):
            ok.append(i)
    rng = np.random.default_rng([seed, 7])
    ok = [ok[j] for j in rng.permutation(len(ok))]
    n = {sp: len(subs) for sp, subs in SUBJECTS.items()}
    if len(ok) < n["train"] + n["test"]:
        raise RuntimeError(f"only {len(ok)} detectable lfw faces, need {n['train'] + n['test']}")
    out = {}
    for k in range(n["train"]):
        out[("train", k + 1)] = ok[k]
    for k in range(n["test"]):
        out[("test", k + 1)] = ok[n["train"] + k]
    return out


# --------------------------------------------------------------------------- subject
def _room(rng: np.random.Generator) -> dict:
    """A room as a resolution-free description: wall colour, light gradient, objects."""
    wall = rng.uniform(0.45, 0.85, 3)
    objs = []
    for _ in range(rng.integers(4, 8)):
        x0, y0 = rng.uniform(-0.1, 0.9), rng.uniform(-0.1, 0.8)
        objs.append((x0, y0, x0 + rng.uniform(0.08, 0.4), y0 + rng.uniform(0.08, 0.5),
                     tuple(rng.uniform(0.1, 0.95, 3))))
    return {"wall": tuple(wall), "grad": tuple(rng.uniform(-0.25, 0.25, 2)), "objs": objs,
            "tex_seed": int(rng.integers(1 << 31))}


def _draw_room(room: dict, w: int, h: int) -> np.ndarray:
    img = np.empty((h, w, 3), np.float32)
    img[:] = room["wall"]
    for x0, y0, x1, y1, col in room["objs"]:
        cv2.rectangle(img, (int(x0 * w), int(y0 * h)), (int(x1 * w), int(y1 * h)), col, -1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    g = 1 + room["grad"][0] * (xx / w - 0.5) + room["grad"][1] * (yy / h - 0.5)
    img *= g[..., None]
    tex = np.random.default_rng(room["tex_seed"]).normal(0, 0.02, (h // 4 + 1, w // 4 + 1))
    img += cv2.resize(tex.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
    ks = max(3, (min(w, h) // 60) | 1)
    return np.clip(cv2.GaussianBlur(img, (ks, ks), 0), 0, 1)


def subject_model(seed: int, split: str, subject: int) -> dict:
    """Everything that makes one subject: face, skin, hair, clothes, room, photo backdrop."""
    rng = np.random.default_rng([seed, SPLIT_IDS[split], subject, 1000])
    face = _lfw_faces()[face_assignment(seed)[(split, subject)]]
    skin = np.array([0.55, 0.68, 0.85], np.float32) * rng.uniform(0.75, 1.15)  # BGR
    skin = skin + rng.uniform(-0.06, 0.06, 3).astype(np.float32)
    return {"face": face, "skin": np.clip(skin, 0.2, 1.0),
            "hair": tuple(float(x) for x in rng.uniform(0.02, 0.35) * np.array([1, 1.1, 1.25])),
            "shirt": tuple(float(x) for x in rng.uniform(0.05, 0.9, 3)),
            "room": _room(rng), "photo_room": _room(rng)}


def _head_canvas(subj: dict) -> np.ndarray:
    """BGRA float canvas (CANVAS*K px) of the head at rest: hair, face, neck, shoulders."""
    cw, ch = CANVAS[0] * K, CANVAS[1] * K
    img = np.zeros((ch, cw, 3), np.float32)
    alpha = np.zeros((ch, cw), np.float32)
    skin = subj["skin"]
    def ell(cx, cy, ax, ay, col):
        cv2.ellipse(img, (int(cx * K), int(cy * K)), (int(ax * K), int(ay * K)), 0, 0, 360, col, -1)
        cv2.ellipse(alpha, (int(cx * K), int(cy * K)), (int(ax * K), int(ay * K)), 0, 0, 360, 1.0, -1)
    ell(24, 66, 25, 20, subj["shirt"])                                    # shoulders
    cv2.rectangle(img, (int(19 * K), int(28 * K)), (int(29 * K), int(48 * K)), tuple(float(x) for x in skin * 0.85), -1)
    cv2.rectangle(alpha, (int(19 * K), int(28 * K)), (int(29 * K), int(48 * K)), 1.0, -1)
    ell(24, 17.5, 14.5, 14.0, subj["hair"])                               # hair
    ell(24, 22.5, 12.8, 14.5, tuple(float(x) for x in skin * 0.8))        # skin of the head
    face = cv2.resize(subj["face"], (25 * K, 25 * K), interpolation=cv2.INTER_CUBIC)
    face = np.clip(cv2.GaussianBlur(face, (0, 0), 0.4 * K), 0, 1)       # soften the 25 px grid
    fcol = np.clip(face[..., None] * skin[None, None, :] * 1.35, 0, 1)
    yy, xx = np.mgrid[0:25 * K, 0:25 * K].astype(np.float32) / K
    r = ((xx - 12.2) / 12.0) ** 2 + ((yy - 13.5) / 14.0) ** 2
    m = np.clip((1.0 - r) / 0.25, 0, 1)[..., None]                       # feathered face mask
    x0, y0 = int(FACE_OFF[0] * K), int(FACE_OFF[1] * K)
    sl = (slice(y0, y0 + 25 * K), slice(x0, x0 + 25 * K))
    img[sl] = img[sl] * (1 - m) + fcol * m
    alpha[sl] = np.maximum(alpha[sl], m[..., 0])
    alpha = cv2.GaussianBlur(alpha, (5, 5), 0)
    return np.dstack([img, alpha])


# --------------------------------------------------------------------------- motion
def _smooth(rng: np.random.Generator, n: int, amp: float, fmin: float, fmax: float):
    """A smooth random signal: sum of n sinusoids; returns f(t) (t in seconds)."""
    fr = rng.uniform(fmin, fmax, n)
    ph = rng.uniform(0, 2 * math.pi, n)
    a = rng.uniform(0.5, 1.0, n)
    a = amp * a / a.sum()
    return lambda t: float(np.sum(a * np.sin(2 * math.pi * fr * t + ph)))


def _blinks(rng: np.random.Generator, duration: float, rate: float):
    """Eyelid closure c(t) in [0, 1]: Poisson blinks, 0.1 s closing, 0.2 s opening."""
    times, t = [], rng.uniform(0.1, 0.8)
    while t < duration + 1:
        times.append(t)
        t += 0.45 + rng.exponential(1.0 / rate)
    def c(tt: float) -> float:
        v = 0.0
        for b in times:
            d = tt - b
            if 0 <= d < 0.1:
                v = max(v, d / 0.1)
            elif 0.1 <= d < 0.3:
                v = max(v, 1 - (d - 0.1) / 0.2)
        return v
    return c


class LiveFace:
    """The dynamics of a live face: pose, wobble, blinks, mouth, lighting."""

    def __init__(self, rng: np.random.Generator, duration: float, blink_rate: float, still=False):
        g = 0.0 if still else 1.0
        self.tx = _smooth(rng, 3, 0.05 * g, 0.1, 0.7)
        self.ty = _smooth(rng, 3, 0.03 * g, 0.1, 0.7)
        self.rot = _smooth(rng, 2, 4.0 * g, 0.1, 0.6)
        self.scale = _smooth(rng, 2, 0.04 * g, 0.1, 0.5)
        self.yaw = _smooth(rng, 2, 0.35 * g, 0.15, 0.7)
        self.mouth = _smooth(rng, 3, 1.6 * g, 0.4, 1.8)
        self.wob = [(rng.uniform(0.5, 2.5), rng.uniform(0.5, 2.5), rng.uniform(0.8, 2.5),
                     rng.uniform(0, 2 * math.pi)) for _ in range(3)]
        self.wob_amp = 0.35 * g
        self.light = _smooth(rng, 2, 0.05, 0.05, 0.3)
        self.blink = _blinks(rng, duration, blink_rate) if not still else (lambda t: 0.0)


@lru_cache(maxsize=1)
def _canvas_grid():
    cw, ch = CANVAS[0] * K, CANVAS[1] * K
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    return xx, yy


@lru_cache(maxsize=1)
def _coarse_grid():
    """Face-frame coordinates (lfw units) at 2 samples per unit, for smooth fields."""
    yy, xx = np.mgrid[0:CANVAS[1] * 2, 0:CANVAS[0] * 2].astype(np.float32)
    return (xx + 0.5) / 2 - FACE_OFF[0] - 0.25, (yy + 0.5) / 2 - FACE_OFF[1] - 0.25


def _up(a: np.ndarray) -> np.ndarray:
    return cv2.resize(a, (CANVAS[0] * K, CANVAS[1] * K), interpolation=cv2.INTER_LINEAR)


def _live_canvas(canvas: np.ndarray, face: LiveFace, t: float, skin: np.ndarray) -> np.ndarray:
    """Non-rigid face at time t: wobble + mouth via remap, then the eyelids.
    Smooth fields are computed on a coarse grid and upsampled."""
    xx, yy = _canvas_grid()
    u, v = _coarse_grid()                          # lfw units, face frame
    inface = np.exp(-(((u - 12.2) / 11) ** 2 + ((v - 13.5) / 13) ** 2))
    dx = np.zeros_like(u)
    dy = np.zeros_like(u)
    for fx, fy, ft, ph in face.wob:
        w = np.sin(2 * math.pi * (fx * u / 25 + fy * v / 25 + ft * t) + ph)
        dx += w
        dy += np.cos(2 * math.pi * (fy * u / 25 - fx * v / 25 + ft * t) + ph)
    dx *= face.wob_amp / 3 * inface
    dy *= face.wob_amp / 3 * inface
    m = max(0.0, face.mouth(t))
    if m > 0:                                      # jaw drops below the mouth line
        jaw = np.exp(-((u - MOUTH[0]) / 5.0) ** 2) * np.clip((v - MOUTH[1] + 0.5) / 2.5, 0, 1)
        jaw *= np.clip((27 - v) / 4, 0, 1)
        dy -= m * jaw
    out = cv2.remap(canvas, xx - _up(dx * K), yy - _up(dy * K),
                    cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if m > 0:                                      # dark gap between the lips
        gap = np.exp(-((u - MOUTH[0]) / 3.0) ** 2 - ((v - MOUTH[1] - m * 0.4) / (0.35 + 0.3 * m)) ** 2)
        out[..., :3] *= _up((1 - 0.6 * min(m, 1.0) * gap).astype(np.float32))[..., None]
    c = face.blink(t)
    u = xx / K - FACE_OFF[0]
    v = yy / K - FACE_OFF[1]
    if c > 0:
        for ex, ey in EYES:
            x0, y0 = int((FACE_OFF[0] + ex - 3.5) * K), int((FACE_OFF[1] + ey - 3) * K)
            x1, y1 = x0 + 7 * K, y0 + 5 * K
            uu, vv = u[y0:y1, x0:x1] - ex, v[y0:y1, x0:x1] - ey
            eye = np.clip(1.2 - (uu / 2.6) ** 2 - (vv / 1.7) ** 2, 0, 1)
            lid_edge = -1.7 + 3.4 * c                  # the lid comes down from the top
            lid = eye * np.clip((lid_edge - vv) / 0.4 + 0.5, 0, 1)
            lidcol = out[max(0, y0 - K):y0, x0:x1, :3].reshape(-1, 3).mean(0) * 0.95
            line = eye * np.exp(-((vv - lid_edge) / 0.35) ** 2) * 0.35 * c
            reg = out[y0:y1, x0:x1, :3]
            reg[:] = reg * (1 - lid[..., None]) + lidcol * lid[..., None]
            reg *= (1 - line)[..., None]
    return out


def _place(w: int, h: int, pose: tuple) -> np.ndarray:
    """2x3 affine from canvas px to frame px. pose = (tx, ty, rot_deg, scale, yaw)."""
    tx, ty, rot, sc, yaw = pose
    face_px = 0.42 * min(w, h) * sc                # 25 lfw units -> face_px
    s = face_px / (25 * K)
    a = math.radians(rot)
    sx = s * (1 - 0.25 * abs(yaw))                 # foreshortening from head yaw
    R = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    A = R @ np.diag([sx, s])
    cx, cy = (FACE_OFF[0] + 12.2) * K, (FACE_OFF[1] + 12.5) * K   # face centre in canvas
    dst = np.array([w * (0.5 + tx), h * (0.47 + ty)])
    t = dst - A @ np.array([cx, cy])
    return np.hstack([A, t[:, None]]).astype(np.float32)


def _live_frame(bg: np.ndarray, canvas: np.ndarray, face: LiveFace, t: float,
                skin: np.ndarray, still=False, frame_wh=None, roi=(0, 0)) -> np.ndarray:
    """Composite the live person at time t over the background (BGR float).
    ``frame_wh`` and ``roi``: render only the window of ``bg``'s size whose top-left
    corner is ``roi`` in a frame of size ``frame_wh`` (default: the whole frame)."""
    h, w = bg.shape[:2]
    fw, fh = frame_wh or (w, h)
    pose = (face.tx(t), face.ty(t), face.rot(t), 1 + face.scale(t), face.yaw(t))
    cv_ = _live_canvas(canvas, face, t, skin) if not still else canvas.copy()
    # lighting: the side of the face turned to the light gets brighter
    xx, _ = _canvas_grid()
    shade = 1 + 0.35 * pose[4] * ((xx / K - FACE_OFF[0] - 12.2) / 12.0)
    cv_[..., :3] *= np.clip(shade, 0.6, 1.4)[..., None] * (1 + face.light(t))
    M = _place(fw, fh, pose)
    M[:, 2] -= np.float32(roi)
    layer = cv2.warpAffine(cv_, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return _over(layer, bg)


def _over(layer: np.ndarray, bg: np.ndarray, col: np.ndarray | None = None) -> np.ndarray:
    """Alpha-composite a BGRA layer (or ``col`` with the layer's alpha) over bg."""
    a = np.ascontiguousarray(layer[..., 3])
    c = np.ascontiguousarray(layer[..., :3]) if col is None else col
    return cv2.blendLinear(c, np.ascontiguousarray(bg, dtype=np.float32), a, 1 - a)


# --------------------------------------------------------------------------- planes
def _halftone(h: int, w: int, pitch: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    k = 2 * math.pi / pitch
    return (0.5 + 0.5 * np.cos(k * (xx + yy) / math.sqrt(2)) * np.cos(k * (xx - yy) / math.sqrt(2)))


def _make_print(photo: np.ndarray, s: float, rng: np.random.Generator, holes=None) -> np.ndarray:
    """A paper print of ``photo`` (BGR float): blur, gamut, halftone, grain, white border.
    Returns BGRA; alpha 0 in the cut eye holes (``holes``: list of (cx, cy, rx, ry) px)."""
    h, w = photo.shape[:2]
    img = cv2.GaussianBlur(photo, (0, 0), 0.4 + 0.8 * s)
    luma = img.mean(2, keepdims=True)
    img = img + (luma - img) * (0.45 * s)                       # desaturate
    lo, hi = 0.12 * s, 1 - 0.08 * s
    img = lo + (hi - lo) * img                                  # ink black / paper white
    img = img * (1 + np.array([-0.06, 0.0, 0.03], np.float32) * s)   # warm paper (BGR)
    dots = _halftone(h, w, rng.uniform(2.2, 3.2))
    img = img * (1 - 0.22 * s * (1 - luma) * dots[..., None] - 0.05 * s * dots[..., None])
    grain = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.0)
    img = img + 0.04 * s * grain[..., None]
    m = int(round(min(h, w) * rng.uniform(0.05, 0.09)))        # white margin
    paper_white = np.array([0.93, 0.95, 0.96], np.float32) * (1 - 0.03 * s)
    out = np.empty((h + 2 * m, w + 2 * m, 4), np.float32)
    out[..., :3] = paper_white + 0.04 * s * cv2.GaussianBlur(
        rng.normal(0, 1, out.shape[:2]).astype(np.float32), (0, 0), 1.0)[..., None]
    out[m:m + h, m:m + w, :3] = img
    out[..., 3] = 1.0
    if holes:
        for cx, cy, rx, ry in holes:
            c = (int(cx + m), int(cy + m))
            cv2.ellipse(out, c, (int(rx), int(ry)), 0, 0, 360, (0, 0, 0, 0), -1, cv2.LINE_AA)
            ring = np.zeros(out.shape[:2], np.float32)
            cv2.ellipse(ring, c, (int(rx) + 1, int(ry) + 1), 0, 0, 360, 1.0, 2, cv2.LINE_AA)
            out[..., :3] *= (1 - (0.15 + 0.35 * s) * ring)[..., None]
    return np.clip(out, 0, 1), m


class PlaneMotion:
    """Rigid motion of a hand-held plane (print or screen), plus a time-varying bend."""

    def __init__(self, rng: np.random.Generator, bend: float):
        self.tx = _smooth(rng, 3, 0.05, 0.1, 0.6)
        self.ty = _smooth(rng, 3, 0.05, 0.1, 0.6)
        self.rot = _smooth(rng, 2, 3.0, 0.1, 0.5)
        self.tilt_x = _smooth(rng, 2, 0.06, 0.1, 0.5)
        self.tilt_y = _smooth(rng, 2, 0.06, 0.1, 0.5)
        self.scale = _smooth(rng, 2, 0.04, 0.1, 0.4)
        self.trem = [(rng.uniform(3, 7), rng.uniform(0, 6.3), rng.uniform(0, 6.3)) for _ in range(2)]
        self.bend0 = bend * rng.uniform(0.5, 1.0) * rng.choice([-1, 1])
        self.bend = _smooth(rng, 2, bend, 0.3, 1.2)
        self.base_scale = rng.uniform(1.02, 1.12)


PLANE_STEP = 4   # plane maps are smooth: compute them every 4 px, upsample linearly


@lru_cache(maxsize=8)
def _frame_grid(w: int, h: int):
    """Frame coordinates of a coarse grid that cv2.resize(INTER_LINEAR) maps back to w x h."""
    cw, ch = w // PLANE_STEP, h // PLANE_STEP
    xs = (np.arange(cw, dtype=np.float64) + 0.5) * (w / cw) - 0.5
    ys = (np.arange(ch, dtype=np.float64) + 0.5) * (h / ch) - 0.5
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return xx, yy


def _plane_maps(w: int, h: int, pw: int, ph: int, mo: PlaneMotion, t: float, inner: float):
    """Inverse maps frame px -> plane px for a plane of pw x ph px, and a shading field.

    The plane's content area (``inner`` of its width) is scaled to fill the frame at
    base scale; a homography moves it rigidly, a cylinder bend of curvature
    ``bend(t)`` about the vertical axis curves it (with perspective), and the bend
    shades it: the paper turns away from the light as it curves."""
    xx, yy = _frame_grid(w, h)
    sc = mo.base_scale * (1 + mo.scale(t)) * w / (pw * inner)
    a = math.radians(mo.rot(t))
    trem = sum(0.004 * math.sin(2 * math.pi * f * t + p) for f, p, _ in mo.trem)
    trem_y = sum(0.004 * math.sin(2 * math.pi * f * t + q) for f, _, q in mo.trem)
    cx, cy = w * (0.5 + mo.tx(t) + trem), h * (0.5 + mo.ty(t) + trem_y)
    # plane centred coords (px of the plane) -> frame: corners through a homography
    hw, hh = pw / 2, ph / 2
    src = np.float32([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]])
    tx_, ty_ = mo.tilt_x(t), mo.tilt_y(t)
    dst = []
    for x, y in src:
        z = 1 + tx_ * x / hw + ty_ * y / hh            # depth of each corner (tilt)
        xr, yr = (x * math.cos(a) - y * math.sin(a)) * sc / z, (x * math.sin(a) + y * math.cos(a)) * sc / z
        dst.append([cx + xr, cy + yr])
    H = cv2.getPerspectiveTransform(np.float32(dst), src)      # frame -> plane (centred)
    den = H[2, 0] * xx + H[2, 1] * yy + H[2, 2]
    u = (H[0, 0] * xx + H[0, 1] * yy + H[0, 2]) / den
    v = (H[1, 0] * xx + H[1, 1] * yy + H[1, 2]) / den
    kap = (mo.bend0 + mo.bend(t)) / hw                          # curvature, 1/px
    shade = None
    if abs(kap) > 1e-6:
        q = np.clip(kap * u, -0.99, 0.99)
        arc = np.arcsin(q) / kap                                # arc length along the paper
        z = (1 - np.cos(kap * arc)) / abs(kap) / (2.5 * hw)     # bulge depth / viewing dist
        u = arc
        v = v * (1 + np.sign(kap) * z)
        shade = (1 - 0.35 * (1 - np.cos(kap * arc + 0.25))).astype(np.float32)
        shade = cv2.resize(shade, (w, h), interpolation=cv2.INTER_LINEAR)
    up = lambda a: cv2.resize(a.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return up(u + hw), up(v + hh), shade


# --------------------------------------------------------------------------- videos
class Camera:
    """The capturing camera: optical blur, then fresh sensor noise in every frame.
    Noise is drawn as random crops of a per-video bank of 4 noise fields (a 5x saving
    over drawing every pixel anew; crops differ frame to frame, so it is temporal)."""

    def __init__(self, rng: np.random.Generator, w: int, h: int, sigma: float, blur: float):
        self.rng, self.w, self.h, self.blur = rng, w, h, blur
        self.bank = sigma * rng.standard_normal((4, h + 32, w + 32, 3), dtype=np.float32)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if self.blur > 0:
            img = cv2.GaussianBlur(img, (0, 0), self.blur)
        k, dx, dy = self.rng.integers(0, 4), self.rng.integers(0, 32), self.rng.integers(0, 32)
        img = img * np.float32(255) + self.bank[k, dy:dy + self.h, dx:dx + self.w]
        np.clip(img + np.float32(0.5), 0, 255, out=img)
        return img.astype(np.uint8)


def _video_setup(params: dict, split: str, subject: int, stem: str, info=None,
                 stem_id: int | None = None) -> SimpleNamespace:
    """What every class of video shares: size, timing, subject, room, camera, exposure.
    The generator ``rng`` is drawn from in a fixed order (camera, then exposure).
    ``info`` (label, attack kind, quality) and ``stem_id`` default to the CASIA stem's;
    other layouts (data_prep/synth_layouts.py) give their own."""
    seed = params["seed"]
    info = STEMS[stem] if info is None else info
    stem_id = STEM_IDS[stem] if stem_id is None else stem_id
    w, h = params["sizes"][info.quality]
    fps, n = params["fps"], params["frames"]
    rng = np.random.default_rng([seed, SPLIT_IDS[split], subject, stem_id])
    subj = subject_model(seed, split, subject)
    sigma = params["noise"][info.quality]
    blur = {"low": 0.8, "normal": 0.4, "high": 0.0}[info.quality]
    cam = Camera(rng, w, h, sigma, blur)
    # the camera's own drift of exposure (all classes)
    expo = _smooth(rng, 2, 0.03, 0.05, 0.3)
    return SimpleNamespace(params=params, seed=seed, info=info, w=w, h=h, fps=fps, n=n,
                           s=1.0 - params["difficulty"],
                           dur=n / fps, rng=rng, subj=subj, canvas=_head_canvas(subj),
                           room=_draw_room(subj["room"], w, h), rate=params["blink_rate_hz"],
                           cam=cam, expo=expo, split=split, subject=subject)


def _render_frames(params: dict, split: str, subject: int, stem: str, info=None,
                   stem_id: int | None = None):
    """Yield the uint8 BGR frames of one video: subject ``subject`` of CASIA split
    ``split`` (an identity of face_assignment), class and quality from ``info``
    (default: the CASIA stem's; attack kind genuine, warped, cut or video)."""
    v = _video_setup(params, split, subject, stem, info, stem_id)
    kind = v.info.attack
    cues = params.get("cues", "natural")
    if kind == "genuine":
        yield from KNOWN_ANSWER_GENUINE.get(cues, _genuine_frames)(v)
    elif cues != "natural":
        yield from KNOWN_ANSWER_ATTACKS[cues](v)
    elif kind in ("warped", "cut"):
        yield from _print_frames(v, kind)
    else:
        yield from _replay_frames(v)


def _genuine_frames(v: SimpleNamespace, face: LiveFace | None = None, gain=None):
    """A live video; ``gain(i)``, when given, multiplies frame i's exposure."""
    face = LiveFace(v.rng, v.dur, v.rate) if face is None else face
    for i in range(v.n):
        t = i / v.fps
        g = 1 + v.expo(t) if gain is None else (1 + v.expo(t)) * gain(i)
        yield v.cam(_live_frame(v.room, v.canvas, face, t, v.subj["skin"]) * np.float32(g))


# --------------------------------------------------------------------------- known answers
# Sets where the answer holds by construction (synth.cues, `make validate`). Genuine
# videos are those of the natural set; every attack stem shows the same subject, room
# and camera as a live video does, with one kind of cue added.

def _frozen_frames(v: SimpleNamespace):
    """cues = temporal: one frame of a live video (a random moment t0) held still, fresh
    sensor noise in every frame. Each frame on its own is a frame of a live video, so
    nothing in a single frame tells the classes apart; only time does."""
    face = LiveFace(v.rng, v.dur, v.rate)
    t0 = float(v.rng.uniform(0.0, v.dur))
    still = _live_frame(v.room, v.canvas, face, t0, v.subj["skin"]) * np.float32(1 + v.expo(t0))
    for _ in range(v.n):
        yield v.cam(still)


def genuine_twin(quality: str) -> str:
    """The CASIA genuine stem of one quality (1, 2 or HR_1): the live video whose frames
    the attacks of that quality show, in another order, in the ``order`` and ``reversed``
    sets."""
    return next(s for s, i in STEMS.items() if i.attack == "genuine" and i.quality == quality)


def _twin_frames(v: SimpleNamespace) -> list[np.ndarray]:
    """The frames of attack ``v``'s genuine twin, rendered as this set renders it."""
    return list(_render_frames(v.params, v.split, v.subject, genuine_twin(v.info.quality)))


def _reordered_frames(v: SimpleNamespace):
    """cues = order: the very frames of the subject's genuine video of the same quality
    (the same images, sensor noise included) in a random order (one permutation per attack
    video, from its own seed). Every frame of an attack is a frame of a genuine video, and
    every genuine frame is in three attacks, so p(genuine | one frame) is the class prior
    for every frame: no single-frame model can beat chance, in training or in test. Only
    the order differs: a genuine video moves smoothly, an attack jumps between moments.
    (The rendered images are identical; in the .avi files they differ by about 1.4 grey
    levels on average, because FFmpeg's MJPEG rate control sets each frame's quantiser
    from the frames before it.)"""
    frames = _twin_frames(v)
    for i in v.rng.permutation(len(frames)):
        yield frames[i]


# cues = reversed: the genuine videos' exposure gain rises steadily over the recording
# (as when a camera's auto-exposure settles, or a dimmer is turned up), by a step per frame
# drawn per video from EXPOSURE_STEP, centred on the video's middle frame (gain 1). The
# attacks play those videos backwards, so their gain falls. A rise that resets (a sawtooth)
# would not do: its steps average to zero in both classes, so no linear function of the
# frames could tell them apart. 0.025 a frame is about 3 grey levels on a mid-grey face,
# 13 over a 5-frame clip: the size of signed cue the project's capacity check
# (scripts/diagnostics/temporal_capacity.py) shows the LSTM-CNN learns.
EXPOSURE_STEP = (0.02, 0.03)


def _brightening_frames(v: SimpleNamespace):
    """cues = reversed, genuine: a live video (the natural set's motion, blinks and room
    light) whose exposure gain rises by a constant step a frame (EXPOSURE_STEP)."""
    face = LiveFace(v.rng, v.dur, v.rate)            # drawn first, as for a natural video
    step = float(v.rng.uniform(*EXPOSURE_STEP))
    yield from _genuine_frames(v, face, gain=lambda i: 1.0 + step * (i - (v.n - 1) / 2))


def _reversed_frames(v: SimpleNamespace):
    """cues = reversed: the very frames of the subject's genuine video of the same quality
    (the same images, sensor noise included), played backwards. As in ``order``, every
    attack frame is a genuine frame and p(genuine | one frame) is the class prior; here the
    order differs in a signed way: genuine videos brighten, attacks darken. The three
    attacks of one quality are the same video (their files differ only by MJPEG)."""
    yield from reversed(_twin_frames(v))


# The bezel of cues = background, in face sides (face_px of _place) from the face centre:
# outside the face box (about one face side wide, so a scale-1.0 crop reaches 0.5-0.6),
# inside a scale-1.8 crop (0.9) and well inside a scale-2.6 one (1.3).
BEZEL_HALF = (0.85, 1.0)      # half width, half height
BEZEL_WIDTH = 0.1             # line width


def _bezel_frames(v: SimpleNamespace, bezel: bool = True):
    """cues = background: a live video with a dark screen bezel around the face that moves
    with it. The face box and everything inside it are drawn as for a genuine video; the
    cue lies only where a crop wider than the face box reaches (paper §4.1's scales).
    ``bezel=False`` draws the same video without it (to locate it, in the tests)."""
    face = LiveFace(v.rng, v.dur, v.rate)
    for i in range(v.n):
        t = i / v.fps
        img = _live_frame(v.room, v.canvas, face, t, v.subj["skin"])
        if not bezel:
            yield v.cam(img * np.float32(1 + v.expo(t)))
            continue
        fp = 0.42 * min(v.w, v.h) * (1 + face.scale(t))
        cx, cy = v.w * (0.5 + face.tx(t)), v.h * (0.47 + face.ty(t))
        rx, ry = BEZEL_HALF[0] * fp, BEZEL_HALF[1] * fp
        cv2.rectangle(img, (int(cx - rx), int(cy - ry)), (int(cx + rx), int(cy + ry)),
                      (0.08, 0.08, 0.09), max(2, int(round(BEZEL_WIDTH * fp))))
        yield v.cam(img * np.float32(1 + v.expo(t)))


def _gamut_frames(v: SimpleNamespace):
    """cues = static (the control): a live video seen through a print's gamut in every
    frame: lifted blacks, dimmed whites, 40 % less saturation, a warm paper tint. A
    single frame carries the cue, so single-frame and sequence models can both learn it."""
    face = LiveFace(v.rng, v.dur, v.rate)
    tint = np.array([0.94, 1.0, 1.04], np.float32)             # BGR: warm paper
    for i in range(v.n):
        t = i / v.fps
        img = _live_frame(v.room, v.canvas, face, t, v.subj["skin"]) * np.float32(1 + v.expo(t))
        luma = img.mean(2, keepdims=True)
        img = (0.12 + 0.78 * (img + 0.4 * (luma - img))) * tint
        yield v.cam(np.clip(img, 0, 1))


KNOWN_ANSWER_ATTACKS = {"reversed": _reversed_frames, "order": _reordered_frames,
                        "temporal": _frozen_frames, "background": _bezel_frames,
                        "static": _gamut_frames}
# The known-answer sets whose genuine videos are not the natural set's
KNOWN_ANSWER_GENUINE = {"reversed": _brightening_frames}
CUES = ("natural",) + tuple(KNOWN_ANSWER_ATTACKS)


def _print_setup(v: SimpleNamespace, kind: str) -> SimpleNamespace:
    """The photo: a still of the subject in another room, printed at ~frame resolution;
    for ``cut``, eye holes with the live person behind them."""
    rng, subj, canvas = v.rng, v.subj, v.canvas
    prng = np.random.default_rng([v.seed, SPLIT_IDS[v.split], v.subject, 2000,
                                  QUALITIES.index(v.info.quality)])
    pw, ph = v.w, v.h
    photo_bg = _draw_room(subj["photo_room"], pw, ph)
    still = LiveFace(prng, v.dur, v.rate, still=True)
    photo = _live_frame(photo_bg, canvas, still, 0.0, subj["skin"], still=True)
    holes = None
    M = _place(pw, ph, (0, 0, 0, 1, 0))
    if kind == "cut":
        holes = []
        for ex, ey in EYES:
            c = M @ np.array([(FACE_OFF[0] + ex) * K, (FACE_OFF[1] + ey) * K, 1.0])
            holes.append((c[0], c[1], 3.0 * K * M[0, 0], 1.9 * K * M[1, 1]))
    pr, margin = _make_print(photo, v.s, rng, holes)
    mo = PlaneMotion(rng, 0.55 if kind == "warped" else 0.06)
    live = LiveFace(rng, v.dur, v.rate) if kind == "cut" else None
    win = None
    if holes:
        win = (max(0, int(min(c[0] - c[2] for c in holes)) - 4),
               min(pw, int(max(c[0] + c[2] for c in holes)) + 5),
               max(0, int(min(c[1] - c[3] for c in holes)) - 4),
               min(ph, int(max(c[1] + c[3] for c in holes)) + 5))
    if live is not None:          # the person behind moves a little relative to the print
        live.tx = _smooth(rng, 2, 0.006, 0.2, 0.8)
        live.ty = _smooth(rng, 2, 0.006, 0.2, 0.8)
        live.rot = _smooth(rng, 2, 0.6, 0.2, 0.6)
        live.scale = _smooth(rng, 1, 0.005, 0.2, 0.6)
        live.yaw = _smooth(rng, 1, 0.02, 0.2, 0.6)
    return SimpleNamespace(pr=pr, margin=margin, mo=mo, live=live, win=win, pw=pw, ph=ph)


def _print_frames(v: SimpleNamespace, kind: str):
    p = _print_setup(v, kind)
    pr, margin, live, pw, ph = p.pr, p.margin, p.live, p.pw, p.ph
    PH, PW = pr.shape[:2]
    for i in range(v.n):
        t = i / v.fps
        sheet = pr
        if live is not None:      # only the window around the holes is rendered
            wx0, wx1, wy0, wy1 = p.win
            behind = _live_frame(np.zeros((wy1 - wy0, wx1 - wx0, 3), np.float32) + v.subj["skin"] * 0.5,
                                 v.canvas, live, t, v.subj["skin"], frame_wh=(pw, ph), roi=(wx0, wy0))
            sheet = pr.copy()
            win = sheet[margin + wy0:margin + wy1, margin + wx0:margin + wx1]
            a = win[..., 3:4]
            win[..., :3] = win[..., :3] * a + behind * (1 - a)
            win[..., 3] = 1.0
        mx, my, shade = _plane_maps(v.w, v.h, PW, PH, p.mo, t, inner=pw / PW)
        layer = cv2.remap(sheet, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        col = None if shade is None else layer[..., :3] * shade[..., None]
        frame = _over(layer, v.room, col) * np.float32(1 + v.expo(t))
        yield v.cam(frame)


def _replay_frames(v: SimpleNamespace):
    """Video replay: a recording of the live subject, shown on a hand-held screen."""
    rng, s, w, h = v.rng, v.s, v.w, v.h
    srng = np.random.default_rng([v.seed, SPLIT_IDS[v.split], v.subject, 3000,
                                  QUALITIES.index(v.info.quality)])
    sw, sh = w, h
    rec_room = _draw_room(v.subj["photo_room"], sw, sh)
    face = LiveFace(srng, v.dur, v.rate)
    bez = int(round(min(sw, sh) * rng.uniform(0.06, 0.1)))
    SW, SH = sw + 2 * bez, sh + 2 * bez
    mo = PlaneMotion(rng, 0.0)
    pitch = rng.uniform(1.5, 2.6)                    # screen pixel pitch in frame px
    fl_f, fl_p = rng.uniform(2.5, 6.0), rng.uniform(0, 2 * math.pi)
    band_speed, band_p = rng.uniform(0.4, 1.2), rng.uniform(0, 1)
    gamma = 1 + 0.5 * s
    tint = np.array([0.06, 0.0, -0.05], np.float32) * s  # cooler display white (BGR)
    ys_, xs_ = np.mgrid[0:SH, 0:SW].astype(np.float32)
    gloss = (0.10 + 0.05 * (xs_ / SW - ys_ / SH)).astype(np.float32)
    for i in range(v.n):
        t = i / v.fps
        content = _live_frame(rec_room, v.canvas, face, t, v.subj["skin"])
        content = np.clip(content + 0.01 * srng.standard_normal(content.shape, dtype=np.float32), 0, 1)
        disp = 0.05 * s + (1 - 0.05 * s) * cv2.pow(content, gamma)
        disp = disp * (1 + tint)
        disp *= 1 + 0.07 * math.sin(2 * math.pi * fl_f * t + fl_p)              # flicker
        band = (np.arange(sh, dtype=np.float32) / sh - (band_speed * t + band_p)) % 1.0
        disp *= (1 + 0.06 * np.exp(-((band - 0.5) / 0.08) ** 2))[:, None, None]  # rolling band
        screen = np.empty((SH, SW, 4), np.float32)
        screen[..., :3] = gloss[..., None]
        screen[bez:bez + sh, bez:bez + sw, :3] = disp
        screen[..., 3] = 1.0
        mx, my, _ = _plane_maps(w, h, SW, SH, mo, t, inner=sw / SW)
        layer = cv2.remap(screen, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        # the pixel grid, point-sampled by the camera at the plane coordinates: moire
        on = ((mx > bez) & (mx < bez + sw) & (my > bez) & (my < bez + sh)).astype(np.float32)
        grid = (np.cos(math.pi * mx / pitch) ** 2) * (np.cos(math.pi * my / pitch) ** 2)
        layer[..., :3] *= (1 - on * (0.30 * s) * (1 - grid))[..., None]
        frame = _over(layer, v.room) * np.float32(1 + v.expo(t))
        yield v.cam(frame)


def video_path(root: Path, split: str, subject: int, stem: str) -> Path:
    return root / SPLITS[split] / str(subject) / f"{stem}{VIDEO_EXT}"


def render_video(args: tuple) -> tuple[str, str]:
    """Write one video atomically; return (relative path, sha256). Skips a complete file."""
    params, root, split, subject, stem = args
    root = Path(root)
    path = video_path(root, split, subject, stem)
    w, h = params["sizes"][STEMS[stem].quality]
    return write_video(path, root, params["fps"], (w, h), _render_frames(params, split, subject, stem))


def write_video(path: Path, root: Path, fps: float, size: tuple, frames) -> tuple[str, str]:
    """Write ``frames`` to ``path`` atomically as MJPG (any container: .avi, .mov, .mp4);
    return (path relative to ``root``, sha256). A complete file is kept as it is."""
    rel = path.relative_to(root).as_posix()
    if path.exists():
        return rel, file_sha256(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    # FFmpeg names the MJPEG tag per container: MJPG in AVI, jpeg in QuickTime and MP4
    tag = "MJPG" if path.suffix == ".avi" else "jpeg"
    with atomic_path(path, path.suffix) as tmp:
        # The FFmpeg backend's MJPG (bundled with opencv-python): 4:2:0, about a third of the
        # size of OpenCV's own MJPG muxer at equal error, and deterministic. It ignores
        # VIDEOWRITER_PROP_QUALITY, so there is no quality knob.
        vw = cv2.VideoWriter(str(tmp), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*tag), fps, (w, h))
        if not vw.isOpened():
            raise RuntimeError(f"cv2.VideoWriter could not open {tmp} (MJPEG)")
        for frame in frames:
            vw.write(frame)
        vw.release()
    return rel, file_sha256(path)


def _manifest_params(params: dict) -> dict:
    return {k: v for k, v in params.items()}


def render_all(render, jobs: list, workers: int, progress: bool, desc: str) -> dict:
    """{relative path: sha256} of every video ``render(job)`` writes, with a progress bar,
    on data_prep.util's worker pool (``run_jobs``: ``workers`` spawned processes, or this
    one). Each worker computes the state it needs (``face_assignment``) itself: every
    draw is seeded, so it is the same in every process."""
    bar = progress_bar(len(jobs), desc, progress, unit="video")
    return dict(run_jobs(render, jobs, workers, bar, "render"))


def generate(params: dict, out: Path, workers: int = 2, force: bool = False,
             progress: bool = True) -> dict:
    """Write the whole tree; return the manifest (also written to ``out/synth_manifest.json``)."""
    out = Path(out)
    man_path = out / MANIFEST
    if man_path.exists():
        old = json.loads(man_path.read_text())
        if old.get("params") != _manifest_params(params) and not force:
            raise errors.UserError(f"{out} holds a synthetic set made with other parameters "
                                   f"(see {man_path}); choose another --out or pass --force")
        if force and old.get("params") != _manifest_params(params):
            for rel in old.get("files", {}):
                (out / rel).unlink(missing_ok=True)
            man_path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(params, str(out), sp, sub, stem)
            for sp in ("train", "test") for sub in params["subjects"][sp] for stem in STEMS]
    files = render_all(render_video, jobs, workers, progress, "synth videos")
    manifest = {"generator": "data_prep.synth", "params": _manifest_params(params),
                "faces": {f"{sp}/{sub}": face_assignment(params["seed"])[(sp, sub)]
                          for sp in ("train", "test") for sub in params["subjects"][sp]},
                "files": dict(sorted(files.items()))}
    write_json_atomic(man_path, manifest, sort_keys=True)
    return manifest


# --------------------------------------------------------------------------- contact sheet
def _read_frames(path: Path, n: int | None = None) -> list[np.ndarray]:
    """The first ``n`` (default all) decoded frames, through data_prep.samples.read_frames."""
    from itertools import islice
    from data_prep.samples import read_frames
    return list(islice(read_frames(path), n))


def contact_sheet(root: Path, out_png: Path, split: str = "train", subject: int = 1,
                  strip_len: int = 8, cell_h: int = 180) -> Path:
    """One frame of each of the 12 videos of a subject, then for each class a strip of
    consecutive face crops (from the normal-quality video) over |frame - previous frame|,
    which shows the temporal cue: blinks and non-rigid motion, rigid planar motion,
    flicker."""
    root, out_png = Path(root), Path(out_png)
    font = cv2.FONT_HERSHEY_SIMPLEX
    def label(img, text):
        img = img.copy()
        cv2.putText(img, text, (4, 16), font, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(img, text, (4, 16), font, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        return img
    rows = []
    by_q = {q: [st for st in STEMS if STEMS[st].quality == q] for q in ("normal", "low", "high")}
    for q, stems in by_q.items():
        cells = []
        for st in stems:
            f = _read_frames(video_path(root, split, subject, st), 1)[0]
            f = cv2.resize(f, (int(f.shape[1] * cell_h / f.shape[0]), cell_h), interpolation=cv2.INTER_AREA)
            cells.append(label(f, f"{st}.avi  {STEMS[st].attack}, {q}"))
        rows.append(np.hstack(cells))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    casc = _cascade()
    strips = []
    crop = 96
    for st in [st for st in STEMS if STEMS[st].quality == "normal"]:
        fr = _read_frames(video_path(root, split, subject, st), strip_len + 1)
        g = cv2.cvtColor(fr[0], cv2.COLOR_BGR2GRAY)
        det = casc.detectMultiScale(g, 1.1, 5)
        x, y, bw, bh = max(det, key=lambda d: d[2]) if len(det) else (0, 0, g.shape[1], g.shape[0])
        cx, cy, half = x + bw // 2, y + bh // 2, int(0.7 * max(bw, bh))
        def cut(f):
            p = cv2.copyMakeBorder(f, half, half, half, half, cv2.BORDER_CONSTANT)
            return cv2.resize(p[cy:cy + 2 * half, cx:cx + 2 * half], (crop, crop), interpolation=cv2.INTER_AREA)
        top = [cut(f) for f in fr[1:]]
        diff = [np.clip(np.abs(cut(b).astype(np.int16) - cut(a).astype(np.int16)) * 4, 0, 255).astype(np.uint8)
                for a, b in zip(fr[:-1], fr[1:])]
        strip = np.vstack([np.hstack(top), np.hstack(diff)])
        strip = label(strip, f"{st}.avi {STEMS[st].attack}: {strip_len} consecutive frames / 4x|frame - previous|")
        strips.append(np.pad(strip, ((0, 4), (0, width - strip.shape[1]), (0, 0)), constant_values=255))
    sheet = np.vstack(rows + strips)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_png, ".png") as tmp:
        if not cv2.imwrite(str(tmp), sheet):
            raise RuntimeError(f"cv2.imwrite could not write {tmp}")
    return out_png


# --------------------------------------------------------------------------- CLI
def _du(root: Path) -> int:
    return sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())


@errors.cli
def main(argv: list[str] | None = None) -> int:
    from configs import load_config
    ap = argparse.ArgumentParser(prog="python -m data_prep.synth", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output root (gets train_release/, test_release/)")
    ap.add_argument("--preset", default=None, help="full or mini (default: synth.preset)")
    ap.add_argument("--seed", type=int, default=None, help="master seed (default: seed)")
    ap.add_argument("--difficulty", type=float, default=None, help="0..1 (default: synth.difficulty)")
    ap.add_argument("--cues", default=None, choices=CUES,
                    help="what separates the classes (default: synth.cues; see configs/default.yaml)")
    ap.add_argument("--config", default=None, help="YAML config (default: configs/default.yaml)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: synth.workers)")
    ap.add_argument("--force", action="store_true", help="replace a set made with other parameters")
    ap.add_argument("--contact-sheet", default=None, metavar="PNG", help="also write a contact sheet")
    a = ap.parse_args(argv)
    cfg = load_config(a.config, a.set)
    if a.seed is not None:
        cfg["seed"] = a.seed
    if a.difficulty is not None:
        cfg["synth"]["difficulty"] = a.difficulty
    if a.cues is not None:
        cfg["synth"]["cues"] = a.cues
    preset = a.preset or cfg["synth"]["preset"]
    params = synth_params(cfg, preset)
    workers = a.workers or cfg["synth"]["workers"] or os.cpu_count() or 1
    print(json.dumps({k: params[k] for k in ("preset", "seed", "difficulty", "fps", "frames", "sizes")}))
    t0 = time.time()
    man = generate(params, Path(a.out), workers=workers, force=a.force)
    dt = time.time() - t0
    print(f"{len(man['files'])} videos in {a.out}: {_du(Path(a.out)) / 1e6:.1f} MB, {dt:.1f} s "
          f"({workers} workers)")
    if a.contact_sheet:
        subj = params["subjects"]["train"][0]
        print("contact sheet:", contact_sheet(Path(a.out), Path(a.contact_sheet), "train", subj))
    return 0


if __name__ == "__main__":
    # run through the package name so worker processes pickle ``data_prep.synth.*``
    from data_prep.synth import main as _main
    sys.exit(_main())
