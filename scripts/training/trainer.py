"""Train one experiment with the real Caffe solver (paper §3.3) and score it (§4.4).

An experiment folder (configs.grammar.RunLayout) ends up holding::

    config.yaml           the resolved config of the run
    train_val.prototxt    the exact train net (SequenceData on this split's list files)
    deploy.prototxt       the exact deploy net (raw uint8-range input -> p(genuine))
    solver.prototxt       the exact solver
    caffe.log             everything Caffe logged
    snapshots/            <name>_iter_N.caffemodel / .solverstate (newest kept)
    curve.csv, curve.png  training loss, learning rate, validation loss and accuracy
    val_scores.npz        fold runs: validation p(genuine) at every validation point
    selection.json/.png   full runs: model selection over the folds, the validation thresholds
    scores_val.csv        full runs: the fold models' validation scores at the selected
                          iteration, pooled (a fold folder never changes after its DONE)
    scores_test.csv       full runs: test scores of the final model
    fta.json              full runs: test windows preparation could not build (its record)
    threshold.json        full runs: the thresholds predict decides with
    model.caffemodel      the final weights
    DONE                  written last; a finished experiment is skipped

Validation runs through the deploy net with the solver's weights shared in
(``Net.share_with``): the loss is the mean of -log p(y | x) over the whole fold, the
same quantity as SoftmaxWithLoss, and the p(genuine) it yields are kept for the
EER(val) of Table 1 without a second pass.
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from configs import grammar
from configs.errors import TrainingDiverged
from configs.files import atomic_path, write_json_atomic
from configs.schedule import Schedule
from scripts.training.caffe_io import META_KEYS, caffe_mode, predict_shards
from scripts.training.curves import plot_curve, read_curve, write_curve


def nll(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean -log p(y|x) (SoftmaxWithLoss) and accuracy at 0.5, from p(genuine)."""
    p = np.where(labels == 1, scores, 1.0 - scores)
    loss = float(np.mean(-np.log(np.maximum(p, np.finfo(np.float32).tiny))))
    acc = float(np.mean((scores >= 0.5) == (labels == 1)))
    return loss, acc




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
def write_solver(cfg: dict, exp: grammar.Experiment, d: Path, schedule: Schedule) -> Path:
    """The experiment's solver (prototxt.generate.solver_text, paper §3.3) with this run's
    ``schedule``. Validation and snapshots are driven from Python, so Caffe's own are
    off (test_interval past max_iter, snapshot 0)."""
    from prototxt import generate as G
    text = G.solver_text(cfg, exp.model, exp.T, (d / "train_val.prototxt").resolve(),
                         (d / "snapshots" / exp.name).resolve(), schedule, test_iter=1,
                         test_interval=schedule.max_iter + 1, snapshot=0,
                         header=f"# Solver of experiment {exp.name}/{exp.split}; written by "
                                f"scripts/training/trainer.py (validation and snapshots from Python).\n")
    return G.write_text(d / "solver.prototxt", text)


def read_state(path: Path, start: int) -> dict:
    """train_state.json as of the snapshot at ``start``: the learning-rate drops made up
    to it and one loop state per snapshot iteration (``points``). Records written after
    that snapshot (a kill between the records and Caffe's snapshot) are left out. Reads
    the older one-point form ({"it": ..., "acc_loss": ...}) too."""
    st = json.loads(path.read_text()) if path.exists() else {}
    points = st.get("points")
    if points is None:
        points = {str(st["it"]): {k: st[k] for k in ("acc_loss", "n_loss", "plateau_losses")}} \
            if "it" in st else {}
    return {"lr_drops": [int(i) for i in st.get("lr_drops", []) if int(i) <= start],
            "points": {k: v for k, v in points.items() if int(k) <= start}}


def newest_snapshot_iter(snap_dir: Path) -> int:
    snaps = snapshots(snap_dir)
    return snaps[-1][0] if snaps else 0


def snapshots(snap_dir: Path) -> list[tuple[int, Path]]:
    """(iteration, .solverstate) whose .caffemodel is also on disk, oldest first."""
    out = []
    for p in snap_dir.glob("*_iter_*.solverstate"):
        m = re.search(r"_iter_(\d+)\.solverstate$", p.name)
        if m and p.with_suffix(".caffemodel").exists():
            out.append((int(m.group(1)), p))
    return sorted(out)


