"""``make tables``: Tables 1-2, the 7-protocol table, the ISO table, Figure 6 and curves,
regenerated from score files without retraining.

Usage::

    python -m eval.tables --results DIR --out DIR [--level sample|video]
                          [--config FILE] [--set eval.KEY=VALUE ...] [--note TEXT]

Input layout (written by the training code)::

    <results>/<model>_T<T>_s<scale>/full/scores_val.csv      the fold models' validation scores at the
                                                             selected iteration, pooled (k = 1..5 folds)
    <results>/<model>_T<T>_s<scale>/full/scores_test.csv     the model retrained on all train subjects
    <results>/<model>_T<T>_s<scale>/full/selection.json      model selection's validation thresholds
                                                             and each fold's subjects (fold_clients)
    <results>/<model>_T<T>_s<scale>/full/fta.json            test windows preparation could not build

Only the ``full`` folders are read.

``model`` is ``cnn``, ``lstm`` (Caffe's LSTM, no peepholes) or ``peephole``; score
files follow ``eval.scores``. Per experiment and protocol (``eval.protocols``):

* EER(val): EER of the pooled validation scores of the folds present (the mean of
  the per-fold EERs is given too);
* threshold: ``eer_threshold`` of those pooled validation scores, as model selection
  saved it in ``full/selection.json`` (``eval.thresholds``; never recomputed here),
  with the paper's other reading, the mean of the per-fold EER thresholds, beside it;
* HTER(test): (FAR + FRR) / 2 on test at that threshold, over the scored samples;
  EER(test): EER on test;
* failures to acquire: every test video or window that preparation skipped
  (``full/fta.json``, written by the full run) is a NaN test sample, in every protocol.
  HTER leaves them out, as the paper does ("simply remove the bad faces") and as
  bob.measure's metrics command does; beside it stand bob's FTA (one rate over both
  classes) and bob's FAR = FMR (1 - FTA) and FRR = FTA + FNMR (1 - FTA)
  (``eval.metrics.rates_with_fta``), and the per-class FTA counts. The list of skipped
  videos goes to ``fta.md``;
* 95 % intervals: bootstrap over test subjects (``eval.bootstrap``), for the overall
  protocol of every experiment and for all protocols of the Table 1 experiments.

Table 1 also shows, for each scale of its experiments, the other models trained at the
same scale (from a sweep), so that CNN and LSTM-CNN can be compared at one scale.

Outputs in ``--out``: ``table1``, ``table2``, ``protocols``, ``iso`` (each ``.md``,
``.csv``, ``.tex``), ``all_results.csv`` (every experiment x protocol), ``fta.md``,
``fig6_hter_vs_threshold.png``, ``roc.png``, ``det.png``, ``hist_<experiment>.png``
and ``index.md`` linking them. Missing experiments or folds are skipped with a note;
finding no experiment at all is an error.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from configs import errors, grammar, load_config
from configs.files import write_text_atomic
from data_prep.casia import ATTACK_TYPES, GENUINE
from eval import figures, metrics, paper_results
from eval.bootstrap import BootstrapResult, subject_bootstrap
from eval.protocols import PROTOCOLS, mask
from eval.scores import make_row, read_scores
from eval.thresholds import att_gen, fold_arrays, load_scores, split_folds

N_FOLDS_PAPER = 5


@dataclass
class Scored:
    """One experiment's score files; name, model, T and scale follow configs.grammar."""
    name: str
    model: str            # cnn | lstm | peephole
    T: int
    scale: float
    folds: list           # fold numbers found
    val: list             # per fold: as_arrays(...) of its validation scores
    test: dict            # as_arrays of the test scores
    thresholds: dict      # protocol -> {"pooled", "fold_mean"}: full/selection.json, this level

    @property
    def label(self) -> str:
        if self.model == "cnn":
            return f"CNN s={grammar.scale_str(self.scale)}"
        kind = "Caffe LSTM, no peephole" if self.model == "lstm" else "peephole LSTM"
        return f"LSTM-CNN({self.T}) s={grammar.scale_str(self.scale)} [{kind}]"

    @property
    def paper_method(self) -> str:
        return "CNN" if self.model == "cnn" else "LSTM-CNN"


