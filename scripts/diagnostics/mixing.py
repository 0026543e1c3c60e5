"""How well training minibatches mix subjects, measured on the batches the net receives.

Runs the TRAIN-phase data layer of an experiment's own ``train_val.prototxt`` (the real
Caffe layer, alone in a one-layer net) for N consecutive batches, traces every sample
back to its subject by its pixels (a hash of the sample's bytes, looked up in the
shards of the layer's list) and reports:

- ``subjects_per_batch``: the mean number of distinct subjects in a batch;
- ``iid_subjects_per_batch``: what an i.i.d. draw of the same batch size from the
  same samples gives, sum over subjects of 1 - (1 - p_s)^B, p_s = the subject's share;
- ``share``: the ratio of the two (goal >= 0.9);
- ``longest_single_fold_run``: the longest run of consecutive batches whose subjects
  all come from one fold (goal <= 2), folds read from the shard names
  (``train_fold<k>_NNNN.h5``, data_prep/hdf5_layout.py).

``hdf5data_variant`` gives the same net with Caffe's ``HDF5Data`` layer instead, the
layer this project used before: it shuffles rows only within the file it has loaded,
so its batches stay within one fold's shards for long runs.

    python -m scripts.diagnostics.mixing TRAIN_VAL.prototxt [--batches 1000] [--hdf5data]
    python -m scripts.diagnostics.mixing --bench PREP [--config C]   (make bench: both layers, fold and
                                                         full lists, demo and paper batches)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from configs import errors, grammar
from data_prep import hdf5_layout as L


def _proto(path):
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format
    net = caffe_pb2.NetParameter()
    text_format.Merge(Path(path).read_text(), net)
    return net


def _train_data_layer(net):
    from caffe.proto import caffe_pb2
    for layer in net.layer:
        if layer.type in ("Python", "HDF5Data") and any(r.phase == caffe_pb2.TRAIN for r in layer.include):
            return layer
    raise ValueError(f"net {net.name!r} has no TRAIN-phase data layer (Python or HDF5Data)")


def layer_source(layer) -> tuple[str, int]:
    """(list file, batch size) of a SequenceData or HDF5Data layer."""
    if layer.type == "HDF5Data":
        return layer.hdf5_data_param.source, int(layer.hdf5_data_param.batch_size)
    p = json.loads(layer.python_param.param_str)
    return p["source"], int(p["batch_size"])


def hdf5data_variant(train_val, tmp: Path):
    """The net of ``train_val`` with its TRAIN data layer replaced by Caffe's HDF5Data
    (shuffle: true) over the same shards (a list with absolute paths, as HDF5Data opens
    names from the folder it runs in). Returns the NetParameter."""
    net = _proto(train_val)
    layer = _train_data_layer(net)
    source, batch = layer_source(layer)
    lst = Path(tmp) / ("abs_" + Path(source).name)
    lst.write_text("".join(f"{p.resolve()}\n" for p in L.read_list(source)))
    layer.type = "HDF5Data"
    layer.ClearField("python_param")
    layer.hdf5_data_param.source = str(lst)
    layer.hdf5_data_param.batch_size = batch
    layer.hdf5_data_param.shuffle = True
    return net


def _fingerprint(x: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(x, np.uint8).tobytes(), digest_size=12).digest()


def subject_index(shards: list[Path]) -> tuple[dict, dict]:
    """{sample fingerprint: subject or None if ambiguous}, {subject: fold} from the shards."""
    import h5py
    who, fold_of = {}, {}
    for p in shards:
        m = re.match(r"train_fold(\d+)_", p.name)
        fold = int(m.group(1)) if m else 0
        with h5py.File(p, "r") as f:
            subj = f["subject"][...]
            data = f[L.DATA]
            for a in range(0, len(subj), 256):
                block = data[a:a + 256]
                for x, s in zip(block, subj[a:a + 256]):
                    k = _fingerprint(x)
                    who[k] = int(s) if who.get(k, int(s)) == int(s) else None
            for s in np.unique(subj):
                fold_of[int(s)] = fold
    return who, fold_of


def iid_subjects(counts: np.ndarray, batch: int) -> float:
    p = counts / counts.sum()
    return float(np.sum(1.0 - (1.0 - p) ** batch))


def longest_single_fold_run(batch_folds: list[set]) -> int:
    best = run = 0
    prev = None
    for fs in batch_folds:
        one = next(iter(fs)) if len(fs) == 1 else None
        run = run + 1 if one is not None and one == prev else (1 if one is not None else 0)
        prev = one
        best = max(best, run)
    return best


def measure(net_param, n_batches: int = 1000) -> dict:
    """Run the TRAIN data layer of ``net_param`` (a NetParameter or a prototxt path) for
    ``n_batches`` batches; a relative source resolves from the current folder, as in Caffe."""
    import caffe
    from caffe.proto import caffe_pb2
    net = net_param if isinstance(net_param, caffe_pb2.NetParameter) else _proto(net_param)
    layer = _train_data_layer(net)
    source, batch = layer_source(layer)
    who, fold_of = subject_index(L.read_list(source))
    only = caffe_pb2.NetParameter(name="data_only")
    only.layer.add().CopyFrom(layer)
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
        f.write(str(only))
    try:
        data_net = caffe.Net(f.name, caffe.TRAIN)
    finally:
        Path(f.name).unlink()
    counts: dict[int, int] = {}
    for s in who.values():
        if s is not None:
            counts[s] = counts.get(s, 0) + 1
    per_batch, folds_per_batch, ambiguous = [], [], 0
    for _ in range(n_batches):
        data_net.forward()
        x = data_net.blobs["data"].data
        subs = []
        for row in x:
            s = who.get(_fingerprint(row))
            if s is None:
                ambiguous += 1
            else:
                subs.append(s)
        per_batch.append(len(set(subs)))
        folds_per_batch.append({fold_of[s] for s in subs})
    iid = iid_subjects(np.asarray(list(counts.values()), float), batch)
    mean = float(np.mean(per_batch))
    return {"layer": layer.python_param.layer if layer.type == "Python" else layer.type, "source": source, "batch": batch, "batches": n_batches,
            "samples": int(sum(counts.values())), "subjects": len(counts),
            "folds": sorted({fold_of[s] for s in counts}),
            "subjects_per_batch": mean, "iid_subjects_per_batch": iid, "share": mean / iid,
            "longest_single_fold_run": longest_single_fold_run(folds_per_batch),
            "ambiguous_samples": ambiguous}


def format_result(r: dict) -> str:
    return (f"{r['layer']:<12} batch {r['batch']:>3}  {r['subjects']:>2} subjects in folds "
            f"{','.join(map(str, r['folds']))}: {r['subjects_per_batch']:.1f} distinct subjects/batch "
            f"vs {r['iid_subjects_per_batch']:.1f} i.i.d. = {100 * r['share']:.0f} %; longest "
            f"single-fold run {r['longest_single_fold_run']} batches ({r['batches']} batches)")


def bench(prep: Path, config: str | None, n_batches: int) -> list[dict]:
    """Both layers on the fold-1 and full training lists of ``prep`` (CNN s2.6 and
    peephole T = 7 s1.8, as in Table 1), at the config's batch sizes and the paper's."""
    from configs import load_config
    from prototxt import generate as G
    cfg = load_config(config)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for model, T, scale in (("cnn", 1, 2.6), ("peephole", 7, 1.8)):
            key = "batch_cnn" if model == "cnn" else "batch_lstm"
            for batch in dict.fromkeys((int(cfg["solver"][key]), 100 if model == "cnn" else 32)):
                for which in ("fold1_train", "train"):
                    lst = L.list_file(prep, scale, T, which)
                    if not lst.is_file():
                        print(f"(no {lst}: skipped)")
                        continue
                    d = tmp / f"{model}_{batch}_{which}"
                    c = dict(cfg, net=dict(cfg["net"], input_size=_size(lst)))
                    tv = G.write_experiment_nets(c, model, T, lst, lst, d, batch=batch)["train_val"]
                    for net in (_proto(tv), hdf5data_variant(tv, d)):
                        r = dict(measure(net, n_batches), model=model, T=T, scale=scale, list=which)
                        print(f"{grammar.exp_name(model, T, scale)} {which:<11} " + format_result(r), flush=True)
                        out.append(r)
    return out


def _size(list_file: Path) -> int:
    import h5py
    with h5py.File(L.read_list(list_file)[0], "r") as f:
        return int(f[L.DATA].shape[-1])


@errors.cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("train_val", nargs="?", help="an experiment's train_val.prototxt")
    ap.add_argument("--bench", metavar="PREP", help="measure both layers on a prepared folder")
    ap.add_argument("--config", default=None, help="with --bench: the config the folder was made with")
    ap.add_argument("--batches", type=int, default=1000)
    ap.add_argument("--hdf5data", action="store_true",
                    help="measure Caffe's HDF5Data on the same shards instead (the old layer)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    import os
    os.environ.setdefault("GLOG_minloglevel", "2")
    if a.bench:
        if not Path(a.bench).is_dir():
            raise errors.UserError(f"no prepared folder {a.bench} (run `make demo` first)")
        bench(Path(a.bench), a.config, a.batches)
        return 0
    if not a.train_val:
        ap.error("give a train_val.prototxt or --bench PREP")
    with tempfile.TemporaryDirectory() as tmp:
        net = hdf5data_variant(a.train_val, Path(tmp)) if a.hdf5data else _proto(a.train_val)
        r = measure(net, a.batches)
    print(json.dumps(r, indent=1) if a.json else format_result(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
