"""Train one experiment: ``python -m scripts.train --experiment peephole_T7_s1.8/fold1``.

Thin entry point; the work is in scripts/training/runner.py (experiment), scripts/training/trainer.py
(the Caffe solver loop) and scripts/training/selection.py (model selection, §4.3).
Exit codes come from the error's type (the table in configs/errors.py): 0 done or already
done, 2 bad config or input, or an unfinished fold, 8 --gpu N not usable (no CUDA build,
no GPU), 9 training diverged, 10 Caffe aborted (its reason, from caffe.log, is printed).
"""
from __future__ import annotations

import argparse
import sys

from configs import errors


def _supervise(argv) -> int:
    """Run the training in a child process: a failed Caffe CHECK aborts the process, and
    glog writes its reason into the experiment's caffe.log, so show that reason here."""
    import os
    import signal
    import subprocess
    rc = subprocess.call([sys.executable, "-m", "scripts.train", *argv],
                         # the experiment's caffe.log keeps Caffe's whole log (INFO and up)
                         env=dict(os.environ, LSTMCNN_TRAIN_CHILD="1", GLOG_minloglevel="0"))
    if rc < 0:
        a = _parser().parse_known_args(argv)[0]
        from configs import grammar
        log = grammar.parse(a.experiment).dir(a.run) / "caffe.log"
        tail = [l for l in (log.read_text(errors="replace").splitlines() if log.exists() else [])
                if l[:1] in "FE" or "Check failed" in l][-5:]
        raise errors.CaffeAborted(f"Caffe aborted ({signal.Signals(-rc).name}) in {a.experiment}; "
                                  f"from {log}:\n  " + "\n  ".join(tail or ["(no error lines in the log)"]))
    return rc


def _parser():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", required=True,
                    help="<model>_T<T>_s<scale>/<fold<k>|full>, e.g. cnn_T1_s2.6/fold1")
    ap.add_argument("--config", default=None, help="a configs/*.yaml (default: configs/default.yaml)")
    ap.add_argument("--run", default="runs/default", help="run folder: RUN/prep, RUN/experiments")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key, e.g. --set solver.max_iter=100")
    ap.add_argument("--gpu", type=int, default=None, help="GPU id (needs a CUDA build of Caffe)")
    return ap


@errors.cli(also=(ValueError, FileNotFoundError))   # from a library, on a bad value or path
def main(argv=None) -> int:
    import os
    from configs import load_experiment_config
    argv = sys.argv[1:] if argv is None else list(argv)
    if not os.environ.get("LSTMCNN_TRAIN_CHILD"):
        return _supervise(argv)
    a = _parser().parse_args(argv)
    from scripts.training.gpu import require_gpu
    if a.gpu is not None:
        require_gpu(a.gpu)  # before any output folder is made
    cfg = load_experiment_config(a.config, a.set)
    from scripts.training.runner import run_experiment
    run_experiment(cfg, a.run, a.experiment, gpu=a.gpu)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