@dataclass
class ProtocolResult:
    protocol: str
    eer_val: float
    eer_val_fold_mean: float
    threshold: float
    threshold_fold_mean: Optional[float]
    hter_test: float      # over the scored samples
    eer_test: float
    far_test: float       # FMR and FNMR: the scored samples
    frr_test: float
    n_test: tuple         # (genuine, attack) with a score
    fta_val: int
    fta_test: int
    fta_test_by_class: tuple   # (genuine, attack) failures to acquire
    bob: metrics.FtaRates      # bob.measure's FTA rate and its FAR and FRR with FTA
    pad: Optional[metrics.PadErrors]
    ci: Optional[BootstrapResult] = None


@dataclass
class Report:
    level: str
    notes: list = field(default_factory=list)
    fta: list = field(default_factory=list)    # per experiment: test windows preparation skipped
    fta_videos: list = field(default_factory=list)   # (experiment, entry of full/fta.json)


def _concat(parts: list) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _skipped_rows(path: Path, name: str, report: Report) -> list:
    """Failures to acquire: a NaN test row per window that preparation skipped
    (full/fta.json, written by the full run), noted once per experiment."""
    if not path.is_file():
        report.notes.append(f"{name}: no full/fta.json, so test videos skipped by preparation "
                            f"are unknown here and not counted")
        return []
    entries = json.loads(path.read_text())["videos"]
    if entries:
        n_win = sum(int(e["missing"]) for e in entries)
        n_vid = sum(1 for e in entries if int(e["windows_scored"]) == 0)
        report.fta.append(f"{name}: {n_win} test window(s) in {len(entries)} video(s), "
                          f"{n_vid} of them with no window at all")
        report.fta_videos += [(name, e) for e in entries]
    return [make_row(e["subject"], e["stem"], -1, float("nan"), e.get("dataset", "casia"))
            for e in entries for _ in range(int(e["missing"]))]


def _selection(sel_path: Path, level: str) -> Optional[tuple[dict, dict]]:
    """(validation thresholds at ``level``, fold_clients) as model selection saved them
    (eval.thresholds), or None."""
    if not sel_path.is_file():
        return None
    try:
        sel = json.loads(sel_path.read_text())
        return sel["thresholds"][level], sel["fold_clients"]
    except (ValueError, KeyError, TypeError):
        return None


def _val_folds(path: Path, fold_clients: dict, level: str) -> list:
    """Per fold, as_arrays(...) of its validation scores (full/scores_val.csv, split by
    selection.json's fold_clients), per sample or per video."""
    rows = read_scores(path)
    return [fold_arrays(f, level) for f in split_folds(rows, fold_clients, str(path))]


def discover(results: Path, level: str, report: Report) -> list:
    """Experiments under ``results``; incomplete ones are skipped with a note."""
    if not results.is_dir():
        raise FileNotFoundError(f"results folder not found: {results}")
    found = []
    for d in sorted(p for p in results.iterdir() if p.is_dir()):
        try:
            model, T, scale = grammar.parse_name(d.name)
        except grammar.GrammarError:
            continue
        test, val = d / "full" / "scores_test.csv", d / "full" / "scores_val.csv"
        if not test.is_file():
            report.notes.append(f"{d.name}: skipped, no full/scores_test.csv")
            continue
        if not val.is_file():
            report.notes.append(f"{d.name}: skipped, no full/scores_val.csv (no validation threshold)")
            continue
        got = _selection(d / "full" / "selection.json", level)
        if got is None:
            report.notes.append(f"{d.name}: skipped, full/selection.json holds no validation "
                                f"thresholds or fold_clients (model selection writes them; "
                                f"delete full/ and run the full experiment again)")
            continue
        thr, fold_clients = got
        folds = [grammar.parse_split(f) for f in fold_clients]
        if len(folds) != N_FOLDS_PAPER:
            report.notes.append(f"{d.name}: {len(folds)} of {N_FOLDS_PAPER} validation folds "
                                f"present (folds {', '.join(map(str, folds))}), pooled as they are")
        missing = _skipped_rows(d / "full" / "fta.json", d.name, report)
        found.append(Scored(d.name, model, T, scale, folds, _val_folds(val, fold_clients, level),
                            load_scores(test, level, missing), thr))
    if not found:
        raise FileNotFoundError(
            f"no experiment found in {results}: expected folders named "
            f"<cnn|lstm|peephole>_T<T>_s<scale> holding full/scores_test.csv, "
            f"full/scores_val.csv and full/selection.json" + ("; " + "; ".join(report.notes) if report.notes else ""))
    return found


