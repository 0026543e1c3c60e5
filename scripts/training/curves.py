"""Loss curves: one experiment's ``curve.csv`` (written by the trainer) and its figure,
and the training and validation loss curves of several experiment folders in one figure.

    python -m scripts.training.curves --out FIG.png LABEL=EXPERIMENT_DIR [LABEL=EXPERIMENT_DIR ...]

Each EXPERIMENT_DIR is a fold run (``RUN/experiments/<name>/fold<k>``) with its
``curve.csv``; the dashed line of each colour is the loss of always predicting the class
prior of its validation fold (from ``val_scores.npz``), the level a net that has learnt
nothing sits at: -(p ln p + (1 - p) ln(1 - p)), p = the genuine share.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from configs import errors
from configs.files import atomic_path, save_figure_atomic


# ---------------------------------------------------------------- one experiment's curve.csv
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
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, CURVE_COLS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in CURVE_COLS})


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
    """Write a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    try:
        save_figure_atomic(fig, path, 100)
    finally:
        plt.close(fig)


def class_prior_loss(labels) -> float:
    """Cross-entropy of a net that outputs the labels' own class share (learnt nothing)."""
    p = float(np.mean(np.asarray(labels) == 1))
    return float(-(p * np.log(p) + (1 - p) * np.log(1 - p))) if 0 < p < 1 else 0.0


def prior_loss(exp_dir: Path) -> float | None:
    z = Path(exp_dir) / "val_scores.npz"
    if not z.exists():
        return None
    return class_prior_loss(np.load(z)["label"])


def plot(runs: list[tuple[str, Path]], out: Path, title: str = "", max_iter: int | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for i, (label, d) in enumerate(runs):
        rows = read_curve(Path(d) / "curve.csv")
        if not rows:
            raise FileNotFoundError(f"{d}/curve.csv: no curve (train the experiment first)")
        rows = [r for r in rows if max_iter is None or r["iter"] <= max_iter]
        c = f"C{i}"
        tr = [r for r in rows if r["train_loss"] is not None]
        va = [r for r in rows if r["val_loss"] is not None]
        axes[0].plot([r["iter"] for r in tr], [r["train_loss"] for r in tr], color=c, lw=1, label=label)
        axes[1].plot([r["iter"] for r in va], [r["val_loss"] for r in va], "o-", color=c, ms=3, label=label)
        prior = prior_loss(d)
        if prior is not None:
            for ax in axes:
                ax.axhline(prior, color=c, ls="--", lw=0.8)
    for ax, what in zip(axes, ("training loss", "validation loss (held-out fold)")):
        ax.set_xlabel("iteration")
        ax.set_title(what, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("softmax loss (dashed: class prior)")
    axes[1].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    save_figure(fig, Path(out))


@errors.cli(also=(FileNotFoundError,))
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", metavar="LABEL=EXPERIMENT_DIR")
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="")
    a = ap.parse_args(argv)
    runs = []
    for x in a.runs:
        label, sep, d = x.partition("=")
        if not sep or not Path(d).is_dir():
            raise errors.UserError(f"{x!r}: expected LABEL=EXPERIMENT_DIR with an existing folder")
        runs.append((label, Path(d)))
    plot(runs, Path(a.out), a.title)
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
