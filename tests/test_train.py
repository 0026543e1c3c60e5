"""Training, model selection, resume, NaN guard and the make targets, on the
tiny config (tests/configs/tiny.yaml) and the mini synthetic set. Real Caffe throughout."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from configs import errors

pytestmark = pytest.mark.slow      # every test trains (the tiny config) or runs make on trained runs

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
PY = sys.executable


def _train(run: Path, spec: str, *sets: str, check=True, timeout=600):
    cmd = [PY, "-m", "scripts.train", "--config", str(TINY), "--run", str(run), "--experiment", spec]
    for s in sets:
        cmd += ["--set", s]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def prepped(tiny_run, tmp_path_factory) -> Path:
    """An empty run folder whose prep/ is the tiny config's samples of the mini set
    (shared with the session's tiny_run, so data preparation runs once)."""
    run = tmp_path_factory.mktemp("trainrun")
    (run / "prep").symlink_to(tiny_run / "prep")
    return run


def _curve(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def _tree_state(d: Path) -> set:
    """(path, size, mtime_ns, bytes hash) of every file under ``d``."""
    import hashlib
    return {(str(p), p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in d.rglob("*") if p.is_file()}


def test_folds_selection_full_and_scores(prepped):
    run = prepped
    for k in (1, 2):
        _train(run, f"cnn_T1_s1.8/fold{k}")
    exp = run / "experiments" / "cnn_T1_s1.8"
    before = _tree_state(exp / "fold1") | _tree_state(exp / "fold2")
    _train(run, "cnn_T1_s1.8/full")
    # model selection reads the fold folders and writes nothing into them
    assert _tree_state(exp / "fold1") | _tree_state(exp / "fold2") == before
    for k in (1, 2):
        d = exp / f"fold{k}"
        for name in ("config.yaml", "train_val.prototxt", "deploy.prototxt", "solver.prototxt",
                     "caffe.log", "curve.csv", "curve.png", "val_scores.npz", "model.caffemodel", "DONE"):
            assert (d / name).is_file(), name
        assert not (d / "scores_val.csv").exists()
        assert "Iteration" in (d / "caffe.log").read_text() or "Solver" in (d / "caffe.log").read_text()
    sel = json.loads((exp / "full" / "selection.json").read_text())
    # validation points of the tiny solver: every 20 iterations up to 40
    assert sel["iterations"] in (20, 40)
    mean = sel["mean_val_loss"]
    assert min(mean, key=mean.get) == str(sel["iterations"])
    assert 0.0 <= sel["threshold"] <= 1.0
    done = json.loads((exp / "full" / "DONE").read_text())
    assert done["selected_iterations"] == sel["iterations"]
    from eval.scores import read_scores
    rows = read_scores(exp / "full" / "scores_test.csv")
    import h5py
    n_test = 0
    from data_prep.hdf5_layout import read_list
    for shard in read_list(run / "prep" / "s1.8_T1" / "test.txt"):
        with h5py.File(shard) as f:
            n_test += len(f["label"])
    assert len(rows) == n_test == done["test_samples"]
    assert all(0.0 <= r.score <= 1.0 for r in rows)
    # full/scores_val.csv: the fold models' validation scores at the selected iteration,
    # pooled fold by fold, each fold's subjects named in selection.json
    val = read_scores(exp / "full" / "scores_val.csv")
    at = [np.load(exp / f"fold{k}" / "val_scores.npz")[f"iter_{sel['iterations']}"] for k in (1, 2)]
    np.testing.assert_array_equal([r.score for r in val], np.concatenate(at).astype(np.float64))
    n1 = len(at[0])
    assert {f"casia/{r.subject}" for r in val[:n1]} == set(sel["fold_clients"]["fold1"])
    assert {f"casia/{r.subject}" for r in val[n1:]} == set(sel["fold_clients"]["fold2"])
    assert not set(sel["fold_clients"]["fold1"]) & set(sel["fold_clients"]["fold2"])
    # a finished experiment is skipped
    t = time.time()
    out = _train(run, "cnn_T1_s1.8/full")
    assert "already finished" in out.stdout + out.stderr
    assert time.time() - t < 30


def test_full_run_waits_for_its_folds(prepped):
    out = _train(prepped, "lstm_T3_s1.8/full", check=False)
    assert out.returncode == 2
    assert "fold1" in out.stderr and "finished first" in out.stderr


RESUME_SPEC = "peephole_T3_s1.8/fold1"
RESUME_SETS = ["solver.max_iter=400", "solver.stepvalues=[300]", "solver.snapshot=50",
               "solver.test_interval=100"]


def _train_cmd(run: Path) -> list[str]:
    cmd = [PY, "-m", "scripts.train", "--config", str(TINY), "--run", str(run),
           "--experiment", RESUME_SPEC]
    for s in RESUME_SETS:
        cmd += ["--set", s]
    return cmd


def _fold_dir(run: Path) -> Path:
    return run / "experiments" / "peephole_T3_s1.8" / "fold1"


@pytest.fixture(scope="module")
def uninterrupted(prepped, tmp_path_factory) -> Path:
    """The resume tests' experiment trained without a kill, in a run folder of its own."""
    ref = tmp_path_factory.mktemp("uninterrupted")
    (ref / "prep").symlink_to(prepped / "prep")
    _train(ref, RESUME_SPEC, *RESUME_SETS)
    return _fold_dir(ref)


def _resume_and_compare(run: Path, ref: Path, killed_after: int) -> int:
    """Run the killed experiment again: it resumes once, from a snapshot at or after
    ``killed_after``, and ends byte for byte like the uninterrupted run (same command,
    same thread count). Returns the iteration it resumed from."""
    d = _fold_dir(run)
    assert not (d / "DONE").exists()
    out = _train(run, RESUME_SPEC, *RESUME_SETS)
    resumed = [l for l in (out.stdout + out.stderr).splitlines() if "resuming from" in l]
    assert len(resumed) == 1, out.stderr[-2000:]
    resumed_at = int(resumed[0].rsplit("iteration ", 1)[1].rstrip(")"))
    assert resumed_at >= killed_after
    rows = _curve(d / "curve.csv")
    iters = [int(float(r["iter"])) for r in rows if r["train_loss"]]
    assert iters == sorted(iters) and len(set(iters)) == len(iters), "the curve restarted"
    assert iters[-1] == 400
    done = json.loads((d / "DONE").read_text())
    assert done["train"]["resumed_from"] == resumed_at
    for name in ("model.caffemodel", "curve.csv"):
        assert (d / name).read_bytes() == (ref / name).read_bytes(), name
    a, b = np.load(d / "val_scores.npz"), np.load(ref / "val_scores.npz")
    assert sorted(a.files) == sorted(b.files)
    assert all(np.array_equal(a[k], b[k]) for k in a.files)
    return resumed_at


def test_killed_run_resumes_to_the_same_model(prepped, uninterrupted, tmp_path):
    """A fold run SIGKILLed at a random moment (after its second snapshot) and run again
    resumes from its newest snapshot and ends with the same .caffemodel and validation
    scores, byte for byte, as an uninterrupted run (data position and Caffe's generator
    are set from (seed, iteration) at every snapshot boundary)."""
    import random
    run = tmp_path / "run"
    run.mkdir()
    (run / "prep").symlink_to(prepped / "prep")
    d = _fold_dir(run)
    delay = random.uniform(0.0, 0.5)
    print(f"\nkill {delay:.3f} s after the snapshot at >= 100 appears")
    p = subprocess.Popen(_train_cmd(run), cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    snap = None
    while time.time() < deadline and p.poll() is None:
        its = [int(x.stem.rsplit("_", 1)[1]) for x in d.glob("snapshots/*_iter_*.solverstate")]
        if its and max(its) >= 100:  # killed mid-way, after at least two snapshots
            snap = max(its)
            time.sleep(delay)
            break
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert snap is not None, "no snapshot appeared before the kill"
    _resume_and_compare(run, uninterrupted, snap)


# Runs scripts.train with the trainer's Caffe snapshot replaced by a SIGKILL at one
# iteration: the process dies after writing that iteration's records (curve.csv,
# val_scores.npz with the validation at 200, train_state.json) and before Caffe's
# snapshot, the moment a kill between the two writes hits.
KILL_BETWEEN = """
import os, signal, sys
from scripts.training import trainer
real = trainer._Loop.caffe_snapshot
def caffe_snapshot(self):
    if self.solver.iter == int(os.environ["KILL_AT"]):
        os.kill(os.getpid(), signal.SIGKILL)
    real(self)
trainer._Loop.caffe_snapshot = caffe_snapshot
from scripts.train import main
sys.exit(main(sys.argv[1:]))
"""


def test_kill_between_records_and_snapshot_resumes_to_the_same_model(prepped, uninterrupted,
                                                                      tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "prep").symlink_to(prepped / "prep")
    d = _fold_dir(run)
    env = dict(os.environ, KILL_AT="200", LSTMCNN_TRAIN_CHILD="1")
    p = subprocess.run([PY, "-c", KILL_BETWEEN, *_train_cmd(run)[3:]], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    # the records of 200 are on disk, Caffe's snapshot of 200 is not
    assert "iter_200" in np.load(d / "val_scores.npz").files
    assert max(int(float(r["iter"])) for r in _curve(d / "curve.csv")) == 200
    its = sorted(int(x.stem.rsplit("_", 1)[1]) for x in d.glob("snapshots/*_iter_*.solverstate"))
    assert its and its[-1] == 150, its
    assert _resume_and_compare(run, uninterrupted, 150) == 150


def test_nan_loss_stops_with_a_clear_error(prepped):
    run = prepped / "nan"
    run.mkdir(exist_ok=True)
    (run / "prep").symlink_to(prepped / "prep")
    out = _train(run, "cnn_T1_s1.8/fold1", "solver.base_lr=1e12", "solver.snapshot=5", check=False)
    assert out.returncode == errors.EXIT_DIVERGED, out.stderr[-2000:]
    assert "training loss is nan" in out.stderr or "training loss is inf" in out.stderr
    assert "last good snapshot" in out.stderr and "base_lr" in out.stderr
    assert not (run / "experiments" / "cnn_T1_s1.8" / "fold1" / "DONE").exists()


def test_unknown_config_key_names_key_and_file(prepped):
    out = _train(prepped, "cnn_T1_s1.8/fold1", "solver.max_itr=5", check=False)
    assert out.returncode == 2
    assert "solver.max_itr" in out.stderr and "not a valid config key" in out.stderr


def test_make_sweep_runs_in_parallel_and_skips_finished(tiny_run, synth_mini, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    # A copy of the prepared data: the table target's prep step finds it up to date.
    import shutil
    shutil.copytree(tiny_run / "prep", run / "prep", symlinks=True)
    (run / "prep" / "report.json").touch()
    args = ["make", "-j2", "scale-sweep", f"CONFIG={TINY}", f"DATASET={synth_mini}", f"RUN={run}"]
    first = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    assert (run / "tables" / "table2.md").is_file()
    for name in ("cnn_T1_s1.8", "lstm_T3_s1.8"):
        assert (run / "experiments" / name / "full" / "DONE").is_file()
    second = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0
    assert "scripts.train" not in second.stdout, second.stdout


def test_plateau_rule_lowers_the_rate_by_ten(prepped):
    """train.lr_schedule=plateau: a window whose loss did not improve by the tolerance
    lowers base_lr x0.1 (snapshot, new solver, restore), at most plateau_max_drops times."""
    run = prepped / "plateau"
    run.mkdir(exist_ok=True)
    (run / "prep").symlink_to(prepped / "prep")
    out = _train(run, "cnn_T1_s1.8/fold1", "train.lr_schedule=plateau", "train.plateau_window=5",
                 "train.plateau_tolerance=0.5", "solver.max_iter=60")
    d = run / "experiments" / "cnn_T1_s1.8" / "fold1"
    drops = json.loads((d / "train_state.json").read_text())["lr_drops"]
    assert len(drops) == 2  # tolerance 0.5 is a plateau at once; plateau_max_drops = 2
    assert "loss plateau, lr -> 0.001" in out.stdout + out.stderr
    lrs = {int(float(r["iter"])): float(r["lr"]) for r in _curve(d / "curve.csv") if r["train_loss"]}
    assert lrs[5] == pytest.approx(0.01)
    assert lrs[max(lrs)] == pytest.approx(0.0001)
    assert "0.0001" in (d / "solver.prototxt").read_text() or "1e-04" in (d / "solver.prototxt").read_text()