def evaluate(exp: Scored, protocol: str, bootstrap: Optional[dict]) -> Optional[ProtocolResult]:
    """One experiment, one protocol; None when a class is missing."""
    val = _concat(exp.val)
    va, vg = att_gen(val, mask(val, protocol))
    ta_all, tg_all = att_gen(exp.test, mask(exp.test, protocol))   # NaN = failure to acquire
    fta_val = metrics.count_fta(va) + metrics.count_fta(vg)
    fta_test = metrics.count_fta(ta_all) + metrics.count_fta(tg_all)
    va, vg, ta, tg = map(metrics.scored, (va, vg, ta_all, tg_all))
    thr = (exp.thresholds.get(protocol) or {}).get("pooled")
    if min(va.size, vg.size, ta.size, tg.size) == 0 or thr is None:
        return None
    fold_eers = []
    for f in exp.val:
        a, g = map(metrics.scored, att_gen(f, mask(f, protocol)))
        if a.size and g.size:
            fold_eers.append(metrics.eer(a, g))
    bob = metrics.rates_with_fta(ta_all, tg_all, thr)   # HTER over the scored samples
    pad = None
    if protocol == "overall":
        sel = mask(exp.test, protocol) & (exp.test["label"] != GENUINE)
        by_type = {a: exp.test["score"][sel & (exp.test["attack"] == a)] for a in ATTACK_TYPES}
        by_type = {a: s for a, s in by_type.items() if s.size}
        pad = metrics.apcer_bpcer(by_type, tg_all, thr)
    r = ProtocolResult(protocol, metrics.eer(va, vg), float(np.mean(fold_eers)) if fold_eers else np.nan,
                       thr, exp.thresholds[protocol].get("fold_mean"), bob.hter,
                       metrics.eer(ta, tg), bob.fmr, bob.fnmr, (tg.size, ta.size),
                       fta_val, fta_test, (metrics.count_fta(tg_all), metrics.count_fta(ta_all)),
                       bob, pad)
    if bootstrap:
        sel = mask(exp.test, protocol)
        r.ci = subject_bootstrap(exp.test["subject"][sel], exp.test["label"][sel],
                                 exp.test["score"][sel], thr, **bootstrap)
    return r


# ----------------------------------------------------------------------------- formatting

def _opt(x):
    return "" if x is None else x


def _fmt_thr(x) -> str:
    return "—" if x is None else f"{x:.6g}"


def pct(x) -> str:
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.2f}"


def pct_ci(point, iv) -> str:
    if iv is None:
        return pct(point)
    return f"{pct(point)} [{pct(iv.lo)}, {pct(iv.hi)}]"


def delta(ours, paper_pct) -> str:
    if paper_pct is None or ours is None or np.isnan(ours):
        return ""
    return f"{100 * ours - paper_pct:+.2f}"


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                 ("#", r"\#"), ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("—", "--"),
                 ("Δ", r"$\Delta$"), ("−", "-"), ("×", r"$\times$"), ("±", r"$\pm$")):
        s = s.replace(a, b)
    return s


