"""The cross-dataset table: HTER under the three threshold conventions, each named, with
EER, AUC and TPR at a low FPR, and 95 % intervals from a bootstrap over test subjects.

Conventions (where the HTER's threshold comes from):

* ``source-val``: the EER threshold of the source set's validation scores (the pooled
  validation folds or dev set of model selection, ``full/selection.json``), applied
  to the target's test set (de Freitas Pereira et al. 2013 and the papers after it);
* ``target-dev``: the EER threshold of the target's development data scored by the
  same model (``full/scores_dev.csv``: its dev split, or its train split where it has
  none), as ``bob pad cross`` sets it;
* ``target-test``: the EER threshold of the target's test scores themselves (SSDG's
  and FLIP's evaluation scripts): this HTER is the test EER, up to ties.

Intervals: HTER at the fixed thresholds of the first two, EER (and so the third), AUC
and TPR from resamples of whole test subjects (eval/bootstrap.py). Every caption states
the score level and the frames scored per test video.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from configs import grammar
from configs.files import write_json_atomic, write_text_atomic
from data_prep import datasets
from data_prep.casia import GENUINE
from eval import metrics
from eval.bootstrap import subject_bootstrap
from eval.thresholds import load_scores

CONVENTIONS = {
    "source-val": "source validation EER threshold",
    "target-dev": "target development-set EER threshold",
    "target-test": "target test-set EER threshold (= EER)",
}


def _att_gen(arr):
    g = arr["label"] == GENUINE
    return metrics.scored(arr["score"][~g]), metrics.scored(arr["score"][g])


def _rank_intervals(arr, fpr: float, n: int, seed: int, level: float):
    """Percentile intervals of AUC and TPR@FPR over resamples of test subjects."""
    subj = arr["client"]
    u, inv = np.unique(subj, return_inverse=True)
    rng = np.random.default_rng(seed)
    rows = [np.flatnonzero(inv == i) for i in range(u.size)]
    aucs, tprs = [], []
    for _ in range(n):
        idx = np.concatenate([rows[i] for i in rng.integers(0, u.size, u.size)])
        a, g = _att_gen({k: v[idx] for k, v in arr.items()})
        if a.size < 2 or g.size == 0:
            continue
        aucs.append(metrics.auc(a, g))
        tprs.append(metrics.tpr_at_fpr(a, g, fpr))
    q = [50 * (1 - level), 50 * (1 + level)]
    return np.percentile(aucs, q), np.percentile(tprs, q)


def evaluate(cfg: dict, d: Path) -> dict:
    """One experiment's cross-dataset numbers (fractions, not %)."""
    level = cfg["eval"]["level"]
    ev = cfg["eval"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.FailureToAcquireWarning)
        test = load_scores(d / "scores_test.csv", level)
        dev = load_scores(d / "scores_dev.csv", level)
        sel = json.loads((d / "selection.json").read_text())
        ta, tg = _att_gen(test)
        da, dg = _att_gen(dev)
        thr = {"source-val": sel["thresholds"][level]["overall"]["pooled"],
               "target-dev": metrics.eer_threshold(da, dg),
               "target-test": metrics.eer_threshold(ta, tg)}
        seed, n, ci = int(cfg["seed"]), int(ev["bootstrap_resamples"]), float(ev["ci_level"])
        out = {"thresholds": thr, "hter": {}, "n_test": int(ta.size + tg.size)}
        for k, t in thr.items():
            b = subject_bootstrap(test["client"], test["label"], test["score"], t, n, ci, seed)
            out["hter"][k] = list(b.hter) if k != "target-test" else list(b.eer)
        out["eer"] = list(b.eer)
        fpr = float(cfg["cross"]["tpr_at_fpr"])
        auc_ci, tpr_ci = _rank_intervals(test, fpr, n, seed, ci)
        out["auc"] = [metrics.auc(ta, tg), *map(float, auc_ci)]
        out["tpr"] = [metrics.tpr_at_fpr(ta, tg, fpr), *map(float, tpr_ci)]
        out["epc_target_dev"] = metrics.epc(da, dg, ta, tg, int(cfg["cross"]["epc_points"])).tolist()
        out["roc"] = metrics.roc(ta, tg, 200).tolist()
    frames = _frames_per_video(d / "scores_test.csv")
    out.update(level=level, frames_per_video=frames, subjects=int(np.unique(test["client"]).size))
    return out


def _frames_per_video(path: Path) -> float:
    from eval.scores import read_scores
    rows = read_scores(path)
    vids = {(r.dataset, r.subject, r.video) for r in rows}
    return len(rows) / max(len(vids), 1)


def _fmt(x) -> str:
    return f"{100 * x[0]:.2f} [{100 * x[1]:.2f}, {100 * x[2]:.2f}]"


def write_table(cfg: dict, run: Path) -> Path:
    info = json.loads((run / "cross.json").read_text())
    src = "+".join(datasets.TITLES[s] for s in info["sources"])
    tgt = datasets.TITLES[info["target"]]
    out = grammar.RunLayout(run).tables
    out.mkdir(parents=True, exist_ok=True)
    res = {n: evaluate(cfg, grammar.parse(n + "/full").dir(run)) for n in grammar.table1_names(cfg)}
    fpr = float(cfg["cross"]["tpr_at_fpr"])
    head = (["experiment"] + [f"HTER {k} ({v})" for k, v in CONVENTIONS.items()]
            + ["EER", "AUC", f"TPR@FPR={100 * fpr:g}%"])
    lines = [f"Cross-dataset, {src} -> {tgt} (protocols: "
             + ", ".join(f"{datasets.TITLES[k]} {v}" for k, v in info["protocols"].items()) + "). "
             f"%, 95 % interval over test subjects. Level: {cfg['eval']['level']}; samples (windows of T frames) "
             f"scored per test video: " + ", ".join(f"{n} {r['frames_per_video']:.1f}"
                                                     for n, r in res.items()) + ".",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n, r in res.items():
        lines.append("| " + " | ".join([n] + [_fmt(r["hter"][k]) for k in CONVENTIONS]
                                      + [_fmt(r["eer"]), _fmt(r["auc"]), _fmt(r["tpr"])]) + " |")
    if cfg["eval"]["note"]:
        lines += ["", cfg["eval"]["note"]]
    text = "\n".join(lines) + "\n"
    write_text_atomic(out / "cross.md", text)
    write_json_atomic(out / "cross.json", {"sources": info["sources"], "target": info["target"],
                                           "conventions": CONVENTIONS, "results": res})
    _figure(res, out / "cross_epc_roc.png", f"{src} -> {tgt}")
    print(text, flush=True)
    return out / "cross.md"


def _figure(res: dict, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from configs.files import save_figure_atomic
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for n, r in res.items():
        e = np.array(r["epc_target_dev"])
        a1.plot(e[0], 100 * e[1], label=n)
        roc = np.array(r["roc"])
        a2.plot(100 * roc[0], 100 * (1 - roc[1]), label=n)
    a1.set_xlabel("cost alpha (threshold: min alpha FAR + (1-alpha) FRR on the target dev data)")
    a1.set_ylabel("test HTER (%)")
    a1.set_title(f"EPC, {title}", fontsize=9)
    a2.set_xlabel("FPR (%)")
    a2.set_ylabel("TPR (%)")
    a2.set_title(f"ROC of the target test set, {title}", fontsize=9)
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    try:
        save_figure_atomic(fig, path, 120)
    finally:
        plt.close(fig)
