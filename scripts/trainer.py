"""Train one experiment with the real Caffe solver (paper §3.3) and score it (§4.4).

An experiment folder (scripts.experiments) ends up holding::

    config.yaml           the resolved config of the run
    train_val.prototxt    the exact train net (SequenceData on this split's list files)
    deploy.prototxt       the exact deploy net (raw uint8-range input -> p(genuine))
    solver.prototxt       the exact solver
    caffe.log             everything Caffe logged
    snapshots/            <name>_iter_N.caffemodel / .solverstate (newest kept)
    curve.csv, curve.png  training loss, learning rate, validation loss and accuracy
    val_scores.npz        fold runs: validation p(genuine) at every validation point
    scores_val.csv        fold runs: validation scores at the selected iteration
    scores_test.csv       full runs: test scores of the final model
    model.caffemodel      the final weights
    DONE                  written last; a finished experiment is skipped

Validation runs through the deploy net with the solver's weights shared in
(``Net.share_with``): the loss is the mean of -log p(y | x) over the whole fold, the
same quantity as SoftmaxWithLoss, and the p(genuine) it yields are kept for the
EER(val) of Table 1 without a second pass.
"""
from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from data_prep import hdf5_layout as layout
from data_prep.util import write_json_atomic
from scripts import experiments as X


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and what was kept."""


# ---------------------------------------------------------------- Caffe plumbing
def caffe_mode(gpu: int | None):
    import caffe
    if gpu is None:
        caffe.set_mode_cpu()
    else:
        # Without a usable GPU, Caffe would abort the process in a CUDA CHECK: ask first.
        from scripts.gpu import require_gpu
        require_gpu(int(gpu))
        caffe.set_device(int(gpu))
        caffe.set_mode_gpu()
    return caffe


@contextlib.contextmanager
def caffe_log_to(path: Path):
    """Send the process's fd 2 (where glog writes) to ``path``; yield a console stream."""
    sys.stderr.flush()
    saved = os.dup(2)
    console = os.fdopen(os.dup(saved), "w", buffering=1)
    log = open(path, "ab", buffering=0)
    os.dup2(log.fileno(), 2)
    try:
        yield console
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        log.close()
        console.flush()
        console.close()


def read_list(list_path: Path) -> list[Path]:
    try:
        return layout.read_list(list_path)
    except FileNotFoundError as e:
        raise TrainingError(str(e)) from None


def iter_shards(shards: list[Path], batch: int):
    """Yield (data uint8 (B,T,3,H,W), label, meta dict) batches in list order."""
    import h5py
    for shard in shards:
        with h5py.File(shard, "r") as f:
            n = f[layout.LABEL].shape[0]
            meta = {k: f[k][...] for k in ("subject", "stem", "frame")}
            for a in range(0, n, batch):
                b = min(n, a + batch)
                yield (f[layout.DATA][a:b], f[layout.LABEL][a:b],
                       {k: v[a:b] for k, v in meta.items()})


def genuine_prob(out: dict, n: int) -> np.ndarray:
    """p(genuine) from a deploy net's outputs: ``p_genuine`` (N, 1), or column 1 of the
    softmax ``prob`` (N, 2); label 1 = genuine (data_prep.casia)."""
    if "p_genuine" in out:
        return np.asarray(out["p_genuine"]).reshape(n).astype(np.float64)
    return np.asarray(out["prob"]).reshape(n, -1)[:, 1].astype(np.float64)


def predict_shards(net, shards: list[Path], batch: int):
    """p(genuine) for every sample of ``shards`` through a deploy ``net``.

    Returns (scores float64 (N,), labels int (N,), meta dict of arrays)."""
    scores, labels, metas = [], [], []
    for data, label, meta in iter_shards(shards, batch):
        net.blobs["data"].reshape(*data.shape)
        net.blobs["data"].data[...] = data
        scores.append(genuine_prob(net.forward(), len(data)))
        labels.append(label.astype(np.int64))
        metas.append(meta)
    if not scores:
        raise TrainingError(f"no samples in {len(shards)} shard(s): {shards[:3]}")
    meta = {k: np.concatenate([m[k] for m in metas]) for k in metas[0]}
    return np.concatenate(scores), np.concatenate(labels), meta