def _csv_text(rows: list) -> str:
    """``rows`` as csv.writer writes them to a file (CRLF line ends), as one string."""
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def write_table(out: Path, stem: str, caption: list, header: list, rows: list,
                csv_header: list, csv_rows: list) -> list:
    """Write ``stem``.md / .csv / .tex; ``caption`` is a list of lines (first = title)."""
    md = [f"**{caption[0]}**", ""] + [f"*{c}*  " for c in caption[1:]] + [""]
    md.append("| " + " | ".join(header) + " |")
    md.append("|" + "|".join("---" for _ in header) + "|")
    md += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    write_text_atomic(out / f"{stem}.md", "\n".join(md) + "\n")
    write_text_atomic(out / f"{stem}.csv", _csv_text([csv_header] + list(csv_rows)))
    tex = [r"\begin{table}[t]", r"\centering", r"\small",
           r"\begin{tabular}{l" + "c" * (len(header) - 1) + "}", r"\hline",
           " & ".join(_tex_escape(h) for h in header) + r" \\", r"\hline"]
    tex += [" & ".join(_tex_escape(str(c)) for c in r) + r" \\" for r in rows]
    tex += [r"\hline", r"\end{tabular}",
            r"\caption{" + _tex_escape(" ".join(caption)) + "}", r"\end{table}"]
    write_text_atomic(out / f"{stem}.tex", "\n".join(tex) + "\n")
    return [out / f"{stem}.{e}" for e in ("md", "csv", "tex")]


# ----------------------------------------------------------------------------- selection

def select_table1(exps: list, results: dict, wanted: list, report: Report) -> list:
    """One experiment per model kind: the setting named in ``experiments.table1`` (the
    paper's best, configs/default.yaml) if present, else the lowest EER(val)."""
    chosen = []
    for model in ("cnn", "lstm", "peephole"):
        cands = [e for e in exps if e.model == model and results[e.name].get("overall")]
        if not cands:
            continue
        names = [w for w in wanted if w.split("_", 1)[0] == model]
        want = [e for w in names for e in cands if e.name == w]
        setting = " or ".join(names) or "none listed"
        if want:
            e = want[0]
            why = f"the configured setting (experiments.table1: {e.name})"
        else:
            e = min(cands, key=lambda x: (results[x.name]["overall"].eer_val, x.name))
            why = f"configured setting ({setting}) absent; lowest EER(val) among {len(cands)} present"
        report.notes.append(f"Table 1 {model}: {e.name}, {why}")
        chosen.append(e)
    return chosen


# ----------------------------------------------------------------------------- tables

def _caption_tail(report: Report, note: str, n_res: int, ci_level: float) -> list:
    lvl = ("sample-level scores (one per image / per n-frame clip, as the paper reports)"
           if report.level == "sample" else "video-level scores (mean of each video's sample scores)")
    lines = [f"Scores: {lvl}.",
             f"Ours: value [{100 * ci_level:g}% CI, bootstrap over test subjects, "
             f"{n_res} resamples]; Δ = ours − paper, in points."]
    n_win = sum(int(e["missing"]) for _, e in report.fta_videos)
    lines.append("Failures to acquire (FTA: test windows that preparation skipped, no face "
                 "in all T frames): HTER and EER leave them out, as the paper (\"simply "
                 "remove the bad faces\") and bob.measure do; beside HTER, bob's FTA (one rate "
                 "over both classes), FAR = FMR (1 - FTA) and FRR = FTA + FNMR (1 - FTA). "
                 + (f"Skipped: {n_win} window(s) in {len(report.fta_videos)} video(s) over "
                    f"{len(report.fta)} experiment(s) (fta.md)." if report.fta
                    else "None was skipped."))
    if note:
        lines.append(f"Note: {note}")
    return lines


T1_CSV = ["method", "source", "experiment", "n_folds", "eer_val", "eer_val_fold_mean",
          "threshold", "threshold_fold_mean", "hter_test", "hter_lo", "hter_hi", "eer_test",
          "eer_lo", "eer_hi", "fta_rate_test", "far_fta_test", "frr_fta_test", "fta_test_genuine",
          "fta_test_attack", "paper_eer_val", "paper_hter_test", "paper_eer_test",
          "d_eer_val", "d_hter_test", "d_eer_test"]


def _bob_cell(r: ProtocolResult) -> str:
    return f"{pct(r.bob.fta)} / {pct(r.bob.far)} / {pct(r.bob.frr)}"


