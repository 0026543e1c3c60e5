"""Can the LSTM-CNN learn an order-only cue under a config's regime? A capacity check.

Copies a prepared ``s<scale>_T<T>`` folder (data_prep/hdf5_layout.py) with new labels
(1 with probability ``--genuine``, seeded) and one cue that no single frame carries
(``--cue``):

* ``ramp`` (signed order): frame t (t = 0..T-1) of every clip gets the brightness offset
  ``sign * c * (t / (T-1) - 1/2)`` grey levels, sign +1 for label 1 and -1 for label 0.
  So the first-to-last contrast is +c or -c, and the offsets a frame can get are the same
  set in both classes: a model that sees frames without their order cannot use it.
* ``spread`` (magnitude of change): a label-1 clip gets one offset, uniform in
  [-c/2, c/2], on all its frames; a label-0 clip an independent one on each frame. Every
  frame's offset has the same distribution in both classes; only whether the frames of a
  clip differ from each other tells them apart (the order sets' kind of cue).

Everything else in the clip (appearance, motion, noise) is independent of the new label.
Then it trains the config's LSTM-CNN on fold k's training shards with the real Caffe
solver for ``--iters`` iterations and reports the fold's validation loss against the
class-prior loss and the AUC every ``--every`` iterations.

    python -m scripts.diagnostics.temporal_capacity --prep RUN/prep/s1.0_T5 \
        --config configs/validate-temporal.yaml --contrast 40 14 [--cue ramp|spread] [--model lstm] [--fold 1]

docs/validation.md gives what it measured on the known-answer sets' clips.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from configs import errors


def ramp_offsets(T: int, c: float) -> np.ndarray:
    """(T,) brightness offsets of a label-1 clip, -c/2 .. +c/2 (label 0: the negation)."""
    return (np.arange(T) / max(T - 1, 1) - 0.5) * float(c)


def spread_offsets(rng: np.random.Generator, y: np.ndarray, T: int, c: float) -> np.ndarray:
    """(N, T) offsets: uniform in [-c/2, c/2], one per clip for label 1, one per frame for 0."""
    per_frame = rng.uniform(-c / 2, c / 2, (len(y), T))
    return np.where((y == 1)[:, None], per_frame[:, :1], per_frame).astype(np.float32)


CUES = ("ramp", "spread")


def cue_copy(src: Path, dst: Path, c: float, genuine: float, seed: int, cue: str = "ramp") -> Path:
    """Copy the prepared folder ``src`` to ``dst`` with new labels and the ``cue``."""
    if cue not in CUES:
        raise errors.UserError(f"--cue {cue!r}: choose one of {', '.join(CUES)}")
    import h5py
    if not (src / "manifest.json").exists():
        raise errors.UserError(f"{src}: not a prepared (scale, T) folder (no manifest.json); "
                               f"run `make prep` and pass RUN/prep/s<scale>_T<T>")
    dst.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([int(seed), 0xCA9])
    for p in sorted(src.iterdir()):
        if p.suffix == ".txt" or p.name == "manifest.json":
            shutil.copy(p, dst / p.name)
        elif p.suffix == ".h5":
            q = dst / p.name
            shutil.copy(p, q)
            with h5py.File(q, "r+") as f:
                x = f["data"][:].astype(np.float32)
                y = (rng.random(len(x)) < genuine).astype(np.float32)
                if cue == "ramp":
                    sign = np.where(y == 1, 1.0, -1.0).astype(np.float32)
                    off = sign[:, None] * ramp_offsets(x.shape[1], c)[None, :]
                else:
                    off = spread_offsets(rng, y, x.shape[1], c)
                x += off[:, :, None, None, None]
                f["data"][...] = np.clip(np.rint(x), 0, 255).astype(np.uint8)
                f["label"][...] = y
    return dst


def train_and_watch(cfg: dict, model: str, folder: Path, fold: int, iters: int,
                    every: int) -> tuple[list[dict], float]:
    """Train ``model`` on fold ``fold`` of ``folder``: validation loss and AUC per check
    (through the deploy net sharing the solver's weights, as the trainer validates), and
    the class-prior loss of the fold's validation labels."""
    import caffe
    import h5py
    from sklearn.metrics import roc_auc_score
    from tqdm import tqdm
    from data_prep import hdf5_layout as L
    from prototxt import generate as G
    from scripts.training.caffe_io import predict_shards
    from scripts.training.curves import class_prior_loss
    from scripts.training.trainer import nll
    tr, va = folder / f"fold{fold}_train.txt", folder / f"fold{fold}_val.txt"
    val_shards = L.read_list(va)
    with h5py.File(val_shards[0], "r") as f:
        T = int(f["data"].shape[1])
    work = Path(tempfile.mkdtemp(prefix="capacity-", dir=folder))
    net = G.write_net(work / "train_val.prototxt", G.net_param(cfg, model, T, str(tr), str(va)))
    deploy = G.write_net(work / "deploy.prototxt", G.deploy_net(cfg, model, T))
    (work / "solver.prototxt").write_text(
        G.solver_text(cfg, model, T, net, work / "snap", test_iter=1, test_interval=10 ** 6,
                      snapshot=0).replace("test_initialization: true", "test_initialization: false"))
    caffe.set_mode_cpu()
    caffe.set_random_seed(int(cfg["seed"]))
    solver = caffe.get_solver(str(work / "solver.prototxt"))
    deploy_net = caffe.Net(str(deploy), caffe.TEST)
    rows, y = [], None
    for it in tqdm(range(every, iters + 1, every), desc=f"{model} {folder.parent.name}", unit="check"):
        solver.step(every)
        deploy_net.share_with(solver.net)
        scores, y, _ = predict_shards(deploy_net, val_shards, int(cfg["train"]["score_batch"]))
        rows.append({"iter": it, "val_loss": nll(scores, y)[0], "auc": float(roc_auc_score(y, scores))})
    shutil.rmtree(work, ignore_errors=True)
    return rows, class_prior_loss(y)


@errors.cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prep", required=True, type=Path, help="a prepared RUN/prep/s<scale>_T<T> folder")
    ap.add_argument("--config", default=None, help="the regime (default configs/default.yaml)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--contrast", type=float, nargs="+", default=[40.0, 14.0],
                    help="the cue's size(s) c, grey levels: the ramp's first-to-last contrast, the spread's range")
    ap.add_argument("--cue", choices=CUES, default="ramp",
                    help="ramp: a signed brightness ramp (order); spread: frames alike or not")
    ap.add_argument("--model", choices=["lstm", "peephole"], default="lstm")
    ap.add_argument("--fold", type=int, default=1)
    ap.add_argument("--iters", type=int, default=250)
    ap.add_argument("--every", type=int, default=25)
    ap.add_argument("--genuine", type=float, default=0.25, help="share of label 1")
    ap.add_argument("--out", type=Path, default=Path("runs/temporal-capacity"))
    a = ap.parse_args(argv)
    from configs import load_config
    cfg = load_config(a.config, a.set)
    result = {}
    for c in a.contrast:
        folder = cue_copy(a.prep, a.out / f"{a.cue}{c:g}" / a.prep.name, c, a.genuine,
                          cfg["seed"], a.cue)
        rows, prior = train_and_watch(cfg, a.model, folder, a.fold, a.iters, a.every)
        best = min(rows, key=lambda r: r["val_loss"])
        result[f"{c:g}"] = {"rows": rows, "prior": prior, "best": best}
        print(f"{a.cue} {c:g} grey levels: best validation loss {best['val_loss']:.3f} "
              f"({best['val_loss'] / prior:.2f} x the prior {prior:.3f}) at {best['iter']}, "
              f"AUC {best['auc']:.3f}; " + ", ".join(f"{r['iter']}: {r['val_loss'] / prior:.2f}"
                                                     for r in rows))
        shutil.rmtree(folder, ignore_errors=True)     # the copy: as large as the folder
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"capacity-{a.cue}.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {a.out / f'capacity-{a.cue}.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