# ---------------------------------------------------------------- the loop
class _Loop:
    """The state one training run carries: solver, schedule, curve, validation scores,
    the loss accumulators and the plateau rule. Each method is one named step."""

    def __init__(self, cfg, exp, d: Path, schedule: Schedule, val_shards, gpu, console):
        self.cfg, self.exp, self.d, self.schedule, self.val_shards = cfg, exp, d, schedule, val_shards
        self.console, self.tcfg = console, cfg["train"]
        self.caffe = caffe_mode(gpu)
        self.seed = int(cfg["seed"])
        self.caffe.set_random_seed(self.seed)
        self.snap_dir = d / "snapshots"
        self.snap_dir.mkdir(exist_ok=True)
        self.state_path = d / "train_state.json"
        self.plateau = self.tcfg["lr_schedule"] == "plateau"
        self.start = newest_snapshot_iter(self.snap_dir)
        self.state = read_state(self.state_path, self.start)
        self.base_lr = schedule.base_lr * (0.1 ** len(self.state["lr_drops"]))
        self.make_solver()
        self.restore()
        self.load_records()
        self.setup_counters()

    @property
    def tag(self) -> str:
        return f"{self.exp.name}/{self.exp.split}"

    def make_solver(self) -> None:
        """(Re)write solver.prototxt at the current base_lr and build the SGD solver."""
        self.current = self.schedule.replace(
            base_lr=self.base_lr, lr_policy="fixed" if self.plateau else self.schedule.lr_policy)
        write_solver(self.cfg, self.exp, self.d, self.current)
        self.solver = self.caffe.SGDSolver(str(self.d / "solver.prototxt"))

    def restore(self) -> None:
        """Resume from the newest complete snapshot (iteration ``self.start``), if any."""
        snaps = snapshots(self.snap_dir)
        if not snaps:
            return
        start, st = snaps[-1]
        assert start == self.start, (start, self.start)
        self.solver.restore(str(st))
        print(f"[train] {self.tag}: resuming from {st.name} (iteration {start})", file=self.console)

    def load_records(self) -> None:
        """The curve and validation scores up to the resumed iteration."""
        d, start = self.d, self.start
        self.curve = [r for r in read_curve(d / "curve.csv") if r["iter"] <= start]
        self.val_path = d / "val_scores.npz"
        store = dict(np.load(self.val_path)) if self.val_path.exists() else {}
        self.val_store = {k: v for k, v in store.items()
                          if not k.startswith("iter_") or int(k[5:]) <= start}
        self.deploy_net = self.caffe.Net(str(d / "deploy.prototxt"), self.caffe.TEST) \
            if self.val_shards else None

    def setup_counters(self) -> None:
        sc, tcfg, state = self.schedule, self.tcfg, self.state
        self.max_iter, self.every = sc.max_iter, int(tcfg["progress_every"])
        self.test_interval = sc.test_interval
        self.snap_every = sc.snapshot or sc.test_interval
        self.pl = Plateau(int(tcfg["plateau_window"]), float(tcfg["plateau_tolerance"]),
                          int(tcfg["plateau_max_drops"])) if self.plateau else None
        self.acc_loss, self.n_loss = 0.0, 0
        at = state["points"].get(str(self.start)) if self.start else None
        if at is not None:
            self.acc_loss, self.n_loss = float(at["acc_loss"]), int(at["n_loss"])
            if self.pl is not None:
                self.pl.losses = [float(x) for x in at["plateau_losses"]]
        snaps = snapshots(self.snap_dir)
        self.last_good = snaps[-1][1] if snaps else None

    def validate(self, it: int) -> tuple[float, float]:
        """p(genuine) of the validation fold through the deploy net sharing the solver's
        weights; kept in val_store; returns (loss, accuracy)."""
        self.deploy_net.share_with(self.solver.net)
        s, y, meta = predict_shards(self.deploy_net, self.val_shards, int(self.tcfg["score_batch"]))
        self.val_store[f"iter_{it}"] = s.astype(np.float32)
        self.val_store.setdefault("label", y)
        for k in META_KEYS:  # plain dtypes: h5py's string metadata can't go in .npz
            self.val_store.setdefault(k, np.asarray(meta[k]).astype(meta[k].dtype.str))
        return nll(s, y)

    def validation_missing(self, it: int) -> bool:
        """Is ``it`` a validation point (0, every test_interval, the last) without scores?"""
        due = it == 0 or it % self.test_interval == 0 or it == self.max_iter
        return due and f"iter_{it}" not in self.val_store

    def snapshot(self, it: int) -> None:
        """The records of iteration ``it`` first, then Caffe's snapshot (older ones pruned),
        so that a kill at any moment resumes to the same model: a resumed run starts at
        the newest snapshot and keeps only the records up to it (load_records), so
        records written for a snapshot that never appeared are dropped and made again."""
        self.write_records(it)
        self.caffe_snapshot()

    def write_records(self, it: int) -> None:
        """curve.csv, val_scores.npz and train_state.json (the loop state at ``it``,
        beside the states of the older snapshots still on disk)."""
        write_curve(self.d / "curve.csv", self.curve)
        if self.val_shards:
            with atomic_path(self.val_path, ".npz") as tmp:
                np.savez(tmp, **self.val_store)
        kept = {str(i) for i, _ in snapshots(self.snap_dir)}
        points = {k: v for k, v in self.state["points"].items() if k in kept}
        points[str(it)] = {"acc_loss": self.acc_loss, "n_loss": self.n_loss,
                           "plateau_losses": list(self.pl.losses) if self.pl is not None else []}
        self.state["points"] = points
        write_json_atomic(self.state_path, self.state)

    def caffe_snapshot(self) -> None:
        self.solver.snapshot()
        keep = int(self.tcfg["keep_snapshots"])
        for _, old in snapshots(self.snap_dir)[:-keep] if keep > 0 else []:
            old.with_suffix(".caffemodel").unlink(missing_ok=True)
            old.unlink(missing_ok=True)

    def check_finite(self, loss: float, it: int, lr: float, bar) -> None:
        if math.isfinite(loss):
            return
        bar.close()
        write_curve(self.d / "curve.csv", self.curve)
        last = self.last_good if self.last_good else "none (no snapshot was taken yet)"
        raise TrainingDiverged(
            f"{self.tag}: the training loss is {loss} at iteration {it} (learning rate {lr:g}). "
            f"Training stopped; the last good snapshot is {last}. Lower solver.base_lr or "
            f"check the input data, then run again to resume.")

    def record_loss(self, loss: float, it: int, lr: float, bar) -> None:
        self.acc_loss += loss
        self.n_loss += 1
        if it % self.every == 0 or it == self.max_iter:
            self.curve.append({"iter": it, "train_loss": self.acc_loss / self.n_loss, "lr": lr,
                               "val_loss": None, "val_acc": None})
            self.acc_loss, self.n_loss = 0.0, 0
            bar.set_postfix_str(f"loss {self.curve[-1]['train_loss']:.4f} lr {lr:.2g}",
                                refresh=False)

    def lower_rate(self, it: int, bar) -> None:
        """§3.3: lower base_lr by 10 -- snapshot, rebuild the solver at the new rate, restore."""
        self.state["lr_drops"].append(it)
        self.snapshot(it)
        self.base_lr *= 0.1
        bar.write(f"[train] {self.tag} iter {it}: loss plateau, lr -> {self.base_lr:g}")
        self.make_solver()
        self.solver.restore(str(snapshots(self.snap_dir)[-1][1]))
        position(self.caffe, self.solver, self.seed, it)

    def step(self, bar) -> int:
        """One solver iteration with its bookkeeping; returns the new iteration."""
        self.solver.step(1)
        it = self.solver.iter
        loss = float(self.solver.net.blobs["loss"].data)
        lr = self.base_lr if self.plateau else self.current.lr_at(it - 1)
        self.check_finite(loss, it, lr, bar)
        self.record_loss(loss, it, lr, bar)
        bar.update(1)
        if self.val_shards and (it % self.test_interval == 0 or it == self.max_iter):
            vl, va = self.validate(it)
            self.curve.append({"iter": it, "train_loss": None, "lr": lr, "val_loss": vl, "val_acc": va})
            bar.write(f"[train] {self.tag} iter {it}: val loss {vl:.4f} acc {va:.3f}")
        if self.pl is not None and self.pl.update(loss, len(self.state["lr_drops"])) \
                and it < self.max_iter:
            self.lower_rate(it, bar)
        if it % self.snap_every == 0 or it == self.max_iter:
            self.snapshot(it)
            self.last_good = snapshots(self.snap_dir)[-1][1]
            position(self.caffe, self.solver, self.seed, it)
        return it

    def run(self) -> dict:
        from tqdm import tqdm
        bar = tqdm(total=self.max_iter, initial=self.start, file=self.console, unit="it",
                   dynamic_ncols=True, desc=self.tag, mininterval=1.0)
        t0, it = time.time(), self.start
        if self.val_shards and self.validation_missing(self.start):
            # iteration 0, or a resumed run whose newest snapshot lacks its validation
            # point (records written before this version wrote them first)
            vl, va = self.validate(self.start)
            self.curve.append({"iter": self.start, "train_loss": None, "lr": self.base_lr,
                               "val_loss": vl, "val_acc": va})
        # after every net is built (fillers draw from the generator)
        position(self.caffe, self.solver, self.seed, self.start)
        while it < self.max_iter:
            it = self.step(bar)
        bar.close()
        return self.finish(time.time() - t0)

    def finish(self, secs: float) -> dict:
        model = self.d / "model.caffemodel"
        final = snapshots(self.snap_dir)[-1][1].with_suffix(".caffemodel")
        _link_or_copy(final, model)
        plot_curve(self.curve, self.d / "curve.png", self.tag)
        return {"iterations": self.max_iter, "seconds_this_run": secs, "resumed_from": self.start,
                "lr_drops": self.state["lr_drops"], "model": str(model.name)}


def train(cfg: dict, exp: grammar.Experiment, d: Path, schedule: Schedule,
          val_shards: list[Path] | None, gpu=None, console=sys.stderr) -> dict:
    """Run the solver to ``schedule.max_iter``, resuming from the newest snapshot in ``d``
    (which holds train_val.prototxt and deploy.prototxt)."""
    return _Loop(cfg, exp, d, schedule, val_shards, gpu, console).run()


def _link_or_copy(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            import shutil
            shutil.copyfile(src, tmp)
