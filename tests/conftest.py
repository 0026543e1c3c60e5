"""Shared pytest fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains, runs Caffe on real nets, generates the "
                            "synthetic set or starts daemons; `make test-fast` deselects them "
                            "(-m 'not slow')")
    config.addinivalue_line("markers", "caffe: needs pycaffe and the caffe tool of `make setup`; "
                            "skipped with the reason when pycaffe is not importable")


def _caffe_missing() -> str | None:
    """Why pycaffe cannot be used here, or None."""
    try:
        import caffe  # noqa: F401
    except ImportError as e:
        return f"pycaffe is not importable ({e}): run `make setup`"
    return None


# Session fixtures that generate the synthetic set or train models: minutes on 2 cores.
HEAVY_FIXTURES = ("synth_mini", "tiny_run")

# The BLAS/OpenMP thread count the session's trained fixtures run with: the caller's
# OPENBLAS_NUM_THREADS (e.g. `OPENBLAS_NUM_THREADS=2 make test`), else 1. OpenBLAS rounds
# differently on different thread counts, so a test that compares its own training with
# tiny_run's byte for byte (the Slurm sweep) must train with this same count.
TRAIN_THREADS = int(os.environ.get("OPENBLAS_NUM_THREADS") or 1)


def threads_env(threads: int = TRAIN_THREADS) -> dict:
    return dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))


def pytest_collection_modifyitems(config, items):
    unmarked = [f"{item.nodeid} (uses {', '.join(f for f in HEAVY_FIXTURES if f in item.fixturenames)})"
                for item in items if not item.get_closest_marker("slow")
                and any(f in item.fixturenames for f in HEAVY_FIXTURES)]
    if unmarked:
        raise pytest.UsageError("tests that use a heavy fixture must be marked slow, so that "
                                "`make test-fast` stays fast: " + "; ".join(unmarked))
    needs = [item for item in items if item.get_closest_marker("caffe")]
    reason = _caffe_missing() if needs else None
    if reason:
        for item in needs:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def synth_mini(tmp_path_factory) -> Path:
    """Root of a synthetic CASIA-FASD-layout ``mini`` set (data_prep/synth.py), made once
    per test session: train subjects 1, 2, 4, 8, 10, test subjects 1, 2, 12 videos each."""
    from configs import load_config
    from data_prep import synth

    root = tmp_path_factory.mktemp("synth") / "mini"
    synth.generate(synth.synth_params(load_config(), "mini"), root, workers=2, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, synth_mini) -> Path:
    """A run folder with finished tiny models (tests/configs/tiny.yaml: 24x24 crops, 40
    iterations, 2 folds): ``experiments/{cnn_T1_s1.8,peephole_T3_s1.8,lstm_T3_s1.8}/full``,
    each with deploy.prototxt, model.caffemodel, threshold.json and DONE, and ``prep/``.
    Their scores mean nothing; they exist to exercise code that loads and runs trained
    models. Built once per session through the command lines (about 1.5 min on 2 cores),
    on TRAIN_THREADS threads.
    Every test that uses it is skipped, with the reason, when pycaffe is missing."""
    reason = _caffe_missing()
    if reason:
        pytest.skip(reason)
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    tiny = root / "tests" / "configs" / "tiny.yaml"
    run = tmp_path_factory.mktemp("tiny_run")
    env = dict(threads_env(), GLOG_minloglevel="2")
    cmds = [["data_prep", "--dataset", str(synth_mini), "--out", str(run / "prep")]]
    cmds += [["scripts.train", "--run", str(run), "--experiment", f"{m}/{split}"]
             for m in ("cnn_T1_s1.8", "peephole_T3_s1.8", "lstm_T3_s1.8")
             for split in ("fold1", "fold2", "full")]
    for c in cmds:
        out = subprocess.run([sys.executable, "-m", *c, "--config", str(tiny)], cwd=root, env=env,
                             capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, f"{c}: {out.stderr[-3000:]}"
    return run
