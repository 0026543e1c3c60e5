"""Table 1 (and Table 2 of a scale sweep) on the terminal, from what eval/tables.py wrote.

``python -m eval.summary RUN/tables`` reads ``table1.csv`` and ``table2.csv`` and prints
them compactly, with the path of ``index.md``, which links the full tables (captions,
confidence intervals, protocols, ISO metrics) and the figures. The make targets that build
tables end with it. It computes nothing: every number is the CSV's, rounded to 2 places.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from configs import errors


class SummaryError(errors.UserError):
    """A tables folder without the files eval/tables.py writes."""


def _read(path: Path) -> list[dict]:
    if not path.is_file():
        raise SummaryError(f"{path} not found: build the tables first (make tables, or "
                           f"python -m eval.tables --results RUN/experiments --out {path.parent})")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _num(row: dict, key: str) -> str:
    v = row.get(key, "")
    return "—" if v in ("", None) else f"{float(v):.2f}"


def _ci(row: dict, key: str, lo: str, hi: str) -> str:
    v = _num(row, key)
    if v == "—" or row.get(lo, "") == "":
        return v
    return f"{v} [{float(row[lo]):.2f}, {float(row[hi]):.2f}]"


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda r: "  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                      for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    return [fmt(header)] + [fmt(r) for r in rows]


SAME_SCALE = "ours-same-scale"


def _ours(r: dict, label: str) -> list[str]:
    return [label, _num(r, "eer_val"), _ci(r, "hter_test", "hter_lo", "hter_hi"),
            _ci(r, "eer_test", "eer_lo", "eer_hi"), _num(r, "fta_rate_test")]


def table1_lines(rows: list[dict]) -> list[str]:
    """The paper's rows of the methods we trained, each followed by ours (table1.csv lists
    each paper row followed by our experiments for that method), then our experiments at
    the scales of Table 1's, side by side (``ours-same-scale`` rows)."""
    groups: list[tuple[dict, list[dict]]] = []
    for r in rows:
        if r["source"] == "paper":
            groups.append((r, []))
        elif groups and r["source"] != SAME_SCALE:
            groups[-1][1].append(r)
    out = []
    for p, ours in groups:
        if not ours:
            continue
        out.append([f"{p['method']} (paper)", _num(p, "eer_val"), _num(p, "hter_test"),
                    _num(p, "eer_test"), ""])
        out += [_ours(r, f"  ours: {r['experiment']}, {r['n_folds']} folds") for r in ours]
    same = [r for r in rows if r["source"] == SAME_SCALE]
    if same:
        out.append(["at the same scale (ours):", "", "", "", ""])
        out += [_ours(r, f"  {r['experiment']}") for r in same]
    title = ("Table 1, overall protocol (%; ours with the bootstrap interval over test subjects; "
             "HTER over the scored samples, FTA = bob's failure-to-acquire rate):")
    return [title] + _grid(["method", "EER(val)", "HTER(test)", "EER(test)", "FTA"], out)


def _model_label(model: str, T: str) -> str:
    return "CNN" if model == "cnn" else \
        f"LSTM-CNN({T}) " + ("peephole" if model == "peephole" else "Caffe LSTM")


def table2_lines(rows: list[dict], n_table1: int) -> list[str]:
    """Test HTER by model and scale, ours with the paper's value in parentheses; empty
    when it holds no more of our results than Table 1's ``n_table1`` (no sweep was run)."""
    done = [r for r in rows if r.get("hter_test", "") != ""]
    if len(done) <= n_table1:
        return []
    scales = sorted({float(r["scale"]) for r in done})
    keys = list(dict.fromkeys((r["model"], r["T"]) for r in done))
    cell = {(r["model"], r["T"], float(r["scale"])): r for r in rows}
    out = []
    for model, T in keys:
        line = [_model_label(model, T)]
        for s in scales:
            r = cell.get((model, T, s))
            ours = _num(r, "hter_test") if r else "—"
            paper = _num(r, "paper_hter_test") if r else "—"
            line.append(f"{ours} ({paper})")
        out.append(line)
    title = "Table 2, test HTER (%) by face-box scale: ours (paper):"
    return [title] + _grid(["model"] + [f"s={s:.1f}" for s in scales], out)


def summary(tables: Path) -> str:
    tables = Path(tables)
    t1 = _read(tables / "table1.csv")
    lines = table1_lines(t1)
    t2 = table2_lines(_read(tables / "table2.csv"),
                      len({r["experiment"] for r in t1 if r["source"].startswith("ours")}))
    if t2:
        lines += [""] + t2
    lines += ["", f"Captions, all protocols, ISO metrics and figures: {tables / 'index.md'}"]
    return "\n".join(lines)


@errors.cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.summary", description=__doc__.split("\n")[0])
    ap.add_argument("tables", help="the folder eval.tables wrote (RUN/tables)")
    a = ap.parse_args(argv)
    try:
        print(summary(Path(a.tables)))
    except (SummaryError, KeyError, ValueError) as e:
        what = f"a column named {e} is missing" if isinstance(e, KeyError) else str(e)
        raise SummaryError(f"{a.tables}: {what}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
