"""The Makefile itself: `make help` from the `##` comments, and dataset paths with spaces
and non-ASCII characters reaching the Python commands as one argument each."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = "tests/configs/tiny.yaml"
ODD = "casia hold-out données"       # a space, a hyphen and a non-ASCII letter


def make(*args, timeout=600):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def _public_targets() -> list[str]:
    text = (ROOT / "Makefile").read_text()
    phony = " ".join(re.findall(r"(?m)^\.PHONY:((?:.*\\\n)*.*)$", text)).replace("\\", " ")
    return [t for t in phony.split() if not t.startswith("_") and t != "FORCE"]


def test_help_lists_every_public_target_with_its_comment():
    out = make("help")
    assert out.returncode == 0, out.stderr
    listed = dict(re.findall(r"(?m)^  make (\S+) +(\S.*)$", out.stdout))
    targets = _public_targets()
    assert {"demo", "test", "test-fast", "reproduce-table1", "tables"} <= set(targets)
    assert set(targets) == set(listed), "a public target without a `## ` comment, or a stale one"
    assert "x 5 scales" in listed["scale-sweep"]
    for var in ("CONFIG", "DATASET", "RUN", "GPU"):
        assert re.search(rf"(?m)^  {var} +\S", out.stdout), var


def _command(stdout: str, module: str) -> list[str]:
    lines = [l for l in stdout.splitlines() if f" -m {module} " in l]
    assert lines, stdout
    return shlex.split(lines[0])


def test_odd_dataset_path_is_one_argument_and_run_has_no_space(tmp_path):
    """Dry run: the command make would run, split as the shell splits it."""
    dataset = tmp_path / ODD
    (dataset / "train_release").mkdir(parents=True)
    out = make("-n", "prep", f"DATASET={dataset}", f"CONFIG={TINY}")
    assert out.returncode == 0, out.stderr
    argv = _command(out.stdout, "data_prep")
    assert argv[argv.index("--dataset") + 1] == str(dataset)
    assert argv[argv.index("--out") + 1] == "runs/casia_hold-out_données-tiny/prep"
    # the sweep on Slurm gets the same path
    out = make("-n", "sweep-slurm", f"DATASET={dataset}", f"CONFIG={TINY}", "DRY_RUN=1")
    argv = _command(out.stdout, "scripts.cluster")
    assert argv[argv.index("--dataset") + 1] == str(dataset)
    assert argv[argv.index("--run") + 1] == "runs/casia_hold-out_données-tiny"


def test_run_with_a_space_is_refused_by_name():
    out = make("-n", "prep", "RUN=runs/my run")
    assert out.returncode != 0
    assert 'RUN="runs/my run" holds a space' in out.stderr and "RUN=<a folder without spaces>" in out.stderr


@pytest.mark.caffe                  # make runs `make setup` first
def test_make_prep_passes_an_odd_path_to_data_prep(tmp_path):
    """A real `make prep` on an odd path whose only video is unreadable: data_prep gets the
    whole path (its error names it), and exits 2 with one message, no traceback."""
    dataset = tmp_path / ODD
    (dataset / "train_release" / "1").mkdir(parents=True)
    (dataset / "test_release" / "1").mkdir(parents=True)
    (dataset / "train_release" / "1" / "1.avi").write_bytes(b"\0" * 1000)
    run = tmp_path / "rün"
    out = make("prep", f"DATASET={dataset}", f"CONFIG={TINY}", f"RUN={run}")
    assert out.returncode != 0
    assert f"nothing usable under {dataset}" in out.stderr, out.stderr[-2000:]
    assert "unrecognized arguments" not in out.stderr and "Traceback" not in out.stderr
    assert (run / "prep" / "config.yaml").is_file()


@pytest.mark.slow
@pytest.mark.caffe
def test_make_prep_on_an_odd_path_prepares_it(synth_mini, tmp_path):
    """`make prep` on a copy of the mini set (links) under an odd folder name, default RUN."""
    dataset = tmp_path / ODD
    for split in ("train_release", "test_release"):
        for sub in (Path(synth_mini) / split).iterdir():
            (dataset / split / sub.name).mkdir(parents=True)
            for v in sub.glob("*.avi"):
                (dataset / split / sub.name / v.name).symlink_to(v)
    config = tmp_path / f"{tmp_path.name}.yaml"            # a unique config name: a unique RUN
    config.write_text(f"_base_: {ROOT / TINY}\n")
    run = ROOT / "runs" / f"casia_hold-out_données-{tmp_path.name}"
    try:
        out = make("prep", f"DATASET={dataset}", f"CONFIG={config}")
        assert out.returncode == 0, out.stderr[-3000:]
        report = json.loads((run / "prep" / "report.json").read_text())
        assert report["dataset"] == str(dataset)
        assert sorted(report["built"]) == ["s1.8_T1", "s1.8_T3"]
    finally:
        subprocess.run(["rm", "-rf", str(run)])