def _t1_row(e: Scored, r: ProtocolResult, p, source: str) -> tuple[list, list]:
    """One of our Table 1 rows (markdown, csv) against the paper row ``p`` (or None)."""
    ci = r.ci
    pv = (p.eer_val, p.hter_test, p.eer_test) if p else (None, None, None)
    d = [delta(r.eer_val, pv[0]), delta(r.hter_test, pv[1]), delta(r.eer_test, pv[2])]
    dd = [f" (Δ {x})" if x else "" for x in d]
    md = [f"{e.label} (ours)", f"{e.name}, {len(e.folds)} fold(s)" + source,
          f"{pct(r.eer_val)}{dd[0]}", f"{pct_ci(r.hter_test, ci.hter if ci else None)}{dd[1]}",
          f"{pct_ci(r.eer_test, ci.eer if ci else None)}{dd[2]}", _bob_cell(r)]
    csv_row = [e.label, "ours" + source.replace(", ", "-").replace(" ", "-"), e.name, len(e.folds),
               100 * r.eer_val, 100 * r.eer_val_fold_mean, r.threshold, _opt(r.threshold_fold_mean),
               100 * r.hter_test, 100 * ci.hter.lo if ci else "", 100 * ci.hter.hi if ci else "",
               100 * r.eer_test, 100 * ci.eer.lo if ci else "", 100 * ci.eer.hi if ci else "",
               100 * r.bob.fta, 100 * r.bob.far, 100 * r.bob.frr, *r.fta_test_by_class,
               *(("", "", "") if p is None else pv), *d]
    return md, csv_row


def same_scale(chosen: list, exps: list, results: dict) -> list:
    """For each scale of Table 1's experiments, every other experiment at that scale."""
    names = {e.name for e in chosen}
    out = []
    for s in dict.fromkeys(e.scale for e in chosen):
        at = [e for e in exps if grammar.same_scale(e.scale, s) and results[e.name].get("overall")]
        if len({e.model for e in at}) > 1 and any(e.name not in names for e in at):
            out += sorted(at, key=lambda e: (["cnn", "lstm", "peephole"].index(e.model), e.T))
    return out


def table1(out, chosen, results, tail, exps=()) -> list:
    header = ["Method", "Source", "EER(val)", "HTER(test)", "EER(test)", "FTA / FAR / FRR (bob)"]
    rows, csv_rows, notes = [], [], []
    for p in paper_results.TABLE1:
        rows.append([p.method, f"paper; {p.cite}", pct(None if p.eer_val is None else p.eer_val / 100),
                     pct(None if p.hter_test is None else p.hter_test / 100),
                     pct(None if p.eer_test is None else p.eer_test / 100), ""])
        csv_rows.append([p.method, "paper", "", "", p.eer_val, "", "", "", p.hter_test, "", "",
                         p.eer_test, "", "", "", "", "", "", "", p.eer_val, p.hter_test,
                         p.eer_test, "", "", ""])
        for e in (c for c in chosen if c.paper_method == p.method):
            r = results[e.name]["overall"]
            md, row = _t1_row(e, r, p, "")
            rows.append(md)
            csv_rows.append(row)
            notes.append(f"{e.name}: EER(val) pooled over folds {e.folds}; mean of per-fold "
                         f"EERs {pct(r.eer_val_fold_mean)}; validation threshold {r.threshold:.6g} "
                         f"(EER threshold of the pooled fold scores, used for HTER; the other "
                         f"reading of §4.4, the mean of the per-fold EER thresholds: "
                         f"{_fmt_thr(r.threshold_fold_mean)}).")
    same = same_scale(chosen, list(exps), results)
    if same:
        rows.append(["**At the same scale** (ours; Table 2's cells)", "", "", "", "", ""])
    for e in same:
        md, row = _t1_row(e, results[e.name]["overall"], None, ", same scale")
        rows.append(md)
        csv_rows.append(row)
    cap = ["Table 1. Basic results (%) on CASIA-FASD, overall protocol: EER(val) on the pooled "
           "validation folds, HTER(test) at the validation EER threshold, EER(test)."] + tail + notes
    return write_table(out, "table1", cap, header, rows, T1_CSV, csv_rows)


