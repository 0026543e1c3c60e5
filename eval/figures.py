"""Figures of ``make tables`` (matplotlib, PNG): Figure 6, ROC, DET, score histograms.

Every function takes already-evaluated experiments (see ``eval.tables``) and a
path, writes one PNG and returns its path. Scores are p(genuine), so the threshold
axis of Figure 6 spans [0, 1] unless some score falls outside it.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from configs.files import save_figure_atomic  # noqa: E402
from data_prep.casia import ATTACK_TYPES, GENUINE  # noqa: E402
from eval import metrics  # noqa: E402

DET_TICKS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.95, 0.99)


def _split(arr: dict):
    gen = metrics.scored(arr["score"][arr["label"] == GENUINE])
    att = metrics.scored(arr["score"][arr["label"] != GENUINE])
    return att, gen


def _save(fig, path: Path, caption: str) -> Path:
    """Caption at the foot, PNG written atomically (temp file + rename), figure closed."""
    import textwrap
    caption = "\n".join(textwrap.wrap(caption, 140))
    fig.text(0.01, 0.005, caption, fontsize=6, va="bottom")
    fig.tight_layout(rect=(0, 0.02 + 0.025 * (caption.count("\n") + 1), 1, 1))
    try:
        save_figure_atomic(fig, path, 120)
    finally:
        plt.close(fig)
    return path


def fig6_hter_vs_threshold(curves, path: Path, caption: str, n_points: int = 501) -> Path:
    """``curves``: list of (label, test_arrays, val_threshold). HTER(test) vs threshold."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, arr, thr in curves:
        att, gen = _split(arr)
        lo = min(0.0, float(min(att.min(), gen.min())))
        hi = max(1.0, float(max(att.max(), gen.max())))
        t = np.linspace(lo, hi, n_points)
        h = metrics.hter_curve(att, gen, t) * 100
        line, = ax.plot(t, h, label=label)
        ax.axvline(thr, color=line.get_color(), ls="--", lw=0.8)
        ax.plot([thr], [metrics.hter(att, gen, thr) * 100], "o", color=line.get_color(),
                label=f"  validation threshold {thr:.3g}")
    ax.set_xlabel("score threshold (p(genuine))")
    ax.set_ylabel("HTER on test (%)")
    ax.set_title("Figure 6: HTER vs. score threshold", fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path, caption)


def roc_curves(curves, path: Path, caption: str) -> Path:
    """ROC on test: APCER (FAR) on x, 1 - BPCER (1 - FRR) on y, log x axis."""
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    for label, arr, thr in curves:
        att, gen = _split(arr)
        far, frr = metrics.roc(att, gen)
        x = np.maximum(far, 0.5 / att.size)  # FAR 0 drawn at half a sample
        line, = ax.plot(x * 100, (1 - frr) * 100, label=label, drawstyle="steps-post")
        fa, fr = metrics.farfrr(att, gen, thr)
        ax.plot([max(fa, 0.5 / att.size) * 100], [(1 - fr) * 100], "o", color=line.get_color())
    ax.set_xscale("log")
    ax.set_xlabel("FAR = APCER on test (%, log)")
    ax.set_ylabel("1 - FRR = 1 - BPCER on test (%)")
    ax.set_title("ROC (dot: validation threshold)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path, caption)


def det_curves(curves, path: Path, caption: str) -> Path:
    """DET on test: FAR vs FRR on normal-deviate axes (bob.measure.det / NIST ppndf)."""
    fig, ax = plt.subplots(figsize=(5.2, 4.8))
    for label, arr, thr in curves:
        att, gen = _split(arr)
        x, y = metrics.det(att, gen)
        line, = ax.plot(x, y, label=label)
        fa, fr = metrics.farfrr(att, gen, thr)
        ax.plot(metrics.ppndf([fa]), metrics.ppndf([fr]), "o", color=line.get_color())
    ticks = metrics.ppndf(DET_TICKS)
    labels = [f"{100 * t:g}" for t in DET_TICKS]
    ax.set_xticks(ticks, labels, fontsize=7)
    ax.set_yticks(ticks, labels, fontsize=7)
    lim = metrics.ppndf([0.0005, 0.995])
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.plot(lim, lim, color="grey", lw=0.5)
    ax.set_xlabel("FAR = APCER on test (%)")
    ax.set_ylabel("FRR = BPCER on test (%)")
    ax.set_title("DET (dot: validation threshold; grey: EER line)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    return _save(fig, path, caption)


def score_histogram(label: str, arr: dict, thr: float, path: Path, caption: str,
                    bins: int = 50) -> Path:
    """Test score histograms: genuine and each attack type, validation threshold marked."""
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    ok = metrics.is_scored(arr["score"])
    lo = min(0.0, float(arr["score"][ok].min()))
    hi = max(1.0, float(arr["score"][ok].max()))
    edges = np.linspace(lo, hi, bins + 1)
    groups = [("genuine", ok & (arr["label"] == GENUINE))]
    groups += [(a, ok & (arr["label"] != GENUINE) & (arr["attack"] == a)) for a in ATTACK_TYPES]
    for name, m in groups:
        if m.any():
            ax.hist(arr["score"][m], bins=edges, histtype="step", lw=1.4,
                    label=f"{name} (n={int(m.sum())})")
    ax.axvline(thr, color="k", ls="--", lw=0.8, label=f"validation threshold {thr:.3g}")
    ax.set_yscale("log")
    ax.set_xlabel("score p(genuine) on test")
    ax.set_ylabel("count (log)")
    ax.set_title(f"Score histograms: {label}", fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path, caption)
