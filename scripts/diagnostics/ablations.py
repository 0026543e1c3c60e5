"""Which paper-silent choice decides whether the paper's solver learns? (``make paper-check-ablations``)

Trains one fold experiment of ``make paper-check`` (default: the peephole LSTM-CNN,
T = 7, s = 1.8, fold 1, 64x64) several times, each with one change to the paper-check
configuration, on the same prepared data (``BASE_RUN/prep``, linked) and with the same
seed, for ``--iters`` iterations at the paper's lr 0.001 (before its first drop):

    paper            the paper-check settings as they are
    wd_0.0005        weight decay 0.0005 instead of the paper's 0.01 (the demo's)
    input_centred    input scaled to [-0.5, 0.5] instead of [0, 1] (net.input_shift)
    gate_bias_1      LSTM gate biases start at 1 instead of 0 (net.lstm_bias; forget gate
                     included: Caffe's LSTM layer has one bias filler for its gates)
    gaussian_init    conv / FC weights from N(0, 0.01^2) instead of Xavier (net.weight_filler)
    demo_solver      the demo's solver (lr 0.01 x0.1 at 150, weight decay 0.0005, batches
                     50 / 16, 250 iterations), at 64x64

Then writes OUT/<experiment>/ablations.md (per variant: validation loss at every validation point,
the first point at least 5 % below the class-prior loss -- the loss of a net that has
learnt nothing -- and the lowest validation loss) and ablations.png (the curves, up to ``--iters``).
Interrupted runs resume (each is an ordinary experiment folder); finished ones are kept.

    python -m scripts.diagnostics.ablations [--experiment peephole_T7_s1.8/fold1] [--iters 400]
        [--variants paper,wd_0.0005,...] [--base-run runs/synth-paper-check] [--out DIR]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from configs import errors

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "paper-check.yaml"
VARIANTS = {
    "paper": [],
    "wd_0.0005": ["solver.weight_decay=0.0005"],
    "input_centred": ["net.input_shift=-0.5"],
    "gate_bias_1": ["net.lstm_bias=1.0"],
    "gaussian_init": ["net.weight_filler=gaussian"],
    "demo_solver": ["solver.base_lr=0.01", "solver.weight_decay=0.0005", "solver.batch_cnn=50",
                    "solver.batch_lstm=16", "solver.stepvalues=[150]", "solver.max_iter=250",
                    "solver.test_interval=50", "solver.snapshot=50"],
}
LSTM_ONLY = {"gate_bias_1"}
LEFT_PRIOR = 0.95   # "left the class prior": validation loss <= 95 % of the prior's loss


def train(variant: str, experiment: str, iters: int, base_run: Path, out: Path) -> Path:
    """The experiment folder of ``variant``, trained if it is not finished. The unchanged
    settings ("paper") are the paper-check run itself when that has finished the fold
    (it trained longer; the table reads its first ``iters`` iterations)."""
    base = base_run / "experiments" / experiment
    if variant == "paper" and (base / "DONE").exists():
        return base
    run = out / variant
    (run).mkdir(parents=True, exist_ok=True)
    prep = run / "prep"
    if not prep.exists():
        prep.symlink_to(os.path.relpath(base_run.resolve() / "prep", run.resolve()))
    sets = [f"solver.max_iter={iters}"] + VARIANTS[variant]
    cmd = [sys.executable, "-m", "scripts.train", "--config", str(CONFIG), "--run", str(run),
           "--experiment", experiment] + [x for s in sets for x in ("--set", s)]
    d = run / "experiments" / experiment
    if not (d / "DONE").exists():
        print(f"== {variant}: {' '.join(sets)}", flush=True)
        rc = subprocess.run(cmd, cwd=ROOT).returncode
        if rc:
            raise errors.SubcommandFailed(f"{variant}: scripts.train {experiment} exited {rc}", rc)
    return d


def summary(d: Path, iters: int) -> dict:
    from scripts.training.curves import prior_loss
    from scripts.training.curves import read_curve
    rows = [r for r in read_curve(d / "curve.csv") if r["val_loss"] is not None and r["iter"] <= iters]
    prior = prior_loss(d)
    left = next((r["iter"] for r in rows if r["val_loss"] <= LEFT_PRIOR * prior), None)
    best = min(rows, key=lambda r: r["val_loss"])
    return {"prior": prior, "left": left, "best": best["val_loss"], "best_iter": best["iter"],
            "val": {r["iter"]: r["val_loss"] for r in rows}}


def write_report(results: dict[str, dict], out: Path, experiment: str, iters: int) -> Path:
    points = sorted({i for r in results.values() for i in r["val"]})
    lines = [f"# Paper-silent choices: {experiment}, {iters} iterations (configs/paper-check.yaml)",
             "", f"Validation loss (softmax) of one change at a time; class prior "
             f"{next(iter(results.values()))['prior']:.3f}; 'left prior' = first validation point "
             f"at or below {LEFT_PRIOR:.0%} of it.", "",
             "| variant | left prior at | lowest (iter) | " + " | ".join(str(p) for p in points) + " |",
             "|---|---|---|" + "---|" * len(points)]
    for name, r in results.items():
        vals = " | ".join(f"{r['val'][p]:.3f}" if p in r["val"] else "" for p in points)
        left = "never" if r["left"] is None else str(r["left"])
        lines.append(f"| {name} | {left} | {r['best']:.3f} ({r['best_iter']}) | {vals} |")
    md = out / "ablations.md"
    md.write_text("\n".join(lines) + "\n")
    return md


@errors.cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="peephole_T7_s1.8/fold1")
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--variants", default=None,
                    help="comma-separated (default: all for an LSTM-CNN; paper,demo_solver for the "
                         "CNN, which reached its lowest validation loss with the paper's solver)")
    ap.add_argument("--base-run", type=Path, default=ROOT / "runs" / "synth-paper-check")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "paper-check-ablations")
    a = ap.parse_args(argv)
    cnn = a.experiment.startswith("cnn")
    names = a.variants.split(",") if a.variants else ["paper", "demo_solver"] if cnn else list(VARIANTS)
    if cnn:
        names = [n for n in names if n not in LSTM_ONLY]   # the CNN has no LSTM gates
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise errors.UserError(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    if not (a.base_run / "prep").is_dir():
        raise errors.UserError(f"{a.base_run}/prep not found: run `make paper-check` first "
                               f"(it prepares the data these runs share)")
    out = a.out / a.experiment.replace("/", "_")
    dirs = {n: train(n, a.experiment, a.iters, a.base_run, out) for n in names}
    from scripts.training.curves import plot
    plot(list(dirs.items()), out / "ablations.png", f"{a.experiment}: one change at a time",
         max_iter=a.iters)
    md = write_report({n: summary(d, a.iters) for n, d in dirs.items()}, out, a.experiment, a.iters)
    print(md.read_text())
    print(f"figure: {out / 'ablations.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
