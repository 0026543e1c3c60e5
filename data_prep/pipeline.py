"""Data preparation end to end: index, one detection pass, samples, shards, report.

Stages, each resumable after a kill (every file is written to a temporary name and
renamed when complete):

1. index the tree (index.py) and hash every video (hashes cached by size and mtime);
2. detect faces in every video not yet in the cache (detect.py), a worker per core;
3. for each requested (scale, T) not up to date: decode each video once, stream its
   frames into every combination's staging file (samples.py);
4. cut each group (train fold k, test) into shards (shards.py), write the list files and
   the manifest, and rename the finished folder into place (layout: hdf5_layout.py).

A combination whose manifest matches the current inputs and config is skipped, so a
rerun does nothing and a new scale or T builds only what is new.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from configs import grammar
from data_prep import casia, datasets, detect, folds as folds_mod, index, samples, shards
from data_prep import hdf5_layout as L
from data_prep import util
from data_prep.index import DatasetError
from data_prep.util import stable_hash


def _log(msg: str) -> None:
    print(msg, flush=True)


def _check_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write_probe{os.getpid()}"
        with open(probe, "w") as f:
            f.write("ok")
        os.unlink(probe)
    except OSError as e:
        raise util.output_error(e, out) from e


def _hashes(videos, cache_file: Path) -> tuple[dict, list]:
    """sha256 of every video, reusing the cache when size and mtime match."""
    try:
        old = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    except (OSError, ValueError):
        old = {}
    new, bad = {}, []
    for v in videos:
        try:
            st = v.path.stat()
            rec = old.get(str(v.path))
            if rec and rec[0] == st.st_size and rec[1] == st.st_mtime_ns:
                new[str(v.path)] = rec
            else:
                new[str(v.path)] = [st.st_size, st.st_mtime_ns, util.file_sha256(v.path)]
        except OSError as e:
            bad.append({"video": v.rel, "reason": f"unreadable: {e.strerror or e}"})
    if new != old:
        util.write_json_atomic(cache_file, new)
    return {p: r[2] for p, r in new.items()}, bad


def _workers(cfg) -> int:
    w = int(cfg["prep"]["workers"])
    return w if w > 0 else (os.cpu_count() or 1)


def _dataset_key(cfg) -> dict:
    """What the combination key adds for a data set other than CASIA-FASD (nothing for
    CASIA-FASD, so that its prepared folders made before other data sets existed stay
    up to date)."""
    name = cfg["dataset"]["name"]
    if name == "casia":
        return {}
    return {"dataset": name, "protocol": datasets.resolve_protocol(name, cfg["dataset"]["protocol"]),
            "dev_set": datasets.uses_dev(cfg)}


def _combo_key(cfg, scale, T, vids, dets, folds, dparams) -> str:
    s, h = cfg["samples"], cfg["hdf5"]
    return stable_hash({**_dataset_key(cfg),
        "layout": L.LAYOUT_VERSION, "scale": float(scale), "T": int(T),
        "size": s["size"], "interp": s["interp"], "stride": samples.stride_for(T, s["stride"]),
        "missing_face": s["missing_face"], "max_per_video": s["max_per_video"],
        "shard_mb": h["shard_mb"], "shuffle_train": h["shuffle_train"], "seed": cfg["seed"],
        "folds": [list(f) for f in folds], "detector": dparams,
        "videos": [(v.key, dets[v.key].cache.name) for v in vids]}, 24)


@dataclass(frozen=True)
class Combo:
    """One (scale, T) of the plan, complete when made: its windows per video, the key of
    its inputs, and where it is built and finally lives."""
    scale: float
    T: int
    name: str
    key: str
    wins: dict          # video key -> [(first frame, box)]
    final: Path
    build: Path
    up_to_date: bool
    shuffle: bool


@dataclass
class Detected:
    """The index after detection: usable videos, skipped ones, warnings, timings."""
    idx: object
    shas: dict
    dets: dict
    dstats: dict
    usable: list
    skipped: list
    warnings: list
    seconds: float


def _check_samples(cfg: dict) -> None:
    s_cfg = cfg["samples"]
    if s_cfg["missing_face"] not in ("skip", "keep"):
        raise ValueError(f"samples.missing_face must be skip or keep, got {s_cfg['missing_face']!r}")
    if s_cfg["interp"] not in samples.INTERP:
        raise ValueError(f"samples.interp must be one of {list(samples.INTERP)}")
    scales = [float(x) for x in s_cfg["scales"]]
    Ts = [int(x) for x in s_cfg["seq_lengths"]]
    if not scales or not Ts or min(scales) <= 0 or min(Ts) < 1:
        raise ValueError("samples.scales and samples.seq_lengths must be non-empty, positive")


def _pairs(cfg: dict, only) -> list[tuple[float, int]]:
    """The (scale, T) to prepare: all of samples.scales x samples.seq_lengths, or ``only``."""
    pairs = grammar.prepared_combos(cfg)
    if only is None:
        return pairs
    want = [(float(sc), int(T)) for sc, T in only]
    missing = [grammar.combo_name(sc, T) for sc, T in want if not grammar.is_prepared(cfg, sc, T)]
    if missing:
        s = cfg["samples"]
        raise ValueError(f"requested (scale, T) {', '.join(missing)} not in the config's "
                         f"samples.scales={[float(x) for x in s['scales']]} x "
                         f"samples.seq_lengths={[int(x) for x in s['seq_lengths']]}; add them there")
    return [(a, b) for a, b in pairs
            if any(grammar.same_scale(sc, a) and T == b for sc, T in want)]


def _index_and_detect(cfg: dict, root, out: Path, workers: int, progress: bool) -> Detected:
    """Steps 1-2: index and hash the tree, then one Viola-Jones pass per video content."""
    name = datasets.check_name(cfg["dataset"]["name"])
    idx = datasets.scan(name, root, cfg["dataset"]["protocol"])
    cache_dir = Path(cfg["prep"]["cache_dir"]) if cfg["prep"]["cache_dir"] else out / "detections"
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise util.output_error(e, cache_dir) from e
    shas, skipped = _hashes(idx.videos, cache_dir / "hashes.json")
    dparams = detect.detector_params(cfg["detect"])
    jobs = [(v.key, v.path, shas[str(v.path)]) for v in idx.videos if str(v.path) in shas]
    t0 = time.perf_counter()
    dets, dstats = detect.run_detection(jobs, cache_dir, dparams, workers, progress)
    seconds = time.perf_counter() - t0
    warnings = list(idx.warnings)
    usable = []
    for v in idx.videos:
        d = dets.get(v.key)
        if d is None:
            continue
        if d.note:
            warnings.append(f"{v.rel}: {d.note}")
        if d.status == "ok":
            usable.append(v)
        else:
            skipped.append({"video": v.rel, "reason": d.reason})
    skipped.sort(key=lambda s: s["video"])
    if not usable:
        raise DatasetError(f"nothing usable under {idx.root}: all {len(idx.videos)} videos skipped: "
                           + "; ".join(f"{s['video']}: {s['reason']}" for s in skipped[:5]))
    try:
        datasets.check_splits(name, usable, len(skipped))
    except DatasetError:
        for s in skipped:          # the summary that lists them is never reached
            print(f"data_prep: skipped {s['video']}: {s['reason']}", flush=True)
        raise
    dstats["params"] = dparams
    return Detected(idx, shas, dets, dstats, usable, skipped, warnings, seconds)


def _write_videos(out: Path, det: Detected, vid_id: dict) -> None:
    dets = det.dets
    util.write_json_atomic(out / "videos.json", [
        {"video_id": vid_id[v.key], "video": v.rel, "sha256": det.shas.get(str(v.path)),
         "dataset": v.dataset, "split": v.split, "subject": v.subject, "stem": v.stem, "label": v.label,
         "attack": v.attack, "quality": v.quality,
         "frames": dets[v.key].n_frames if v.key in dets else 0,
         "status": dets[v.key].status if v.key in dets else "skip"} for v in det.idx.videos])


def _folds(cfg: dict, det: Detected) -> tuple[list, str, list]:
    """Subject-wise folds of the usable train videos (paper §4.3); empty folds warned.
    A data set validated on its development set has one "fold", its dev clients
    (method ``dev``; data_prep/datasets.py)."""
    test_subj = sorted({v.subject for v in det.usable if v.split == "test"})
    if datasets.uses_dev(cfg):
        return [tuple(sorted({v.subject for v in det.usable if v.split == "dev"}))], "dev", test_subj
    gfrac = defaultdict(list)
    for v in det.usable:
        if v.split == "train":
            gfrac[v.subject].append(v.label == casia.GENUINE)
    train_subj = {s: float(np.mean(x)) for s, x in gfrac.items()}
    if not train_subj:
        raise DatasetError("no usable train video: cannot make folds")
    method = cfg["folds"]["method"]
    if method == "auto" and cfg["dataset"]["name"] != "casia":
        method = "stratified"      # the public folds are CASIA-FASD's subjects
    folds, method = folds_mod.assign_folds(train_subj, test_subj, method,
                                           int(cfg["folds"]["count"]), int(cfg["seed"]),
                                           use=int(cfg["folds"]["use"]))
    for k, f in enumerate(folds, 1):
        if not f:
            det.warnings.append(f"fold {k} has no subject: fold{k}_val.txt is empty")
    return folds, method, test_subj


def _plan(cfg: dict, pairs, det: Detected, folds, out: Path) -> list[Combo]:
    """Step 3: each (scale, T) with its windows and whether it is already up to date."""
    s_cfg, dets = cfg["samples"], det.dets
    combos = []
    for scale, T in pairs:
        name = grammar.combo_name(scale, T)
        wins = {v.key: samples.windows(dets[v.key].boxes, T, s_cfg["stride"],
                                       s_cfg["missing_face"], s_cfg["max_per_video"])
                for v in det.usable}
        key = _combo_key(cfg, scale, T, det.usable, dets, folds, det.dstats["params"])
        man = out / name / "manifest.json"
        up = man.exists() and json.loads(man.read_text()).get("key") == key
        combos.append(Combo(scale=scale, T=T, name=name, key=key, wins=wins, final=out / name,
                            build=out / ".building" / name, up_to_date=up,
                            shuffle=bool(cfg["hdf5"]["shuffle_train"])))
    return combos


def _build(todo: list[Combo], combos: list[Combo], det: Detected, folds, vid_id: dict,
           cfg: dict, out: Path, workers: int, progress: bool, log) -> int:
    """Steps 3-4 for the combinations not up to date: stage, shard, finalize."""
    if not todo:
        log(f"nothing to do: all {len(combos)} (scale, T) combinations are up to date in {out}")
        return 0
    log(f"building {len(todo)} of {len(combos)} (scale, T) combinations: "
        + " ".join(c.name for c in todo))
    fold_of = {s: k for k, f in enumerate(folds, 1) for s in f}
    dev = datasets.uses_dev(cfg)
    groups = L.DEV_GROUPS if dev else L.group_names(len(folds))

    def group_of(v):
        if v.split == "test" or dev:
            return v.split
        return f"train_fold{fold_of[v.subject]}"

    size, interp = int(cfg["samples"]["size"]), cfg["samples"]["interp"]
    for c in todo:
        _prepare_build_dir(c)
    frames = _stage(todo, det.usable, det.dets, size, interp, workers, progress)
    plans = _write_shards(todo, det.usable, group_of, groups, vid_id, cfg, size, workers, progress)
    for c in todo:
        _finalize(c, plans[c.name], out, groups, len(folds), dev)
        util.kill_hook("combo")
    try:
        (out / ".building").rmdir()
    except OSError:
        pass
    return frames


def test_windows(c: Combo, det: Detected, s_cfg: dict) -> dict:
    """The record of one (scale, T)'s test videos (OUT/<combo>/test_windows.json): per
    test video, the windows it would have with a face in every frame, the windows built
    (``c.wins``) and, where fewer were built, why. Every indexed test video is listed,
    skipped ones too (no window built); scoring counts the difference as failures to
    acquire (scripts/training/runner.py)."""
    reasons = {s["video"]: s["reason"] for s in det.skipped}
    out = []
    for v in (v for v in det.idx.videos if v.split == "test"):
        n_frames = det.dets[v.key].n_frames if v.key in det.dets else 0
        every = np.tile(np.array([0, 0, 1, 1], np.int32), (int(n_frames), 1))
        possible = len(samples.windows(every, c.T, s_cfg["stride"], s_cfg["missing_face"],
                                       s_cfg["max_per_video"]))
        built = len(c.wins.get(v.key, ()))          # only usable videos have windows
        short = built < possible or built == 0
        out.append({"video": v.rel, "dataset": v.dataset, "subject": int(v.subject), "stem": v.stem,
                    "windows_possible": possible, "windows_built": built,
                    "reason": (reasons.get(v.rel) or f"windows without a face in all {c.T} frames")
                    if short else None})
    return {"scale": c.scale, "T": c.T, "videos": out}


def _write_test_windows(combos: list[Combo], det: Detected, cfg: dict) -> None:
    for c in combos:
        util.write_json_atomic(c.final / L.TEST_WINDOWS, test_windows(c, det, cfg["samples"]))


def _report(det: Detected, out: Path, folds, method, test_subj, combos, todo, workers,
            t_build: float, frames: int, t_start: float) -> dict:
    idx, dets, dstats = det.idx, det.dets, det.dstats
    decoded = [dets[v.key] for v in idx.videos if v.key in dets and dets[v.key].n_frames > 0]
    report = {
        "dataset": str(idx.root), "out": str(out),
        "dataset_name": idx.videos[0].dataset if idx.videos else "casia",
        "videos": {"indexed": len(idx.videos), "read": len(decoded), "usable": len(det.usable),
                   "skipped": len(det.skipped)},
        "frames": int(sum(d.n_frames for d in decoded)),
        "frames_without_face": int(sum((~d.has_face).sum() for d in decoded)),
        "skipped": det.skipped,
        "warnings": det.warnings,
        "extra_files": idx.extra,
        "folds": {"method": method, "folds": [list(f) for f in folds], "test_subjects": test_subj},
        "samples": {},
        "built": [c.name for c in todo],
        "up_to_date": [c.name for c in combos if c.up_to_date],
        "detection": {"videos_detected_now": dstats["videos"], "frames_detected_now": dstats["frames"],
                      "seconds": round(det.seconds, 3), "workers": workers,
                      "frames_per_s": round(dstats["frames"] / dstats["seconds"], 2)
                      if dstats["seconds"] else None, "params": dstats["params"]},
        "timing": {"build_seconds": round(t_build, 3), "staged_frames": frames,
                   "total_seconds": round(time.perf_counter() - t_start, 3)},
    }
    for c in combos:
        man = json.loads((c.final / "manifest.json").read_text())
        report["samples"][c.name] = {"scale": c.scale, "T": c.T, "groups": man["groups"]}
    return report


def run(cfg: dict, root, out, progress: bool = True, log=_log, only=None) -> dict:
    """Prepare every (scale, T) of the config, or only the ``only`` ones [(scale, T), ...]
    (each must be in the config); return the report (also written to OUT/report.json)."""
    t_start = time.perf_counter()
    out = Path(out).resolve()
    _check_out(out)
    _check_samples(cfg)
    workers = _workers(cfg)
    pairs = _pairs(cfg, only)
    det = _index_and_detect(cfg, root, out, workers, progress)
    vid_id = {v.key: i for i, v in enumerate(det.idx.videos)}
    _write_videos(out, det, vid_id)
    folds, method, test_subj = _folds(cfg, det)
    combos = _plan(cfg, pairs, det, folds, out)
    todo = [c for c in combos if not c.up_to_date]
    t0 = time.perf_counter()
    frames = _build(todo, combos, det, folds, vid_id, cfg, out, workers, progress, log)
    _write_test_windows(combos, det, cfg)
    report = _report(det, out, folds, method, test_subj, combos, todo, workers,
                     time.perf_counter() - t0, frames, t_start)
    util.write_json_atomic(out / "report.json", report)
    _summary(report, log)
    return report


def _prepare_build_dir(c) -> None:
    b = c.build
    plan = b / "plan.json"
    if b.exists():
        try:
            same = json.loads(plan.read_text()).get("key") == c.key
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(b)
    try:
        (b / "staging").mkdir(parents=True, exist_ok=True)
        if not plan.exists():
            util.write_json_atomic(plan, {"key": c.key})
        for p in list(b.iterdir()) + list((b / "staging").iterdir()):
            if ".tmp" in p.name:          # left by a killed run
                p.unlink()
    except OSError as e:
        raise util.output_error(e, b) from e


def _staging(c, v) -> Path:
    return c.build / "staging" / f"{v.key}.u8"


def _stage_job(args):
    key, path, combos, size, interp = args
    return key, samples.stage_video(path, combos, size, interp)


def _stage(todo, usable, dets, size, interp, workers, progress) -> int:
    jobs = []
    total = 0
    for v in usable:
        need = []
        for c in todo:
            if (c.build / "manifest.json").exists():
                continue       # complete, waiting to be renamed
            w = c.wins[v.key]
            dest = _staging(c, v)
            if w and not dest.exists():
                need.append({"scale": c.scale, "T": c.T, "windows": w, "dest": str(dest)})
        if need:
            last = max(x["windows"][-1][0] + x["T"] for x in need)
            jobs.append((v.key, str(v.path), need, size, interp))
            total += last
    if not jobs:
        return 0
    jobs.sort(key=lambda j: (-sum(len(x["windows"]) * x["T"] for x in j[2]), j[0]))
    bar = util.progress_bar(total, "samples", progress)
    res = util.run_jobs(_stage_job, jobs, workers, bar, "stage", advance=lambda r: r[1])
    done = sum(n for _, n in res)
    return done


def _group_samples(c, usable, group_of, vid_id, seed):
    """Per group: staging sources, picks (source, index) and metadata, in shard order."""
    by_group = defaultdict(list)
    for v in usable:
        for name in ("stem", "attack", "quality"):
            if len(getattr(v, name).encode()) > L.META_STR_BYTES:
                raise ValueError(f"{v.rel}: {name} {getattr(v, name)!r} is longer than the "
                                 f"{L.META_STR_BYTES} bytes of the shards' string columns "
                                 f"(data_prep/hdf5_layout.py); shorten it in data_prep/{v.dataset}.py")
        if c.wins[v.key]:
            by_group[group_of(v)].append(v)
    out = {}
    for g, vids in by_group.items():
        sources, picks, meta = [], [], defaultdict(list)
        for si, v in enumerate(vids):
            w = c.wins[v.key]
            sources.append((str(_staging(c, v)), len(w)))
            for j, (start, _) in enumerate(w):
                picks.append((si, j))
                meta[L.LABEL].append(float(v.label))
                meta["subject"].append(v.subject)
                meta["frame"].append(start)
                meta["video_id"].append(vid_id[v.key])
                meta["stem"].append(v.stem)
                meta["attack"].append(v.attack)
                meta["quality"].append(v.quality)
        picks = np.asarray(picks, np.int64)
        order = np.arange(len(picks))
        if g != "test" and c.shuffle:
            rng = np.random.default_rng([seed, int(round(c.scale * 10)), c.T, L.group_seed(g)])
            order = rng.permutation(len(picks))
        out[g] = (sources, picks[order], {k: np.asarray(x)[order] for k, x in meta.items()})
    return out


@dataclass
class ShardPlan:
    """The shards of one combination per group, and its sample counts per group."""
    shards: dict        # group -> [(file name, n samples)]
    counts: dict        # group -> {"genuine": n, "attack": n}


def _write_shards(todo, usable, group_of, groups, vid_id, cfg, size, workers, progress) -> dict:
    """Cut every group of every combination into shards; return {combo name: ShardPlan}."""
    jobs, plans = [], {}
    for c in todo:
        plan = plans[c.name] = ShardPlan({g: [] for g in groups},
                                         {g: {"genuine": 0, "attack": 0} for g in groups})
        if (c.build / "manifest.json").exists():
            continue
        for g, (sources, picks, meta) in _group_samples(c, usable, group_of, vid_id,
                                                        int(cfg["seed"])).items():
            lab = meta[L.LABEL]
            plan.counts[g] = {"genuine": int((lab == 1).sum()), "attack": int((lab == 0).sum())}
            i = 0
            for si, n in enumerate(shards.split_counts(len(picks), c.T, size,
                                                       float(cfg["hdf5"]["shard_mb"]))):
                dest = c.build / L.shard_name(g, si)
                plan.shards[g].append((dest.name, n))
                if not dest.exists():
                    jobs.append(_shard_job(dest, c.T, size, sources, picks[i:i + n],
                                           {k: x[i:i + n] for k, x in meta.items()},
                                           cfg["dataset"]["name"]))
                i += n
    if jobs:
        bar = util.progress_bar(len(jobs), "shards", progress, unit="shard")
        util.run_jobs(shards.write_shard, jobs, workers, bar, "shard")
    return plans


def _shard_job(dest: Path, T: int, size: int, sources, picks, meta, dataset: str) -> dict:
    """One shard's job: only the staging files its picks read, renumbered."""
    used = sorted(set(picks[:, 0].tolist()))
    remap = {s: k for k, s in enumerate(used)}
    return {"dest": str(dest), "T": T, "size": size, "sources": [sources[s] for s in used],
            "picks": np.array([(remap[s], j) for s, j in picks], np.int64), "meta": meta,
            "dataset": dataset}


