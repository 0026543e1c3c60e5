"""Synthetic trees in the Replay-Attack, MSU-MFSD and OULU-NPU layouts.

    python -m data_prep.synth_layouts --layout replay|msu|oulu --out DIR [--config C]

Every file name, folder and split comes from the data set's own module
(data_prep/replay.py, msu.py, oulu.py: ``file_name`` for each client of
``synth.layouts.<name>.clients`` and each of its stems), so the loaders and their
protocols are tested end to end on the layout they read. The frames are rendered by
data_prep/synth.py (the same faces, rooms, cameras and attack physics as the
synthetic CASIA-FASD set). What is ours, not the data sets' (a choice, stated here):

* people: each synthetic client is one of synth.py's identities, dealt in order,
  under a seed of its own per layout (``seed`` + ``SEED_SALT``), so each layout has
  its own faces and rooms;
* attack kinds: prints are synth.py's ``warped`` print (OULU-NPU's second printer its
  ``cut`` print), every screen attack (photo or video on a phone or tablet) its
  ``video`` replay;
* capture: one frame size per layout, about half the real one (``SIZES``), and the
  condition column mapped onto synth.py's sensor-noise levels (``QUALITY``).

Reruns skip complete files; ``synth_manifest.json`` (written last) records the
parameters and each file's SHA-256.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from configs import errors
from configs.files import write_json_atomic
from data_prep import datasets, synth
from data_prep.casia import StemInfo

LAYOUTS = ("replay", "msu", "oulu")
SEED_SALT = {"replay": 101, "msu": 202, "oulu": 303}
# [width, height] per synth.py quality: the real sets' 320x240 (Replay-Attack), 640x480
# and 720x480 (MSU-MFSD laptop, Nexus 5), halved; 1920x1080 (OULU-NPU) quartered.
SIZES = {"replay": {"low": [320, 240], "normal": [320, 240], "high": [320, 240]},
         "msu": {"low": [320, 240], "normal": [320, 240], "high": [360, 240]},
         "oulu": {"low": [480, 270], "normal": [480, 270], "high": [480, 270]}}
# the data set's condition (its quality column) -> synth.py's noise level
QUALITY = {"replay": {"adverse": "low", "control": "high"},
           "msu": {"laptop": "normal", "android": "high"},
           "oulu": {"phone1": "high", "phone2": "high", "phone3": "normal", "phone4": "normal",
                    "phone5": "low", "phone6": "low"}}
# the data set's attack column -> synth.py's attack kind
KIND = {"replay": {"print": "warped", "mphoto": "video", "mvideo": "video", "hphoto": "video",
                   "hvideo": "video"},
        "msu": {"print": "warped", "ipad": "video", "iphone": "video"},
        "oulu": {"print1": "warped", "print2": "cut", "replay1": "video", "replay2": "video"}}
# synth.py's identities: CASIA-numbered (split, subject) pairs of its face assignment
IDENTITIES = [("train", k) for k in range(1, 21)] + [("test", k) for k in range(1, 31)]


def layout_params(cfg: dict, name: str) -> dict:
    """synth.py's parameters for one layout, with its clients, frames and sizes."""
    if name not in LAYOUTS:
        raise errors.UserError(f"unknown layout {name!r}; choose from {list(LAYOUTS)}")
    lay = cfg["synth"]["layouts"][name]
    p = synth.synth_params(cfg, "mini")
    p.update(preset=f"layout-{name}", layout=name, seed=int(cfg["seed"]) + SEED_SALT[name],
             frames=int(lay["frames"]), sizes=SIZES[name],
             clients={sp: [int(c) for c in lay["clients"][sp]] for sp in datasets.splits(name)})
    p.pop("subjects", None)
    return p


def _jobs(params: dict, out: Path) -> list:
    name = params["layout"]
    m = datasets.module(name)
    jobs, i = [], 0
    for split in datasets.splits(name):
        for client in params["clients"][split]:
            ident = IDENTITIES[i % len(IDENTITIES)]
            i += 1
            for k, stem in enumerate(m.stems()):
                jobs.append((params, str(out), split, client, stem, k, ident))
    return jobs


def render(job) -> tuple[str, str]:
    params, root, split, client, stem, k, (id_split, id_subject) = job
    name = params["layout"]
    m = datasets.module(name)
    info = m.stem_info(stem)
    kind = "genuine" if info.attack == "genuine" else KIND[name][info.attack]
    q = QUALITY[name][info.quality]
    frames = synth._render_frames(params, id_split, id_subject, stem,
                                  StemInfo(info.label, kind, q), stem_id=k)
    root = Path(root)
    return synth.write_video(root / m.file_name(split, client, stem), root, params["fps"],
                             tuple(params["sizes"][q]), frames)


def generate(params: dict, out: Path, workers: int = 2, progress: bool = True) -> dict:
    """Write the layout's tree; return the manifest (also ``out/synth_manifest.json``)."""
    out = Path(out)
    man = out / synth.MANIFEST
    if man.exists() and json.loads(man.read_text()).get("params") != params:
        raise errors.UserError(f"{out} holds a synthetic set made with other parameters "
                               f"(see {man}); choose another --out or delete it")
    out.mkdir(parents=True, exist_ok=True)
    files = synth.render_all(render, _jobs(params, out), workers, progress,
                             f"synth {params['layout']} videos")
    manifest = {"generator": "data_prep.synth_layouts", "params": params,
                "files": dict(sorted(files.items()))}
    write_json_atomic(man, manifest, sort_keys=True)
    return manifest


@errors.cli
def main(argv=None) -> int:
    from configs import load_config
    ap = argparse.ArgumentParser(prog="python -m data_prep.synth_layouts",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--layout", required=True, choices=LAYOUTS)
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--workers", type=int, default=None)
    a = ap.parse_args(argv)
    cfg = load_config(a.config, a.set)
    params = layout_params(cfg, a.layout)
    workers = a.workers or cfg["synth"]["workers"] or os.cpu_count() or 1
    t0 = time.time()
    man = generate(params, Path(a.out), workers)
    print(f"{len(man['files'])} {datasets.TITLES[a.layout]}-layout videos in {a.out}, "
          f"{time.time() - t0:.1f} s ({workers} workers)")
    return 0


if __name__ == "__main__":
    from data_prep.synth_layouts import main as _main
    sys.exit(_main())
