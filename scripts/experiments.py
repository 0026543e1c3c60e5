"""The experiment lists the Makefile builds (the grammar itself: configs/grammar.py).

Command line (used by the Makefile)::

    python -m scripts.experiments folds|table1|sweep --config C --run RUN
    python -m scripts.experiments combos [--of table1|sweep|all] --config C   (SCALE:T ...)

The config is checked first (configs.load_experiment_config): a bad key, an experiment
whose (scale, T) is not prepared, or net.input_size != samples.size is one ``error:``
line on stderr and exit status 2, before any work.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from configs import errors, grammar


@errors.cli
def main(argv=None) -> int:
    from configs import load_experiment_config
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("folds", "table1", "sweep", "combos"))
    ap.add_argument("--config", default=None)
    ap.add_argument("--run", default="runs/default")
    ap.add_argument("--of", choices=("table1", "sweep", "all"), default="all",
                    help="with combos: the experiments whose (scale, T) are listed")
    a = ap.parse_args(argv)
    cfg = load_experiment_config(a.config)
    if a.what == "folds":
        print(" ".join(str(k) for k in grammar.fold_ids(cfg)))
    elif a.what == "combos":
        print(" ".join(f"{grammar.scale_str(s)}:{T}" for s, T in grammar.combos(cfg, a.of)))
    else:
        names = grammar.table1_names(cfg) if a.what == "table1" else grammar.sweep_names(cfg)
        print(" ".join(str(Path(a.run) / "experiments" / n / "full" / "DONE") for n in dict.fromkeys(names)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
