"""The Table 2 sweep as a Slurm job array (``make sweep-slurm``, ``python -m scripts.cluster``).

Three jobs, written as batch scripts into ``RUN/slurm/`` and submitted with ``sbatch``:

1. ``prep.sh``   ``make _prep_for OF=sweep``: data preparation of the (scale, T) the sweep
   trains, once (left out when every one of them has its ``manifest.json``);
2. ``array.sh``  a job array, one task per experiment of the config's sweep that has no
   ``full/DONE`` yet; task i runs ``make RUN/experiments/<name>/full/DONE``, which trains
   the experiment's folds and then its full-train-set model through the same make rules
   as a single-machine run. ``--dependency=afterok:<prep>``;
3. ``tables.sh`` ``--dependency=afterany:<array>``: names every experiment of the sweep
   without ``full/DONE`` (and its log) and fails, or, when all are done, runs
   ``make scale-sweep``, which then only builds the tables.

Jobs that depend on a failed one are cancelled (``--kill-on-invalid-dep=yes``), so a
failed prep ends the array at once and the tables job reports it. Logs: Slurm's own
output of each job in ``RUN/slurm/logs/{prep,task,tables}-<job>.out``; the output of
each experiment's make in ``RUN/slurm/logs/<experiment>.log`` (appended on re-submission).

Re-submitting the same command carries on: finished experiments are left out of the
array (and make would skip them anyway), and a submission is refused while a job array
of an earlier submission of this RUN is still queued or running (``RUN/slurm/jobs.json``).

Paths in the scripts are absolute: the checkout (with its ``.venv`` and the Caffe build
it points at), DATASET and RUN must be on a file system that every node sees.

Defaults (each a make variable and an option, see ``SlurmOptions``): no partition (the
cluster's default), no GRES, ``--time 24:00:00``, ``--mem 8G``, ``--cpus-per-task 4``.
A task trains up to five folds and the full model one after the other: at the paper's
settings that is about 6 x 20,000 iterations, hours on a GPU but days on a CPU, so give
CPU-only runs a longer time. With a GRES naming a GPU (``gpu:1``, ``gpu:a100:1``) each
task runs make with ``GPU=0``: Slurm sets CUDA_VISIBLE_DEVICES to the allocated GPU,
which CUDA then numbers 0; submitting so is refused while this checkout's Caffe is the
CPU build (``make setup CAFFE_GPU=1`` first). OpenBLAS and OpenMP get
``SLURM_CPUS_PER_TASK`` threads. The default Caffe build uses ``-march=native`` of the
machine that built it: on a cluster whose nodes have other CPUs, build it portable
(``make setup CAFFE_CXXFLAGS=""``) or on a node of the partition.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from configs import grammar
from configs.errors import GPUUnavailable, UserError
from configs.files import write_json_atomic, write_text_atomic

ROOT = Path(__file__).resolve().parents[2]
SYNTH = ROOT / "data" / "synth"


class SlurmError(UserError, RuntimeError):
    """A problem the user can fix; the message says what and how."""


@dataclass
class SlurmOptions:
    partition: str = ""          # --partition; empty: the cluster's default partition
    gres: str = ""               # --gres, e.g. gpu:1; naming a GPU makes tasks run with GPU=0
    time: str = "24:00:00"       # --time per job (prep, each task, tables)
    mem: str = "8G"              # --mem per job
    cpus: int = 4                # --cpus-per-task of prep and tasks (the tables job takes 1);
                                 # also the BLAS threads of each task
    array_limit: int = 0         # --array=0-N%limit: at most this many tasks at once; 0: no cap
    job_name: str = "lstmcnn"    # prefix of the three job names
    extra: list = field(default_factory=list)  # more sbatch options, e.g. --account=X --qos=Y

    def check(self) -> None:
        if int(self.cpus) < 1:
            raise SlurmError(f"cpus per task must be at least 1, got {self.cpus} (SLURM_CPUS / --cpus)")
        if int(self.array_limit) < 0:
            raise SlurmError(f"array limit must be >= 0, got {self.array_limit} (SLURM_ARRAY_LIMIT)")
        if self.mem and not re.fullmatch(r"\d+[KMGTkmgt]?", self.mem):
            raise SlurmError(f"memory {self.mem!r} is not a Slurm size such as 8G or 16000M (SLURM_MEM / --mem)")
        if self.time and not re.fullmatch(r"(\d+-)?\d+(:\d+){0,2}|UNLIMITED|INFINITE", self.time.upper()):
            raise SlurmError(f"time {self.time!r} is not a Slurm time such as 24:00:00 or 2-00:00:00 "
                             "(SLURM_TIME / --time)")

    @property
    def uses_gpu(self) -> bool:
        return bool(re.match(r"(.*,)?gpu(:|$)", self.gres))


@dataclass
class Plan:
    root: Path
    config: Path
    dataset: Path
    run: Path
    sweep: list          # every experiment name of the config's sweep
    todo: list           # those without full/DONE, in sweep order
    prep_needed: bool

    @property
    def slurm_dir(self) -> Path:
        return grammar.RunLayout(self.run).slurm

    @property
    def logs(self) -> Path:
        return self.slurm_dir / "logs"

    def done_file(self, name: str) -> Path:
        return grammar.RunLayout(self.run).done(grammar.parse(f"{name}/full"))


def make_plan(config: str | Path, dataset: str | Path, run: str | Path, root: Path = ROOT) -> Plan:
    from configs import load_experiment_config
    config, dataset, run = (Path(p).resolve() for p in (config, dataset, run))
    if not config.is_file():
        raise SlurmError(f"config not found: {config}")
    if dataset != SYNTH and not (dataset / "train_release").is_dir():
        raise SlurmError(f"DATASET={dataset} has no train_release/: point DATASET at a CASIA-FASD copy")
    cfg = load_experiment_config(str(config))
    sweep = list(dict.fromkeys(grammar.sweep_names(cfg)))
    if not sweep:
        raise SlurmError(f"{config}: experiments.sweep_* gives no experiment to run")
    plan = Plan(root, config, dataset, run, sweep, [], True)
    plan.todo = [n for n in sweep if not plan.done_file(n).is_file()]
    plan.prep_needed = not _prep_up_to_date(plan, grammar.combos(cfg, "sweep"))
    return plan


def _make_vars(plan: Plan) -> list:
    return [f"CONFIG={plan.config}", f"DATASET={plan.dataset}", f"RUN={plan.run}"]


def _prep_up_to_date(plan: Plan, combos: list) -> bool:
    """Every (scale, T) the sweep trains is prepared (its manifest.json, written last)."""
    from data_prep import hdf5_layout as L
    return all((L.combo_dir(grammar.RunLayout(plan.run).prep, s, T) / "manifest.json").is_file() for s, T in combos)


# ------------------------------------------------------------------ batch scripts
_HEAD = """#!/bin/bash
# Written by `python -m scripts.cluster` (scripts/slurm/driver.py); re-run that to rewrite it.
set -euo pipefail
cd {root}
export OPENBLAS_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-1}} OMP_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-1}}
"""


def _q(x) -> str:
    return shlex.quote(str(x))


def render_scripts(plan: Plan, opts: SlurmOptions) -> dict:
    """name -> text of prep.sh, array.sh and tables.sh."""
    head = _HEAD.format(root=_q(plan.root))
    mvars = " ".join(_q(v) for v in _make_vars(plan))
    gpu = " GPU=0" if opts.uses_gpu else ""
    prep = head + f"make --no-print-directory {mvars} _prep_for OF=sweep\n"
    array = head + (
        f"EXPERIMENTS=({' '.join(plan.todo)})\n"
        "name=${EXPERIMENTS[$SLURM_ARRAY_TASK_ID]}\n"
        f"log={_q(plan.logs)}/$name.log\n"
        'echo "task $SLURM_ARRAY_TASK_ID: $name on $(hostname), log $log"\n'
        'exec >>"$log" 2>&1\n'
        'echo "=== $(date -u +%FT%TZ) job ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} on $(hostname)'
        ' CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-}"\n'
        f"make --no-print-directory {mvars}{gpu} {_q(plan.run)}/experiments/$name/full/DONE\n")
    tables = head + (
        f"SWEEP=({' '.join(plan.sweep)})\n"
        f"RUN={_q(plan.run)}\n"
        "failed=()\n"
        'for name in "${SWEEP[@]}"; do [ -f "$RUN/experiments/$name/full/DONE" ] || failed+=("$name"); done\n'
        'if [ ${#failed[@]} -gt 0 ]; then\n'
        '  tmp=$(mktemp "$RUN/slurm/.failed.XXXXXX")\n'
        '  printf "%s\\n" "${failed[@]}" > "$tmp" && mv "$tmp" "$RUN/slurm/failed.txt"\n'
        '  echo "error: ${#failed[@]} of ${#SWEEP[@]} experiments did not finish; no tables written." >&2\n'
        '  [ -f "$RUN/prep/report.json" ] || echo "  data preparation failed: see $RUN/slurm/logs/prep-*.out" >&2\n'
        '  for name in "${failed[@]}"; do\n'
        '    echo "FAILED $name   log: $RUN/slurm/logs/$name.log" >&2\n'
        '    if [ -f "$RUN/slurm/logs/$name.log" ]; then tail -n 5 "$RUN/slurm/logs/$name.log" | sed "s/^/    /" >&2; fi\n'
        '  done\n'
        '  echo "Fix the cause and re-submit the same command: finished experiments are skipped." >&2\n'
        '  exit 1\n'
        'fi\n'
        'rm -f "$RUN/slurm/failed.txt"\n'
        f"make --no-print-directory {mvars} scale-sweep\n"
        'echo "tables: $RUN/tables"\n')
    return {"prep.sh": prep, "array.sh": array, "tables.sh": tables}


def write_scripts(plan: Plan, opts: SlurmOptions) -> dict:
    """Write the scripts atomically into RUN/slurm/; name -> path."""
    plan.logs.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, text in render_scripts(plan, opts).items():
        path = plan.slurm_dir / name
        write_text_atomic(path, text, mode=0o755)
        out[name] = path
    return out


# ------------------------------------------------------------------ sbatch
PREP_ID, ARRAY_ID = "$PREP_JOB", "$ARRAY_JOB"   # placeholders in the printed commands


def sbatch_commands(plan: Plan, opts: SlurmOptions) -> list:
    """[(key, argv)] in submission order; argv may hold PREP_ID / ARRAY_ID placeholders."""
    common = ["sbatch", "--parsable", f"--chdir={plan.root}"]
    if opts.partition:
        common.append(f"--partition={opts.partition}")
    if opts.time:
        common.append(f"--time={opts.time}")
    if opts.mem:
        common.append(f"--mem={opts.mem}")
    cpus = [f"--cpus-per-task={int(opts.cpus)}"]
    common += opts.extra
    logs, sd = plan.logs, plan.slurm_dir
    cmds = []
    if plan.prep_needed:
        cmds.append(("prep", common + cpus + [f"--job-name={opts.job_name}-prep",
                                       f"--output={logs}/prep-%j.out", str(sd / "prep.sh")]))
    after_prep = ([f"--dependency=afterok:{PREP_ID}", "--kill-on-invalid-dep=yes"]
                  if plan.prep_needed else [])
    if plan.todo:
        arr = f"0-{len(plan.todo) - 1}" + (f"%{int(opts.array_limit)}" if opts.array_limit else "")
        cmds.append(("array", common + cpus + [f"--job-name={opts.job_name}-sweep", f"--array={arr}",
                                        *([f"--gres={opts.gres}"] if opts.gres else []), *after_prep,
                                        f"--output={logs}/task-%A_%a.out", str(sd / "array.sh")]))
        after = [f"--dependency=afterany:{ARRAY_ID}"]
    else:
        after = after_prep
    # the tables job only reads score files: one CPU
    cmds.append(("tables", common + ["--cpus-per-task=1", f"--job-name={opts.job_name}-tables", *after,
                                     f"--output={logs}/tables-%j.out", str(sd / "tables.sh")]))
    return cmds


def shell_lines(cmds: list) -> list:
    """The commands as a shell snippet that submits them in order."""
    var = {"prep": "PREP_JOB", "array": "ARRAY_JOB"}
    out = []
    for key, argv in cmds:
        line = " ".join(a if "$" in a else _q(a) for a in argv)
        line = line.replace("$PREP_JOB", "${PREP_JOB%%;*}").replace("$ARRAY_JOB", "${ARRAY_JOB%%;*}")
        out.append(f"{var[key]}=$({line})" if key in var else line)
    return out


def _active_jobs(plan: Plan) -> list:
    """Job ids of an earlier submission of this RUN that squeue still lists."""
    path = plan.slurm_dir / "jobs.json"
    if not path.is_file():
        return []
    try:
        ids = {str(v) for v in json.loads(path.read_text()).get("jobs", {}).values()}
    except (ValueError, AttributeError):
        return []
    q = subprocess.run(["squeue", "-h", "-o", "%F"], capture_output=True, text=True)
    if q.returncode != 0:
        raise SlurmError(f"squeue failed: {q.stderr.strip()}")
    return sorted(ids & set(q.stdout.split()))


def caffe_variant(root: Path = ROOT) -> str | None:
    """``cpu`` or ``cuda``: the variant in the name of the Caffe build that ``.venv/bin/caffe``
    points at (scripts/build/setup.sh names it caffe-<version>-<variant>-<hash>); None if unknown."""
    m = re.search(r"/caffe-[^/]+-(cpu|cuda)-[0-9a-f]+/", os.path.realpath(root / ".venv" / "bin" / "caffe"))
    return m.group(1) if m else None


def submit(plan: Plan, opts: SlurmOptions, dry_run: bool = False, force: bool = False,
           log=print) -> dict:
    """Write the scripts and submit them (or print the commands). Returns {key: job id}."""
    opts.check()
    if opts.uses_gpu and caffe_variant(plan.root) == "cpu" and not dry_run:
        raise GPUUnavailable(f"--gres {opts.gres} asks for a GPU, but this checkout's Caffe is the CPU "
                             f"build ({os.path.realpath(plan.root / '.venv' / 'bin' / 'caffe')}): every "
                             "task would fail. Run `make setup CAFFE_GPU=1` first, or submit without "
                             "SLURM_GRES")
    done = [n for n in plan.sweep if n not in plan.todo]
    if done:
        log(f"skipping {len(done)} finished experiment(s): {' '.join(done)}")
    log(f"{len(plan.todo)} experiment(s) to run: {' '.join(plan.todo) or '(none)'}")
    if not plan.prep_needed:
        log(f"data preparation is up to date (every (scale, T) of the sweep in {plan.run / 'prep'}): no prep job")
    write_scripts(plan, opts)
    cmds = sbatch_commands(plan, opts)
    if dry_run:
        log(f"dry run: scripts in {plan.slurm_dir}; these commands would submit them:")
        for line in shell_lines(cmds):
            log("  " + line)
        return {}
    if shutil.which("sbatch") is None:
        raise SlurmError("sbatch not found: run this on a Slurm login node (or with DRY_RUN=1 / "
                         "--dry-run to only write the scripts)")
    if not force:
        active = _active_jobs(plan)
        if active:
            raise SlurmError(f"jobs {', '.join(active)} of an earlier submission of {plan.run} are still "
                             "queued or running; wait for them (squeue) or cancel them (scancel) first, "
                             "or pass --force")
    ids = {}
    for key, argv in cmds:
        argv = [a.replace(PREP_ID, ids.get("prep", "")).replace(ARRAY_ID, ids.get("array", "")) for a in argv]
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            got = ", ".join(f"{k} {v}" for k, v in ids.items()) or "none"
            raise SlurmError(f"sbatch of the {key} job failed ({r.stderr.strip() or r.returncode}); "
                             f"jobs already submitted: {got}. Command: {' '.join(map(_q, argv))}")
        ids[key] = r.stdout.strip().split(";")[0]
        log(f"submitted {key}: job {ids[key]}")
    write_json_atomic(plan.slurm_dir / "jobs.json", {"jobs": ids, "experiments": plan.todo})
    log(f"logs: {plan.logs}; watch with: squeue -j {','.join(ids.values())}")
    return ids
