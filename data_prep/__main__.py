"""``python -m data_prep --dataset ROOT --out OUT [--config FILE] [--set KEY=VALUE ...]``

Paper §4.1 and §4.3: one Viola-Jones pass, samples at every (scale, T), HDF5 shards for
Caffe's HDF5Data layer, subject-wise folds. The work lives in data_prep/pipeline.py.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from configs import dump_config, errors, load_config


@errors.cli(also=(ValueError, OSError))   # a library's, on a bad value or an unwritable path
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m data_prep", description=__doc__.split("\n\n")[1])
    ap.add_argument("--dataset", help="CASIA-FASD-layout root (default: dataset.root of the config)")
    ap.add_argument("--out", required=True, help="output folder (layout: data_prep/hdf5_layout.py)")
    ap.add_argument("--config", help="YAML config with _base_: default.yaml")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key, e.g. --set samples.scales=[1.8] --set samples.seq_lengths=[1,7]")
    ap.add_argument("--only", nargs="+", metavar="SCALE:T",
                    help="prepare only these (scale, T) of the config, e.g. --only 2.6:1 1.8:7 "
                         "(default: every samples.scales x samples.seq_lengths)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    a = ap.parse_args(argv)
    cfg = load_config(a.config, a.set)
    root = a.dataset or cfg["dataset"]["root"]
    if a.dataset:
        cfg["dataset"]["root"] = a.dataset
    from data_prep import pipeline
    out = Path(a.out)
    pipeline._check_out(out.resolve())
    dump_config(cfg, out / "config.yaml")
    only = None
    if a.only:
        try:
            only = [(float(x.split(":")[0]), int(x.split(":")[1])) for x in a.only]
        except (ValueError, IndexError):
            raise errors.UserError(f"--only takes SCALE:T pairs such as 2.6:1 1.8:7, got {a.only}") from None
    pipeline.run(cfg, root, out, progress=not a.no_progress, only=only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
