"""``make sweep-slurm`` (scripts/slurm/driver.py) against a live single-node Slurm: real munged,
slurmctld and slurmd from Debian's packages, started in a temporary folder by
scripts/slurm/slurm_local.sh (which installs slurm-wlm and munge with apt-get when missing).

The tiny config's sweep (tests/configs/tiny.yaml: cnn_T1_s1.8 and lstm_T3_s1.8, 2 folds
each) on the mini synthetic set runs as a prep job, a 2-task array and a tables job; its
tables and score files must equal those of a plain ``make scale-sweep`` of the same
experiments. Then a failing task is reported by name, re-submission skips finished
experiments, and stopping the daemons leaves none of them running."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import TRAIN_THREADS

pytestmark = pytest.mark.caffe      # the tasks train with Caffe; make runs `make setup` first

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
LOCAL = ROOT / "scripts" / "slurm" / "slurm_local.sh"
SWEEP = ("cnn_T1_s1.8", "lstm_T3_s1.8")
WAIT_S = 900          # bound on one submission's jobs (the tiny sweep takes 1-2 min on 2 cores)
# The tasks run with SLURM_CPUS threads (scripts/slurm/driver.py exports OPENBLAS_NUM_THREADS and
# OMP_NUM_THREADS from it): the same count as the session's tiny_run (conftest's
# TRAIN_THREADS, 1 unless OPENBLAS_NUM_THREADS says otherwise), so that the score files
# can be compared byte for byte; BLAS rounds differently on other thread counts. With 1,
# the node's 2 CPUs run both tasks at once. 1G fits any test machine.
SLURM_VARS = [f"SLURM_CPUS={TRAIN_THREADS}", "SLURM_MEM=1G", "SLURM_TIME=30:00"]


def _daemon_pids(d: Path) -> dict:
    return {f.stem: int(f.read_text()) for f in (d / "run").glob("*.pid") if f.read_text().strip()}


def _running(pid: int) -> bool:
    """True for a live process (a zombie waiting for init to reap it is not running)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _processes_naming(d: Path) -> list:
    """Live processes whose command line names the folder d."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(d) in cmd and _running(int(p.name)):
            out.append(f"{p.name}: {cmd.strip()}")
    return out


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """(folder, env with SLURM_CONF) of a private Slurm; stopped at the end whatever happens."""
    d = tmp_path_factory.mktemp("slurm")
    start = subprocess.run(["bash", str(LOCAL), "start", str(d)], capture_output=True, text=True,
                           timeout=900)
    if start.returncode == 77:
        pytest.skip(f"Slurm packages unavailable: {start.stderr.strip()[-500:]}")
    if start.returncode != 0:
        pytest.skip(f"the Slurm daemons did not start: {(start.stdout + start.stderr).strip()[-1500:]}")
    env = dict(os.environ, SLURM_CONF=str(d / "slurm.conf"))
    try:
        yield d, env
    finally:
        subprocess.run(["bash", str(LOCAL), "stop", str(d)], capture_output=True, timeout=120)


def _submit(env, run: Path, dataset: Path, *extra):
    args = ["make", "--no-print-directory", "sweep-slurm", f"CONFIG={TINY}", f"DATASET={dataset}",
            f"RUN={run}", *SLURM_VARS, *extra]
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout, json.loads((run / "slurm" / "jobs.json").read_text())["jobs"]


def _wait(env, jobs: dict) -> None:
    """Until squeue lists none of the jobs (no accounting here: squeue is all there is)."""
    ids = set(jobs.values())
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        q = subprocess.run(["squeue", "-h", "-o", "%F %T %r"], env=env, capture_output=True, text=True)
        assert q.returncode == 0, q.stderr
        mine = [l for l in q.stdout.splitlines() if l.split()[0] in ids]
        if not mine:
            return
        time.sleep(2)
    pytest.fail(f"jobs {jobs} not finished after {WAIT_S}s: {mine}")


def _logs(run: Path) -> str:
    return "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-1500:]}"
                     for f in sorted((run / "slurm" / "logs").glob("*")))


@pytest.fixture(scope="module")
def plain_run(tiny_run, synth_mini, tmp_path_factory) -> Path:
    """``make scale-sweep`` in its own RUN on copies of the session's tiny_run experiments
    (trained by the same scripts.train commands the make rules run) and prep/: make finds
    them finished and only builds the tables."""
    run = tmp_path_factory.mktemp("plain")
    shutil.copytree(tiny_run / "prep", run / "prep", symlinks=True)
    (run / "prep" / "report.json").touch()  # the table target's prep step finds it up to date
    for name in SWEEP:
        shutil.copytree(tiny_run / "experiments" / name, run / "experiments" / name)
    out = subprocess.run(["make", "-j2", "scale-sweep", f"CONFIG={TINY}", f"DATASET={synth_mini}",
                          f"RUN={run}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert "scripts.train" not in out.stdout
    return run


@pytest.mark.slow
def test_dry_run_writes_scripts_for_a_gpu_cluster(synth_mini, tmp_path):
    """No scheduler needed: the scripts and sbatch commands for SLURM_GRES=gpu:1."""
    run = tmp_path / "run"
    out = subprocess.run(["make", "--no-print-directory", "sweep-slurm", f"CONFIG={TINY}",
                          f"DATASET={synth_mini}", f"RUN={run}", "SLURM_GRES=gpu:1",
                          "SLURM_PARTITION=gpu", "SLURM_ARGS=--account=lab", "DRY_RUN=1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [l.strip() for l in out.stdout.splitlines() if "sbatch --parsable" in l]
    assert len(lines) == 3  # prep, array, tables
    assert all("--partition=gpu" in l and "--account=lab" in l for l in lines)
    assert "--array=0-1" in lines[1] and "--gres=gpu:1" in lines[1]
    assert "afterok:${PREP_JOB" in lines[1] and "afterany:${ARRAY_JOB" in lines[2]
    assert "--gres" not in lines[0] + lines[2]
    array = (run / "slurm" / "array.sh").read_text()
    assert "EXPERIMENTS=(cnn_T1_s1.8 lstm_T3_s1.8)" in array and " GPU=0 " in array
    assert not (run / "slurm" / "jobs.json").exists()
    bad = subprocess.run(["make", "--no-print-directory", "sweep-slurm", f"CONFIG={TINY}",
                          f"DATASET={synth_mini}", f"RUN={run}", "SLURM_MEM=8 GB", "DRY_RUN=1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "'8 GB'" in bad.stderr and "SLURM_MEM" in bad.stderr
    from scripts.slurm import driver as slurm
    if slurm.caffe_variant() == "cpu":  # a GPU array on the CPU build of Caffe is refused
        gpu = subprocess.run(["make", "--no-print-directory", "sweep-slurm", f"CONFIG={TINY}",
                              f"DATASET={synth_mini}", f"RUN={run}", "SLURM_GRES=gpu:1"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert gpu.returncode != 0 and "CAFFE_GPU=1" in gpu.stderr, gpu.stderr
        assert not (run / "slurm" / "jobs.json").exists()


@pytest.mark.slow
def test_sweep_array_matches_plain_sweep(slurm, synth_mini, plain_run, tmp_path):
    d, env = slurm
    run = tmp_path / "run"
    t0 = time.time()
    out, jobs = _submit(env, run, synth_mini)
    assert set(jobs) == {"prep", "array", "tables"}, out
    _wait(env, jobs)
    print(f"tiny sweep under Slurm: {time.time() - t0:.0f} s")
    logs = _logs(run)
    for name in SWEEP:
        assert (run / "experiments" / name / "full" / "DONE").is_file(), logs
        assert "=== " in (run / "slurm" / "logs" / f"{name}.log").read_text()
    assert (run / "slurm" / "logs" / f"task-{jobs['array']}_1.out").is_file(), logs
    for f in ("table1.csv", "table2.csv", "table2.md", "all_results.csv"):
        assert (run / "tables" / f).read_bytes() == (plain_run / "tables" / f).read_bytes(), f
    for name in SWEEP:
        f = Path("experiments", name, "full", "scores_test.csv")
        assert (run / f).read_bytes() == (plain_run / f).read_bytes(), f

    # A task that fails is reported by name; the tables are left alone.
    full = run / "experiments" / "lstm_T3_s1.8" / "full"
    full.rename(full.with_name("full.bak"))
    full.write_text("a file where the experiment's folder belongs\n")
    table2 = (run / "tables" / "table2.csv").stat().st_mtime_ns
    out, jobs = _submit(env, run, synth_mini)
    assert "skipping 1 finished experiment(s): cnn_T1_s1.8" in out
    assert "no prep job" in out and set(jobs) == {"array", "tables"}
    _wait(env, jobs)
    report = (run / "slurm" / "logs" / f"tables-{jobs['tables']}.out").read_text()
    assert "FAILED lstm_T3_s1.8" in report and "cnn_T1_s1.8" not in report, report
    assert (run / "slurm" / "failed.txt").read_text().split() == ["lstm_T3_s1.8"]
    assert (run / "tables" / "table2.csv").stat().st_mtime_ns == table2

    # Fixed and re-submitted: nothing left to train, only the tables job runs.
    full.unlink()
    full.with_name("full.bak").rename(full)
    out, jobs = _submit(env, run, synth_mini)
    assert "skipping 2 finished" in out and set(jobs) == {"tables"}, out
    _wait(env, jobs)
    assert not (run / "slurm" / "failed.txt").exists(), _logs(run)
    assert (run / "tables" / "table2.csv").read_bytes() == (plain_run / "tables" / "table2.csv").read_bytes()


@pytest.mark.slow
def test_stop_leaves_nothing_running(slurm):
    d, env = slurm
    pids = _daemon_pids(d)
    assert set(pids) == {"munged", "slurmctld", "slurmd"}
    assert all(_running(p) for p in pids.values())
    stop = subprocess.run(["bash", str(LOCAL), "stop", str(d)], capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0, stop.stderr
    deadline = time.time() + 10
    while time.time() < deadline and any(_running(p) for p in pids.values()):
        time.sleep(0.2)
    assert not [n for n, p in pids.items() if _running(p)]
    assert _processes_naming(d) == []
    assert not list((d / "run").glob("*.pid"))
