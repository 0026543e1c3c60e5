"""The synthetic CASIA-FASD set: layout, frame sizes, Viola-Jones detection, determinism, reruns."""
from __future__ import annotations

import json
import time
from collections import defaultdict

import cv2
import numpy as np
import pytest

from configs import load_config
from configs.errors import UserError
from data_prep import casia, synth
from data_prep.samples import read_frames


@pytest.fixture(scope="module")
def mini_params():
    return synth.synth_params(load_config(), "mini")


def _frames(path):
    return list(read_frames(path))


@pytest.mark.slow
def test_layout_is_casia(synth_mini, mini_params):
    for split, folder in casia.SPLITS.items():
        subjects = sorted(int(p.name) for p in (synth_mini / folder).iterdir())
        assert subjects == mini_params["subjects"][split]
        for sub in subjects:
            names = sorted(p.name for p in (synth_mini / folder / str(sub)).iterdir())
            assert names == sorted(st + casia.VIDEO_EXT for st in casia.STEMS)   # no partial files
    top = sorted(p.name for p in synth_mini.iterdir())
    assert top == sorted(["test_release", "train_release", synth.MANIFEST])


@pytest.mark.slow
def test_frame_sizes_and_counts(synth_mini, mini_params):
    sizes = {}
    for st, info in casia.STEMS.items():
        cap = cv2.VideoCapture(str(synth.video_path(synth_mini, "train", 1, st)))
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        assert cap.get(cv2.CAP_PROP_FOURCC) == cv2.VideoWriter_fourcc(*"MJPG")
        cap.release()
        assert [w, h] == mini_params["sizes"][info.quality]
        assert n == mini_params["frames"]
        sizes.setdefault(info.quality, set()).add((w, h))
    assert len({s for v in sizes.values() for s in v}) == 3          # three distinct sizes
    (w, h), = sizes["high"]
    assert abs(w / h - 16 / 9) < 0.01 and w * h == max(a * b for v in sizes.values() for a, b in v)
    (w, h), = sizes["normal"]
    assert w > h                                                     # odd stems landscape
    (w, h), = sizes["low"]
    assert h > w                                                     # even stems portrait


@pytest.mark.slow
def test_viola_jones_finds_faces(synth_mini):
    """>= 90% of frames of every class (and every quality) hold a default-cascade face."""
    casc = synth._cascade()
    hit, tot = defaultdict(int), defaultdict(int)
    for split, folder in casia.SPLITS.items():
        for sub in (synth_mini / folder).iterdir():
            for st, info in casia.STEMS.items():
                for f in _frames(sub / (st + casia.VIDEO_EXT)):
                    found = len(casc.detectMultiScale(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), 1.1, 5)) > 0
                    for key in (info.attack, info.quality):
                        hit[key] += found
                        tot[key] += 1
    rates = {k: hit[k] / tot[k] for k in tot}
    assert set(rates) == set(casia.ATTACK_TYPES) | {"genuine"} | set(casia.QUALITIES)
    assert min(rates.values()) >= 0.90, rates


@pytest.mark.slow
def test_same_seed_same_bytes(synth_mini, mini_params, tmp_path):
    man = json.loads((synth_mini / synth.MANIFEST).read_text())
    for st in casia.STEMS:                    # all 12 classes/qualities of one subject, again
        rel, digest = synth.render_video((mini_params, str(tmp_path), "test", 2, st))
        assert digest == man["files"][rel]
        assert (tmp_path / rel).read_bytes() == (synth_mini / rel).read_bytes()


@pytest.mark.slow
def test_other_seed_other_bytes(synth_mini, mini_params, tmp_path):
    other = dict(mini_params, seed=mini_params["seed"] + 1)
    rel, digest = synth.render_video((other, str(tmp_path), "train", 1, "1"))
    assert digest != json.loads((synth_mini / synth.MANIFEST).read_text())["files"][rel]


def test_subjects_have_distinct_real_faces():
    faces = synth.face_assignment(1701)
    assert len(faces) == 50 and len(set(faces.values())) == 50
    assert all(0 <= i < synth.N_LFW_FACES for i in faces.values())   # lfw_subset faces only


@pytest.mark.slow
def test_rerun_skips_and_refuses_other_params(synth_mini, mini_params):
    before = (synth_mini / synth.MANIFEST).read_text()
    t0 = time.time()
    synth.generate(mini_params, synth_mini, workers=1, progress=False)
    assert time.time() - t0 < 10
    assert (synth_mini / synth.MANIFEST).read_text() == before
    with pytest.raises(UserError, match="other parameters"):
        synth.generate(dict(mini_params, difficulty=0.1), synth_mini, workers=1, progress=False)


def test_difficulty_scales_static_cues(mini_params):
    """The print and the screen differ more from the live face at low difficulty."""
    def frame(stem, difficulty):
        p = dict(mini_params, difficulty=difficulty)
        return next(synth._render_frames(p, "train", 1, stem)).astype(np.float32)
    for stem in ("3", "7"):
        easy, hard = frame(stem, 0.0), frame(stem, 1.0)
        assert np.abs(easy - hard).mean() > 2.0      # gamut, texture, moire, gamma change pixels


def test_live_face_blinks_print_does_not(mini_params):
    rng = np.random.default_rng(0)
    live = synth.LiveFace(rng, 10.0, mini_params["blink_rate_hz"])
    still = synth.LiveFace(rng, 10.0, mini_params["blink_rate_hz"], still=True)
    ts = np.arange(0, 10, 1 / 15)
    assert max(live.blink(t) for t in ts) > 0.9
    assert max(still.blink(t) for t in ts) == 0.0


@pytest.mark.slow
def test_index_reads_the_tree_like_casia(synth_mini, mini_params):
    """The data-prep loader walks the synthetic tree with its CASIA-FASD code path."""
    from data_prep import index
    idx = index.scan(synth_mini)
    n = sum(len(v) for v in mini_params["subjects"].values()) * len(casia.STEMS)
    assert len(idx.videos) == n
    assert idx.extra == []
    assert {(v.attack, v.quality) for v in idx.videos} == {(i.attack, i.quality) for i in casia.STEMS.values()}
