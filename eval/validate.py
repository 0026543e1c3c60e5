"""``make validate``: the known-answer verdicts, from the tables of the known-answer runs.

    python -m eval.validate [--sets reversed background static] --runs RUN_reversed RUN_background RUN_static --out DIR

Each run is ``make reproduce-table1`` on a synthetic set whose answer holds by
construction (``synth.cues``, data_prep/synth.py): the experiments and the verdict each
must reach are stated here, once, and the run's config (``configs/validate-<set>.yaml``)
trains exactly those experiments. A verdict reads the test EER (threshold-free, so it
says what the model learnt, not how well a validation threshold carried over):

* ``chance``: EER(test) >= CHANCE_MIN. A model that cannot see the cue;
* ``learns``: EER(test) <= LEARNS_MAX. A model that sees it.

HTER(test) at the validation threshold and the bootstrap intervals over test subjects
are printed beside them. Writes ``validate.md``, ``validate.csv`` and ``validate.png``
to ``--out``; exit code 0 when every verdict holds, 1 when one fails, 2 on bad input.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import NamedTuple

from configs import errors, grammar
from configs.errors import UserError

CHANCE_MIN = 35.0     # %: a model at chance (50 in expectation, a few points of spread)
LEARNS_MAX = 20.0     # %: a model that found the cue


class Expect(NamedTuple):
    cues: str          # synth.cues of the set
    experiment: str    # configs.grammar name
    verdict: str       # "chance" or "learns"
    why: str


# The claims of the paper the sets test, and the control. Three temporal-only sets: in
# ``reversed`` and ``order`` every attack frame is a genuine frame (the classes share their
# frames and differ only in their order: played backwards, or shuffled), in ``temporal``
# an attack is one live frame held still. ``reversed`` carries a signed cue (genuine clips
# brighten, attacks darken); ``order`` and ``temporal`` carry one of spread (whether a
# clip's frames differ), which the paper's head does not learn in the demo's budget
# (docs/validation.md): their LSTM-CNN verdicts FAIL there.
EXPECTED = (
    Expect("reversed", "cnn_T1_s1.0", "chance",
           "each attack frame is a frame of a genuine video: one frame cannot tell"),
    Expect("reversed", "lstm_T5_s1.0", "learns", "the LSTM-CNN sees 5 frames in order (§3.2)"),
    Expect("reversed", "peephole_T5_s1.0", "learns", "the same with the paper's LSTM (Eq. 2-7)"),
    Expect("order", "cnn_T1_s1.0", "chance",
           "each attack frame is a frame of a genuine video: one frame cannot tell"),
    Expect("order", "lstm_T5_s1.0", "learns", "the LSTM-CNN sees 5 frames in order (§3.2)"),
    Expect("order", "peephole_T5_s1.0", "learns", "the same with the paper's LSTM (Eq. 2-7)"),
    Expect("temporal", "cnn_T1_s1.0", "chance",
           "every frame of both classes comes from one distribution: one frame cannot tell"),
    Expect("temporal", "lstm_T5_s1.0", "learns", "the LSTM-CNN sees 5 frames in order (§3.2)"),
    Expect("temporal", "peephole_T5_s1.0", "learns", "the same with the paper's LSTM (Eq. 2-7)"),
    Expect("background", "cnn_T1_s1.0", "chance", "the cue lies outside the face box"),
    Expect("background", "cnn_T1_s2.6", "learns", "a crop 2.6 times the box holds it (§4.1)"),
    Expect("static", "cnn_T1_s1.0", "learns", "control: every frame carries the cue"),
    Expect("static", "peephole_T5_s1.0", "learns", "control: so does every clip"),
)
CUES = tuple(dict.fromkeys(e.cues for e in EXPECTED))
# What `make validate` runs (Makefile VALIDATE_SETS): the order and frozen-frame sets are
# left out of the default to keep the target within 15 minutes on 2 cores; name them.
DEFAULT_SETS = ("reversed", "background", "static")


class ValidateError(UserError):
    """A run folder without the tables of a known-answer experiment."""


def experiments_of(cues: str) -> list[str]:
    """What the known-answer run of ``cues`` must train (its config's experiments.table1)."""
    return [e.experiment for e in EXPECTED if e.cues == cues]


def holds(verdict: str, eer_pct: float) -> bool:
    if verdict == "chance":
        return eer_pct >= CHANCE_MIN
    if verdict == "learns":
        return eer_pct <= LEARNS_MAX
    raise ValueError(f"unknown verdict {verdict!r}")


def _overall_rows(run: Path) -> dict:
    path = grammar.RunLayout(run).tables / "all_results.csv"
    if not path.is_file():
        raise ValidateError(f"{path} not found: run `make reproduce-table1` for {run} first "
                            f"(`make validate` does it)")
    with open(path, newline="") as f:
        return {r["experiment"]: r for r in csv.DictReader(f) if r["protocol"] == "overall"}


def verdicts(runs: dict) -> list[dict]:
    """``runs``: cues -> run folder. One row per expected verdict, with its figures."""
    out = []
    for cues, run in runs.items():
        rows = _overall_rows(Path(run))
        for e in (x for x in EXPECTED if x.cues == cues):
            r = rows.get(e.experiment)
            if r is None:
                raise ValidateError(f"{run}: no result for {e.experiment} in tables/all_results.csv "
                                    f"(is it in the config's experiments.table1?)")
            eer = float(r["eer_test"])
            out.append({"set": cues, "experiment": e.experiment, "expected": e.verdict,
                        "why": e.why, "eer_test": eer, "eer_lo": _f(r["eer_lo"]),
                        "eer_hi": _f(r["eer_hi"]), "hter_test": float(r["hter_test"]),
                        "hter_lo": _f(r["hter_lo"]), "hter_hi": _f(r["hter_hi"]),
                        "result": "PASS" if holds(e.verdict, eer) else "FAIL"})
    return out


def _f(x: str):
    return float(x) if x not in ("", None) else None


def _ci(v, lo, hi) -> str:
    return f"{v:.2f}" + (f" [{lo:.2f}, {hi:.2f}]" if lo is not None else "")


RULE = (f"chance: EER(test) >= {CHANCE_MIN:g} %; learns: EER(test) <= {LEARNS_MAX:g} %; "
        f"[95 % bootstrap interval over test subjects]")


def lines(rows: list[dict]) -> list[str]:
    head = ["set", "experiment", "expected", "EER(test) %", "HTER(test) %", "result"]
    body = [[r["set"], r["experiment"], r["expected"], _ci(r["eer_test"], r["eer_lo"], r["eer_hi"]),
             _ci(r["hter_test"], r["hter_lo"], r["hter_hi"]), r["result"]] for r in rows]
    w = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    fmt = lambda x: "  " + "  ".join(c.ljust(n) for c, n in zip(x, w)).rstrip()  # noqa: E731
    n_fail = sum(r["result"] == "FAIL" for r in rows)
    return (["Known-answer validation (" + RULE + "):", fmt(head)] + [fmt(b) for b in body]
            + [f"  {len(rows) - n_fail} of {len(rows)} verdicts hold"
               + ("" if not n_fail else f"; {n_fail} FAILED")])


def write(rows: list[dict], out: Path) -> list[Path]:
    from configs.files import write_text_atomic
    out.mkdir(parents=True, exist_ok=True)
    md = ["**Known-answer validation.** " + RULE, "",
          "| set | experiment | expected | why | EER(test) % | HTER(test) % | result |",
          "|---|---|---|---|---|---|---|"]
    md += [f"| {r['set']} | {r['experiment']} | {r['expected']} | {r['why']} | "
           f"{_ci(r['eer_test'], r['eer_lo'], r['eer_hi'])} | "
           f"{_ci(r['hter_test'], r['hter_lo'], r['hter_hi'])} | {r['result']} |" for r in rows]
    write_text_atomic(out / "validate.md", "\n".join(md) + "\n")
    keys = list(rows[0]) if rows else []
    text = ",".join(keys) + "\n" + "".join(
        ",".join("" if r[k] is None else str(r[k]).replace(",", ";") for k in keys) + "\n"
        for r in rows)
    write_text_atomic(out / "validate.csv", text)
    return [out / "validate.md", out / "validate.csv", _figure(rows, out / "validate.png")]


def _figure(rows: list[dict], path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from configs.files import save_figure_atomic
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(rows) + 1.5))
    for i, r in enumerate(rows):
        col = "tab:green" if r["result"] == "PASS" else "tab:red"
        lo = r["eer_lo"] if r["eer_lo"] is not None else r["eer_test"]
        hi = r["eer_hi"] if r["eer_hi"] is not None else r["eer_test"]
        ax.errorbar(r["eer_test"], i, xerr=[[r["eer_test"] - lo], [hi - r["eer_test"]]],
                    fmt="o", color=col, capsize=3)
        ax.text(101, i, f"expected: {r['expected']}  {r['result']}", va="center", fontsize=8)
    ax.axvspan(CHANCE_MIN, 100, color="0.9", label=f"chance (EER >= {CHANCE_MIN:g} %)")
    ax.axvspan(0, LEARNS_MAX, color="#e6f2e6", label=f"learns (EER <= {LEARNS_MAX:g} %)")
    ax.axvline(50, color="0.5", ls=":", lw=1)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r['set']}: {r['experiment']}" for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("EER(test) %, 95 % bootstrap interval over test subjects")
    ax.set_title("Known-answer validation: does each path learn exactly what it can see?",
                 fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()      # room for the set/experiment labels and the verdicts
    save_figure_atomic(fig, path, dpi=120)
    plt.close(fig)
    return path


@errors.cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.validate", description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS), choices=CUES,
                    help=f"the known-answer sets (default: {' '.join(DEFAULT_SETS)})")
    ap.add_argument("--runs", nargs="+", required=True, type=Path,
                    metavar="RUN", help="the run folders of the sets, in the order of --sets")
    ap.add_argument("--out", required=True, type=Path, help="folder for validate.md/.csv/.png")
    a = ap.parse_args(argv)
    if len(a.runs) != len(a.sets):
        raise UserError(f"--runs: {len(a.runs)} run folders for {len(a.sets)} sets "
                        f"({' '.join(a.sets)}): give one run folder per set, in that order")
    rows = verdicts(dict(zip(a.sets, a.runs)))
    print("\n".join(lines(rows)))
    for p in write(rows, a.out):
        print(f"wrote {p}")
    return errors.EXIT_OK if all(r["result"] == "PASS" for r in rows) else errors.EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