def nll(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean -log p(y|x) (SoftmaxWithLoss) and accuracy at 0.5, from p(genuine)."""
    p = np.where(labels == 1, scores, 1.0 - scores)
    loss = float(np.mean(-np.log(np.maximum(p, np.finfo(np.float32).tiny))))
    acc = float(np.mean((scores >= 0.5) == (labels == 1)))
    return loss, acc


def score_rows(scores, meta):
    return [{"subject": int(s), "video": v.decode() if isinstance(v, bytes) else str(v),
             "frame": int(fr), "score": float(sc)}
            for s, v, fr, sc in zip(meta["subject"], meta["stem"], meta["frame"], scores)]


# ---------------------------------------------------------------- learning rate
def lr_at(sp: dict, it: int) -> float:
    """The learning rate Caffe's multistep/fixed policy gives at iteration ``it``."""
    if sp["lr_policy"] == "multistep":
        return sp["base_lr"] * sp["gamma"] ** sum(1 for s in sp["stepvalue"] if it >= s)
    return sp["base_lr"]


class Plateau:
    """Paper §3.3: lower the rate by 10 "when the loss seems no descending".

    Compares the mean training loss of the last ``window`` iterations with the window
    before; a relative improvement below ``tolerance`` is a plateau."""

    def __init__(self, window: int, tolerance: float, max_drops: int):
        self.window, self.tol, self.max_drops = window, tolerance, max_drops
        self.losses: list[float] = []

    def update(self, loss: float, drops_so_far: int) -> bool:
        self.losses.append(loss)
        w = self.window
        if drops_so_far >= self.max_drops or len(self.losses) < 2 * w:
            return False
        prev, last = np.mean(self.losses[-2 * w:-w]), np.mean(self.losses[-w:])
        if prev - last < self.tol * abs(prev):
            self.losses.clear()
            return True
        return False


# ---------------------------------------------------------------- exact resume
def boundary_seed(seed: int, it: int) -> int:
    """Caffe's random seed from iteration ``it`` on (dropout masks): a function of
    (seed, it), so a run resumed at ``it`` draws what an uninterrupted run draws."""
    return int(np.random.SeedSequence([int(seed), int(it)]).generate_state(1)[0] & 0x7FFFFFFF)


def position(caffe, solver, seed: int, it: int) -> None:
    """Put the solver's random state and its data layers where iteration ``it`` starts:
    Caffe's generator re-seeded with boundary_seed, every SequenceData layer at batch
    ``it``. Called at the start and at every snapshot boundary, in uninterrupted and in
    resumed runs alike (a .solverstate restores weights, momentum and the iteration,
    but neither the data position nor the generator)."""
    caffe.set_random_seed(boundary_seed(seed, it))
    for layer in solver.net.layers:
        if hasattr(layer, "set_iteration"):
            layer.set_iteration(it)


# ---------------------------------------------------------------- solver file
def write_solver(cfg: dict, exp: X.Experiment, d: Path, sp: dict, base_lr: float, lr_policy: str) -> Path:
    """The experiment's solver (prototxt.generate.solver_text, paper §3.3) with this run's
    schedule. Validation and snapshots are driven from Python, so Caffe's own are off."""
    from prototxt import generate as G
    c = dict(cfg, solver=dict(cfg["solver"], base_lr=base_lr, lr_policy=lr_policy))
    text = G.solver_text(c, exp.model, exp.T, (d / "train_val.prototxt").resolve(),
                         (d / "snapshots" / exp.name).resolve(), max_iter=sp["max_iter"],
                         stepvalues=sp["stepvalue"], test_iter=1,
                         test_interval=int(sp["max_iter"]) + 1,
                         header=f"# Solver of experiment {exp.name}/{exp.split}; written by "
                                f"scripts/trainer.py (validation and snapshots from Python).\n")
    text = re.sub(r"(?m)^snapshot: \d+$", "snapshot: 0", text)
    return G.write_text(d / "solver.prototxt", text)


def snapshots(snap_dir: Path) -> list[tuple[int, Path]]:
    """(iteration, .solverstate) whose .caffemodel is also on disk, oldest first."""
    out = []
    for p in snap_dir.glob("*_iter_*.solverstate"):
        m = re.search(r"_iter_(\d+)\.solverstate$", p.name)
        if m and p.with_suffix(".caffemodel").exists():
            out.append((int(m.group(1)), p))
    return sorted(out)


# ---------------------------------------------------------------- curve file
CURVE_COLS = ("iter", "train_loss", "lr", "val_loss", "val_acc")


def read_curve(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = [{k: (float(v) if v not in ("", None) else None) for k, v in r.items()}
                for r in csv.DictReader(f)]
    for r in rows:            # written back as it was read, so a resumed curve equals an uninterrupted one
        r["iter"] = int(r["iter"])
    return rows


def write_curve(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, CURVE_COLS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in CURVE_COLS})
    os.replace(tmp, path)


def plot_curve(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    it = [r["iter"] for r in rows if r["train_loss"] is not None]
    tl = [r["train_loss"] for r in rows if r["train_loss"] is not None]
    v = [r for r in rows if r["val_loss"] is not None]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(it, tl, lw=1, label="train loss")
    if v:
        ax.plot([r["iter"] for r in v], [r["val_loss"] for r in v], "o-", label="validation loss")
    ax.set_xlabel("iteration")
    ax.set_ylabel("softmax loss")
    ax.grid(alpha=0.3)
    if v:
        ax2 = ax.twinx()
        ax2.plot([r["iter"] for r in v], [r["val_acc"] for r in v], "s--", color="tab:green",
                 label="validation accuracy")
        ax2.set_ylabel("accuracy")
        ax2.set_ylim(0, 1)
        ax2.legend(loc="upper center", fontsize=8)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)


def save_figure(fig, path: Path) -> None:
    """Write a matplotlib figure as PNG atomically (temp file + rename) and close it."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


# ---------------------------------------------------------------- the loop
def train(cfg: dict, exp: X.Experiment, d: Path, sp: dict, val_shards: list[Path] | None,
          gpu=None, console=sys.stderr) -> dict:
    """Run the solver to sp['max_iter'], resuming from the newest snapshot in ``d``.

    ``d`` holds train_val.prototxt and deploy.prototxt; ``sp`` is the schedule:
    base_lr, lr_policy, gamma, stepvalue (list), max_iter, test_interval, snapshot."""
    from tqdm import tqdm
    caffe = caffe_mode(gpu)
    tcfg = cfg["train"]
    seed = int(cfg["seed"])
    caffe.set_random_seed(seed)
    snap_dir = d / "snapshots"
    snap_dir.mkdir(exist_ok=True)
    state_path = d / "train_state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"lr_drops": []}
    plateau = tcfg["lr_schedule"] == "plateau"

    def make_solver(base_lr: float):
        spx = dict(sp, base_lr=base_lr, lr_policy="fixed" if plateau else sp["lr_policy"])
        write_solver(cfg, exp, d, spx, base_lr, spx["lr_policy"])
        return caffe.SGDSolver(str(d / "solver.prototxt")), spx

    base_lr = sp["base_lr"] * (0.1 ** len(state["lr_drops"]))
    solver, spx = make_solver(base_lr)
    snaps = snapshots(snap_dir)
    start = 0
    if snaps:
        start, st = snaps[-1]
        solver.restore(str(st))
        print(f"[train] {exp.name}/{exp.split}: resuming from {st.name} (iteration {start})", file=console)
    curve = [r for r in read_curve(d / "curve.csv") if r["iter"] <= start]
    val_path = d / "val_scores.npz"
    val_store = dict(np.load(val_path)) if val_path.exists() else {}
    val_store = {k: v for k, v in val_store.items() if not k.startswith("iter_") or int(k[5:]) <= start}
    deploy_net = caffe.Net(str(d / "deploy.prototxt"), caffe.TEST) if val_shards else None

    def validate(it: int):
        deploy_net.share_with(solver.net)
        s, y, meta = predict_shards(deploy_net, val_shards, int(tcfg["score_batch"]))
        val_store[f"iter_{it}"] = s.astype(np.float32)
        val_store.setdefault("label", y)
        for k in ("subject", "stem", "frame"):  # plain dtypes: h5py's string metadata can't go in .npz
            val_store.setdefault(k, np.asarray(meta[k]).astype(meta[k].dtype.str))
        return nll(s, y)

    def snapshot(it: int):
        solver.snapshot()
        keep = int(tcfg["keep_snapshots"])
        for _, old in snapshots(snap_dir)[:-keep] if keep > 0 else []:
            old.with_suffix(".caffemodel").unlink(missing_ok=True)
            old.unlink(missing_ok=True)
        write_curve(d / "curve.csv", curve)
        if val_shards:
            np.savez(d / "val_scores.npz.tmp.npz", **val_store)
            os.replace(d / "val_scores.npz.tmp.npz", val_path)
        # What the loop carries between iterations, so that a resume continues exactly.
        state.update(it=it, acc_loss=acc_loss, n_loss=n_loss,
                     plateau_losses=list(pl.losses) if pl is not None else [])
        write_json_atomic(state_path, state)

    max_iter, every = int(sp["max_iter"]), int(tcfg["progress_every"])
    test_interval, snap_every = int(sp["test_interval"]), int(sp["snapshot"]) or int(sp["test_interval"])
    pl = Plateau(int(tcfg["plateau_window"]), float(tcfg["plateau_tolerance"]),
                 int(tcfg["plateau_max_drops"])) if plateau else None
    acc_loss, n_loss = 0.0, 0
    if start and state.get("it") == start:
        acc_loss, n_loss = float(state["acc_loss"]), int(state["n_loss"])
        if pl is not None:
            pl.losses = [float(x) for x in state["plateau_losses"]]
    last_good = snapshots(snap_dir)[-1][1] if snapshots(snap_dir) else None
    bar = tqdm(total=max_iter, initial=start, file=console, unit="it", dynamic_ncols=True,
               desc=f"{exp.name}/{exp.split}", mininterval=1.0)
    t0, it = time.time(), start
    if start == 0 and val_shards:
        vl, va = validate(0)
        curve.append({"iter": 0, "train_loss": None, "lr": base_lr, "val_loss": vl, "val_acc": va})
    position(caffe, solver, seed, start)   # after every net is built (fillers draw from the generator)
    while it < max_iter:
        solver.step(1)
        it = solver.iter
        loss = float(solver.net.blobs["loss"].data)
        lr = base_lr if plateau else lr_at(spx, it - 1)
        if not math.isfinite(loss):
            bar.close()
            write_curve(d / "curve.csv", curve)
            raise TrainingError(
                f"{exp.name}/{exp.split}: the training loss is {loss} at iteration {it} "
                f"(learning rate {lr:g}). Training stopped; the last good snapshot is "
                f"{last_good if last_good else 'none (no snapshot was taken yet)'}. "
                f"Lower solver.base_lr or check the input data, then run again to resume.")
        acc_loss += loss
        n_loss += 1
        if it % every == 0 or it == max_iter:
            curve.append({"iter": it, "train_loss": acc_loss / n_loss, "lr": lr,
                          "val_loss": None, "val_acc": None})
            acc_loss, n_loss = 0.0, 0
            bar.set_postfix_str(f"loss {curve[-1]['train_loss']:.4f} lr {lr:.2g}", refresh=False)
        bar.update(1)
        if val_shards and (it % test_interval == 0 or it == max_iter):
            vl, va = validate(it)
            curve.append({"iter": it, "train_loss": None, "lr": lr, "val_loss": vl, "val_acc": va})
            bar.write(f"[train] {exp.name}/{exp.split} iter {it}: val loss {vl:.4f} acc {va:.3f}")
        if pl is not None and pl.update(loss, len(state["lr_drops"])) and it < max_iter:
            # Lower base_lr by 10: snapshot, rebuild the solver at the new rate, restore.
            state["lr_drops"].append(it)
            snapshot(it)
            base_lr *= 0.1
            bar.write(f"[train] {exp.name}/{exp.split} iter {it}: loss plateau, lr -> {base_lr:g}")
            solver, spx = make_solver(base_lr)
            solver.restore(str(snapshots(snap_dir)[-1][1]))
            position(caffe, solver, seed, it)
        if it % snap_every == 0 or it == max_iter:
            snapshot(it)
            last_good = snapshots(snap_dir)[-1][1]
            position(caffe, solver, seed, it)
    bar.close()
    secs = time.time() - t0
    model = d / "model.caffemodel"
    final = snapshots(snap_dir)[-1][1].with_suffix(".caffemodel")
    _link_or_copy(final, model)
    plot_curve(curve, d / "curve.png", f"{exp.name}/{exp.split}")
    return {"iterations": max_iter, "seconds_this_run": secs, "resumed_from": start,
            "lr_drops": state["lr_drops"], "model": str(model.name)}


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        import shutil
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
