"""Submit the config's Table 2 sweep to Slurm as a job array: ``make sweep-slurm``.

    python -m scripts.cluster --config C --dataset D --run RUN [--partition P] [--gres gpu:1]
        [--time 24:00:00] [--mem 8G] [--cpus 4] [--array-limit N] [--sbatch-arg=--account=X ...]
        [--dry-run] [--force]

Thin command line; the jobs, their scripts and the defaults are in scripts/slurm/driver.py.
Exit codes (the table in configs/errors.py): 0 submitted (or dry run), 2 bad input or
sbatch failed, 8 a GPU asked for (--gres gpu:...) with the CPU build of Caffe.
"""
from __future__ import annotations

import argparse

from configs import errors
from scripts.slurm import driver as slurm


@errors.cli
def main(argv=None) -> int:
    d = slurm.SlurmOptions()
    ap = argparse.ArgumentParser(prog="python -m scripts.cluster", description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/paper.yaml", help="a configs/*.yaml (default: %(default)s)")
    ap.add_argument("--dataset", default="data/synth", help="a CASIA-FASD-layout root (default: %(default)s)")
    ap.add_argument("--run", required=True, help="run folder, on a file system every node sees")
    ap.add_argument("--partition", default=d.partition, help="default: the cluster's default partition")
    ap.add_argument("--gres", default=d.gres, help="e.g. gpu:1 (tasks then run with GPU=0); default: none")
    ap.add_argument("--time", default=d.time, help="time limit of each job (default: %(default)s)")
    ap.add_argument("--mem", default=d.mem, help="memory of each job (default: %(default)s)")
    ap.add_argument("--cpus", type=int, default=d.cpus, help="CPUs per job (default: %(default)s)")
    ap.add_argument("--array-limit", type=int, default=d.array_limit,
                    help="at most this many tasks at once (default: no cap)")
    ap.add_argument("--job-name", default=d.job_name, help="job name prefix (default: %(default)s)")
    ap.add_argument("--sbatch-arg", action="append", default=[], metavar="OPTION",
                    help="one more sbatch option for every job, e.g. --sbatch-arg=--account=lab (repeatable)")
    ap.add_argument("--dry-run", action="store_true", help="write the scripts, print the sbatch commands")
    ap.add_argument("--force", action="store_true",
                    help="submit even while jobs of an earlier submission of this RUN are queued")
    a = ap.parse_args(argv)
    opts = slurm.SlurmOptions(partition=a.partition, gres=a.gres, time=a.time, mem=a.mem, cpus=a.cpus,
                              array_limit=a.array_limit, job_name=a.job_name, extra=a.sbatch_arg)
    plan = slurm.make_plan(a.config, a.dataset, a.run)
    slurm.submit(plan, opts, dry_run=a.dry_run, force=a.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