def table2(out, exps, results, tail) -> list:
    keys = sorted({(e.model, e.T) for e in exps}, key=lambda k: (["cnn", "lstm", "peephole"].index(k[0]), k[1]))
    scales = sorted({e.scale for e in exps})
    by = {(e.model, e.T, e.scale): e for e in exps}
    header = ["Model"] + [f"s={s:.1f}" for s in scales]
    rows, csv_rows = [], []
    for model, T in keys:
        name = "CNN" if model == "cnn" else f"LSTM-CNN({T})" + (" [Caffe LSTM]" if model == "lstm" else " [peephole]")
        row = [name]
        for s in scales:
            paper = paper_results.table2_value(model, T, s)
            e = by.get((model, T, s))
            r = results[e.name].get("overall") if e else None
            ptxt = "—" if paper is None else f"{paper:.2f}"
            if r is None:
                row.append(f"paper {ptxt} / ours —")
                csv_rows.append([model, T, s, paper, "", "", "", ""])
                continue
            ci = r.ci.hter if r.ci else None
            d = delta(r.hter_test, paper)
            row.append(f"paper {ptxt} / ours {pct_ci(r.hter_test, ci)}" + (f" (Δ {d})" if d else ""))
            csv_rows.append([model, T, s, paper, 100 * r.hter_test, 100 * ci.lo if ci else "",
                             100 * ci.hi if ci else "", delta(r.hter_test, paper)])
        rows.append(row)
    cap = ["Table 2. Test HTER (%) by face-box scale and model; each cell: the paper's value / ours. "
           "Both our LSTM variants are compared with the paper's LSTM-CNN(n)."] + tail
    return write_table(out, "table2", cap, header, rows,
                       ["model", "T", "scale", "paper_hter_test", "hter_test", "hter_lo", "hter_hi", "d_hter_test"],
                       csv_rows)


def protocol_table(out, chosen, results, tail) -> list:
    header = ["Model", "Protocol", "test genuine / attack", "EER(val)", "threshold",
              "HTER(test)", "EER(test)", "FTA val / test"]
    rows, csv_rows = [], []
    for e in chosen:
        for p in PROTOCOLS:
            r = results[e.name].get(p)
            if r is None:
                rows.append([e.label, p, "—", "—", "—", "—", "—", "—"])
                continue
            ci = r.ci
            rows.append([e.label, p, f"{r.n_test[0]} / {r.n_test[1]}", pct(r.eer_val), f"{r.threshold:.4g}",
                         pct_ci(r.hter_test, ci.hter if ci else None),
                         pct_ci(r.eer_test, ci.eer if ci else None), f"{r.fta_val} / {r.fta_test}"])
            csv_rows.append([e.name, p, r.n_test[0], r.n_test[1], 100 * r.eer_val, r.threshold,
                             100 * r.hter_test, 100 * ci.hter.lo if ci else "", 100 * ci.hter.hi if ci else "",
                             100 * r.eer_test, 100 * ci.eer.lo if ci else "", 100 * ci.eer.hi if ci else "",
                             r.fta_val, r.fta_test])
    cap = ["CASIA-FASD's 7 test protocols (%). Quality-wise: genuine and attacks of that quality; "
           "attack-wise: that attack type against all genuine videos. Each protocol's threshold "
           "is the EER threshold of the validation scores in the same protocol."] + tail
    return write_table(out, "protocols", cap, header, rows,
                       ["experiment", "protocol", "n_genuine", "n_attack", "eer_val", "threshold",
                        "hter_test", "hter_lo", "hter_hi", "eer_test", "eer_lo", "eer_hi", "fta_val", "fta_test"],
                       csv_rows)


