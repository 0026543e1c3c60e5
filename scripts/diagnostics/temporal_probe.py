"""Does a trained LSTM-CNN use the order of its frames? Its test clips scored four ways.

    python -m scripts.temporal_probe --model RUN/experiments/<lstm|peephole>_T<T>_s<s>/full
                                     [--out DIR] [--seed N]
    python -m scripts.temporal_probe --plot LABEL=path/temporal_probe.json ... --out FIG.png

The experiment's own test shards (the prepared T-frame clips it was scored on) go through
its deploy net as stored, and three times changed along the time axis only (every frame
of every clip stays the clip's own):

* ``reversed``: frames T..1;
* ``shuffled``: a seeded random order per clip (never the stored one, for T >= 2);
* ``repeated``: the clip's middle frame T times (no motion at all).

For each: HTER(test) at the experiment's validation threshold (``threshold.json``),
EER(test), the mean |p(genuine) - stored p(genuine)| and the share of clips whose
decision at that threshold changed. A model that ignores time scores all four alike; a
model that learnt motion moves, most of all when the motion is taken away (``repeated``).
A CNN (T = 1) has nothing to probe and is refused. Writes ``temporal_probe.json`` and
``temporal_probe.md`` to ``--out`` (default: the model folder) and prints the table.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from configs import errors, grammar
from configs.errors import UserError
from configs.files import write_json_atomic, write_text_atomic
from data_prep import hdf5_layout as layout

VARIANTS = ("stored", "reversed", "shuffled", "repeated")


class ProbeError(UserError):
    """The model folder is not a finished LSTM-CNN experiment with prepared test data."""


def reorder(data: np.ndarray, variant: str, rng: np.random.Generator) -> np.ndarray:
    """Clips (N, T, C, H, W) with their time axis changed as ``variant`` says."""
    n, T = data.shape[:2]
    if variant == "stored":
        return data
    if variant == "reversed":
        return data[:, ::-1]
    if variant == "repeated":
        return np.repeat(data[:, T // 2:T // 2 + 1], T, axis=1)
    if variant == "shuffled":
        order = np.empty((n, T), np.int64)
        for i in range(n):
            p = rng.permutation(T)
            while T > 1 and np.array_equal(p, np.arange(T)):
                p = rng.permutation(T)
            order[i] = p
        return np.take_along_axis(data, order[:, :, None, None, None], axis=1)
    raise ValueError(f"unknown variant {variant!r}; known: {VARIANTS}")


def _experiment(model_dir: Path) -> tuple[grammar.Experiment, Path, float]:
    """(experiment, run folder, validation threshold) of a finished full run."""
    model_dir = Path(model_dir).resolve()
    try:
        exp = grammar.parse(f"{model_dir.parent.name}/{model_dir.name}")
    except grammar.GrammarError as e:
        raise ProbeError(f"{model_dir}: not an experiment folder "
                         f"(<model>_T<T>_s<scale>/full): {e}") from None
    if exp.T < 2:
        raise ProbeError(f"{model_dir}: {exp.name} sees one frame per sample; the temporal "
                         f"probe is for LSTM-CNN experiments (T >= 2)")
    for f in ("DONE", "deploy.prototxt", "model.caffemodel", "threshold.json"):
        if not (model_dir / f).is_file():
            raise ProbeError(f"{model_dir}: no {f}: train the experiment to its end first "
                             f"(make reproduce-table1 / scale-sweep, or scripts.train)")
    thr = float(json.loads((model_dir / "threshold.json").read_text())["threshold"])
    return exp, model_dir.parents[2], thr


def score_variants(net, shards: list[Path], batch: int, seed: int) -> dict:
    """variant -> p(genuine) of every test clip; also ``label`` and ``subject``."""
    from scripts.training.caffe_io import genuine_prob, iter_shards
    rng = np.random.default_rng(seed)
    out = {v: [] for v in VARIANTS}
    labels, subjects = [], []
    for data, label, meta in iter_shards(shards, batch):
        for v in VARIANTS:
            x = np.ascontiguousarray(reorder(data, v, rng))
            net.blobs["data"].reshape(*x.shape)
            net.blobs["data"].data[...] = x
            out[v].append(genuine_prob(net.forward(), len(x)))
        labels.append(label.astype(np.int64))
        subjects.append(np.asarray(meta["subject"]))
    res = {v: np.concatenate(s) for v, s in out.items()}
    res["label"], res["subject"] = np.concatenate(labels), np.concatenate(subjects)
    return res


def summarise(scores: dict, threshold: float) -> list[dict]:
    from data_prep.casia import GENUINE
    from eval import metrics
    y = scores["label"]
    ref = scores["stored"]
    rows = []
    for v in VARIANTS:
        s = scores[v]
        neg, pos = s[y != GENUINE], s[y == GENUINE]
        rows.append({"variant": v, "hter_test": 100 * metrics.hter(neg, pos, threshold),
                     "eer_test": 100 * metrics.eer(neg, pos),
                     "mean_genuine": float(pos.mean()), "mean_attack": float(neg.mean()),
                     "mean_abs_change": float(np.abs(s - ref).mean()),
                     "decisions_changed": 100 * float(np.mean((s >= threshold) != (ref >= threshold)))})
    return rows


def table_lines(name: str, rows: list[dict], threshold: float, n: int) -> list[str]:
    head = ("variant", "HTER(test) %", "EER(test) %", "mean p(gen.) genuine / attack",
            "mean |Δp|", "decisions changed %")
    body = [(r["variant"], f"{r['hter_test']:.2f}", f"{r['eer_test']:.2f}",
             f"{r['mean_genuine']:.3f} / {r['mean_attack']:.3f}", f"{r['mean_abs_change']:.4f}",
             f"{r['decisions_changed']:.1f}") for r in rows]
    md = [f"**Temporal probe of {name}** ({n} test clips, validation threshold {threshold:.4g})", "",
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return md + ["| " + " | ".join(b) + " |" for b in body]


def probe(model_dir: Path, out: Path | None = None, seed: int = 0, batch: int = 32) -> list[dict]:
    import os
    os.environ.setdefault("GLOG_minloglevel", "2")
    import caffe
    model_dir = Path(model_dir).resolve()
    exp, run, thr = _experiment(model_dir)
    caffe.set_mode_cpu()
    net = caffe.Net(str(model_dir / "deploy.prototxt"), str(model_dir / "model.caffemodel"),
                    caffe.TEST)
    list_path = layout.list_file(grammar.RunLayout(run).prep, exp.scale, exp.T, "test")
    try:
        shards = layout.read_list(list_path)
    except FileNotFoundError as e:
        raise ProbeError(f"{model_dir}: its prepared test data is gone ({e}); prepare it again "
                         f"(make prep with the experiment's config)") from None
    scores = score_variants(net, shards, batch, seed)
    rows = summarise(scores, thr)
    out = Path(out or model_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = table_lines(exp.name, rows, thr, len(scores["label"]))
    write_text_atomic(out / "temporal_probe.md", "\n".join(lines) + "\n")
    write_json_atomic(out / "temporal_probe.json", {"experiment": exp.name, "threshold": thr,
                                                    "seed": seed, "rows": rows})
    print("\n".join(lines))
    return rows


def plot(results: dict, path: Path) -> Path:
    """One panel per probed model (label -> temporal_probe.json contents): HTER(test) of
    each variant, and the share of decisions that changed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from configs.files import save_figure_atomic
    fig, axes = plt.subplots(1, len(results), figsize=(3.0 * len(results), 3.0), sharey=True)
    # 0-60 unless a variant goes above it (a model that reads time backwards: up to 100)
    top = max([60.0] + [r["hter_test"] + 10 for res in results.values() for r in res["rows"]])
    for ax, (label, res) in zip(np.atleast_1d(axes), results.items()):
        rows = {r["variant"]: r for r in res["rows"]}
        h = [rows[v]["hter_test"] for v in VARIANTS]
        bars = ax.bar(VARIANTS, h, color=["0.4", "tab:blue", "tab:orange", "tab:red"])
        for b, v in zip(bars, VARIANTS):
            ax.text(b.get_x() + b.get_width() / 2, b.get_height() + 1,
                    f"{rows[v]['decisions_changed']:.1f} %", ha="center", fontsize=7)
        ax.axhline(50, color="0.5", ls=":", lw=1)
        ax.set_title(label, fontsize=8)
        ax.set_ylim(0, min(top, 105.0))
        ax.tick_params(axis="x", labelsize=7, rotation=30)
    np.atleast_1d(axes)[0].set_ylabel("HTER(test) %  (label: decisions changed)", fontsize=8)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=110)
    plt.close(fig)
    return path


@errors.cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.temporal_probe",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="RUN/experiments/<name>/full")
    ap.add_argument("--out", type=Path, default=None, help="folder for the results (default: "
                    "--model); with --plot, the PNG to write")
    ap.add_argument("--seed", type=int, default=0, help="seed of the shuffled order")
    ap.add_argument("--plot", nargs="+", metavar="LABEL=JSON", default=None,
                    help="draw earlier results (temporal_probe.json files) side by side")
    a = ap.parse_args(argv)
    if a.plot:
        pairs = [x.split("=", 1) for x in a.plot]
        if any(len(p) != 2 for p in pairs) or a.out is None:
            ap.error("--plot takes LABEL=path/to/temporal_probe.json ... and needs --out FILE.png")
        missing = [v for _, v in pairs if not Path(v).is_file()]
        if missing:
            ap.error(f"--plot: {', '.join(missing)} not found (probe that model first: --model)")
        plot({k: json.loads(Path(v).read_text()) for k, v in pairs}, a.out)
        print(f"wrote {a.out}")
        return 0
    if a.model is None:
        ap.error("--model is required (or --plot)")
    probe(a.model, a.out, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