def _finalize(c, plan: ShardPlan, out, groups, n_folds, dev: bool = False) -> None:
    b, final = c.build, c.final
    try:
        if not (b / "manifest.json").exists():
            def paths(gs):   # relative to the list's own folder (hdf5_layout.read_list)
                return [name for g in gs for name, _ in plan.shards[g]]
            if dev:          # validated on the development set: one fold (datasets.py)
                lists = {"train": paths(["train"]), "test": paths(["test"]), "dev": paths(["dev"]),
                         "fold1_train": paths(["train"]), "fold1_val": paths(["dev"])}
            else:
                folds_g = [g for g in groups if g != "test"]
                # dev: the data set's development data; without a dev split, its train split
                lists = {"train": paths(folds_g), "test": paths(["test"]), "dev": paths(folds_g)}
                for k in range(1, n_folds + 1):
                    lists[f"fold{k}_train"] = paths([g for g in folds_g if g != f"train_fold{k}"])
                    lists[f"fold{k}_val"] = paths([f"train_fold{k}"])
            for which, ps in lists.items():
                p = L.list_file(out, c.scale, c.T, which)
                util.write_text_atomic(b / p.name, "".join(x + "\n" for x in ps))
            shutil.rmtree(b / "staging", ignore_errors=True)
            (b / "plan.json").unlink(missing_ok=True)
            util.write_json_atomic(b / "manifest.json", {
                "key": c.key, "scale": c.scale, "T": c.T, "layout_version": L.LAYOUT_VERSION,
                "groups": plan.counts, "shards": {g: [list(s) for s in plan.shards[g]] for g in groups},
                "lists": sorted(lists)})
        if final.exists():
            old = b.with_name(b.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(final, old)
            os.rename(b, final)
            shutil.rmtree(old)
        else:
            os.rename(b, final)
    except OSError as e:
        raise util.output_error(e, final) from e


def _summary(r: dict, log) -> None:
    v = r["videos"]
    log(f"videos: {v['indexed']} indexed, {v['read']} read, {v['usable']} usable, {v['skipped']} skipped; "
        f"frames: {r['frames']}, without a face: {r['frames_without_face']}")
    log(f"folds ({r['folds']['method']}): " + " ".join(
        f"{k}:{f}" for k, f in enumerate(r["folds"]["folds"], 1)))
    groups = None
    for name, s in r["samples"].items():
        g = s["groups"]
        if groups is None:
            groups = list(g)
            log("samples (genuine/attack)  " + "  ".join(f"{x:>13}" for x in groups))
        log(f"  {name:<23} " + "  ".join(f"{g[x]['genuine']:>6}/{g[x]['attack']:<6}" for x in groups))
    for s in r["skipped"]:
        log(f"skipped {s['video']}: {s['reason']}")
    for w in r["warnings"]:
        log(f"warning: {w}")
    if r["extra_files"]:
        log(f"ignored {len(r['extra_files'])} extra file(s): " + ", ".join(r["extra_files"][:10]))
    log(f"built {len(r['built'])}, up to date {len(r['up_to_date'])}; "
        f"detection {r['detection']['seconds']} s, build {r['timing']['build_seconds']} s, "
        f"total {r['timing']['total_seconds']} s")