def iso_table(out, chosen, results, tail) -> list:
    header = ["Model", "threshold"] + [f"APCER {a}" for a in ATTACK_TYPES] + ["APCER (max)", "BPCER", "ACER", "FTA"]
    rows, csv_rows = [], []
    for e in chosen:
        r = results[e.name]["overall"]
        pad = r.pad
        per = [pct(pad.apcer_by_type.get(a)) for a in ATTACK_TYPES]
        fta = sum(pad.fta_by_type.values()) + pad.fta_genuine
        rows.append([e.label, f"{r.threshold:.4g}"] + per + [pct(pad.apcer), pct(pad.bpcer), pct(pad.acer), fta])
        csv_rows.append([e.name, r.threshold] + [100 * pad.apcer_by_type[a] if a in pad.apcer_by_type else ""
                                                 for a in ATTACK_TYPES]
                        + [100 * pad.apcer, 100 * pad.bpcer, 100 * pad.acer, fta])
    cap = ["ISO/IEC 30107-3 metrics (%) on test at the validation EER threshold (overall protocol): "
           "APCER per attack type (PAI species), APCER = max over types, BPCER = FRR, "
           "ACER = (APCER + BPCER) / 2, over the scored samples. FTA: test samples without a "
           "score (skipped by preparation), left out of the rates."] + tail[:1] + tail[2:]
    return write_table(out, "iso", cap, header, rows,
                       ["experiment", "threshold"] + [f"apcer_{a}" for a in ATTACK_TYPES]
                       + ["apcer_max", "bpcer", "acer", "fta"], csv_rows)


def all_results_csv(out: Path, exps, results) -> Path:
    rows = [["experiment", "model", "T", "scale", "n_folds", "protocol", "eer_val",
             "eer_val_fold_mean", "threshold", "threshold_fold_mean", "hter_test", "hter_lo",
             "hter_hi", "eer_test", "eer_lo", "eer_hi", "far_test", "frr_test", "n_genuine",
             "n_attack", "fta_val", "fta_test", "fta_rate_test", "far_fta_test",
             "frr_fta_test"]]
    for e in exps:
        for p in PROTOCOLS:
            r = results[e.name].get(p)
            if r is None:
                continue
            ci = r.ci
            rows.append([e.name, e.model, e.T, e.scale, len(e.folds), p, 100 * r.eer_val,
                         100 * r.eer_val_fold_mean, r.threshold, _opt(r.threshold_fold_mean),
                         100 * r.hter_test,
                         100 * ci.hter.lo if ci else "", 100 * ci.hter.hi if ci else "",
                         100 * r.eer_test, 100 * ci.eer.lo if ci else "",
                         100 * ci.eer.hi if ci else "",
                         100 * r.far_test, 100 * r.frr_test, r.n_test[0], r.n_test[1],
                         r.fta_val, r.fta_test, 100 * r.bob.fta, 100 * r.bob.far,
                         100 * r.bob.frr])
    return write_text_atomic(out / "all_results.csv", _csv_text(rows))


def fta_list(out: Path, report: Report) -> Path:
    """fta.md: every test video with windows that preparation skipped, per experiment."""
    lines = ["# Failures to acquire", "",
             "Test videos with windows that data preparation skipped (no face found in all T "
             "frames of a window, or none in the video), per experiment (`full/fta.json`). "
             "HTER and EER leave them out; Table 1 reports bob's FTA rate beside HTER.", ""]
    if not report.fta_videos:
        lines.append("None was skipped.")
    else:
        lines += ["| experiment | video | windows possible | scored | skipped | reason |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {n} | {e['video']} | {e['windows_possible']} | {e['windows_scored']} | "
                  f"{e['missing']} | {e['reason']} |" for n, e in report.fta_videos]
    return write_text_atomic(out / "fta.md", "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- driver

def _evaluate_all(exps: list, cfg: dict, boot: dict, report: Report) -> tuple[dict, list]:
    """Every experiment in the overall protocol (with intervals), the Table 1 choice, then
    every other protocol (intervals for the Table 1 experiments only)."""
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.FailureToAcquireWarning)
        for e in exps:
            r = evaluate(e, "overall", boot)
            results[e.name] = {"overall": r} if r else {}
            if r is None:
                report.notes.append(f"{e.name}: overall protocol lacks a class; left out")
        chosen = select_table1(exps, results, list(cfg["experiments"]["table1"]), report)
        for e in exps:
            for p in PROTOCOLS[1:]:
                r = evaluate(e, p, boot if e in chosen else None)
                if r is None:
                    report.notes.append(f"{e.name}: protocol {p} lacks a class in val or test; left out")
                results[e.name][p] = r
    return results, chosen


def _figures(out: Path, chosen: list, results: dict, level: str, note: str, fig6_points) -> dict:
    cap = f"{'sample' if level == 'sample' else 'video'}-level test scores" + (f"; {note}" if note else "")
    curves = [(e.label, e.test, results[e.name]["overall"].threshold) for e in chosen]
    written = {"fig6": figures.fig6_hter_vs_threshold(curves, out / "fig6_hter_vs_threshold.png",
                                                      cap, fig6_points),
               "roc": figures.roc_curves(curves, out / "roc.png", cap),
               "det": figures.det_curves(curves, out / "det.png", cap)}
    for e in chosen:
        written[f"hist_{e.name}"] = figures.score_histogram(
            e.label, e.test, results[e.name]["overall"].threshold, out / f"hist_{e.name}.png", cap)
    return written


def run(results_dir, out_dir, level: Optional[str] = None, cfg: Optional[dict] = None,
        note: Optional[str] = None, log=print) -> dict:
    """Compute everything and write tables and figures; returns {name: path}."""
    cfg = cfg or load_config(None)
    ev = cfg["eval"]
    level = level or ev["level"]
    if level not in ("sample", "video"):
        raise ValueError(f"level must be 'sample' or 'video', got {level!r}")
    note = ev["note"] if note is None else note
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(level)
    exps = discover(Path(results_dir), level, report)
    boot = {"n_resamples": ev["bootstrap_resamples"], "ci_level": ev["ci_level"], "seed": cfg["seed"]}

    results, chosen = _evaluate_all(exps, cfg, boot, report)
    exps = [e for e in exps if results[e.name].get("overall")]
    if not exps:
        raise ValueError("no experiment has both genuine and attack scores")

    tail = _caption_tail(report, note, ev["bootstrap_resamples"], ev["ci_level"])
    written = {}
    for name, fn in (("table1", lambda: table1(out, chosen, results, tail, exps)),
                     ("table2", lambda: table2(out, exps, results, tail)),
                     ("protocols", lambda: protocol_table(out, chosen, results, tail)),
                     ("iso", lambda: iso_table(out, chosen, results, tail))):
        written[name] = fn()[0]
    written["all_results"] = all_results_csv(out, exps, results)

    written.update(_figures(out, chosen, results, level, note, ev["fig6_points"]))

    written["fta"] = fta_list(out, report)
    index = ["# Evaluation outputs", "", f"Score level: {level}." + (f" Note: {note}" if note else ""), ""]
    index += [f"- [{k}]({Path(v).name})" for k, v in written.items()]
    index += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    write_text_atomic(out / "index.md", "\n".join(index) + "\n")
    written["index"] = out / "index.md"
    for n in report.notes:
        log(f"note: {n}")
    log(f"wrote {len(written)} outputs to {out}")
    return written


@errors.cli(also=(FileNotFoundError, ValueError))
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.tables", description=__doc__.split("\n")[0])
    ap.add_argument("--results", required=True, help="folder of <model>_T<T>_s<scale> experiments")
    ap.add_argument("--out", required=True, help="folder for tables and figures")
    ap.add_argument("--level", choices=("sample", "video"), default=None,
                    help="score level (default: eval.level of the config)")
    ap.add_argument("--config", default=None, help="YAML config (default: configs/default.yaml)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--note", default=None, help="caption note (default: eval.note of the config)")
    a = ap.parse_args(argv)
    cfg = load_config(a.config, a.overrides)
    print("eval config:", {"seed": cfg["seed"], **cfg["eval"]})
    run(a.results, a.out, a.level, cfg, a.note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
