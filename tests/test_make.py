"""The Makefile itself: `make help` from the `##` comments, and dataset paths with spaces
and non-ASCII characters reaching the Python commands as one argument each."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
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


# ------------------------------------------------------------------ the generated plan
def _plan(config: str, run: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "scripts.experiments", "makefile", "--config", config,
                          "--run", str(run), "--out", "-"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _rules(plan: str) -> dict:
    """target -> (prerequisites, recipe lines) of a generated plan."""
    rules, cur = {}, None
    for line in plan.splitlines():
        if line.startswith("\t") and cur:
            rules[cur][1].append(line.strip())
        elif ":" in line and not line.startswith("#") and ":=" not in line:
            target, _, deps = line.partition(":")
            cur = target.strip()
            rules[cur] = (deps.replace("|", " ").split(), [])
    return rules


def test_the_plan_has_a_rule_per_fold_full_run_and_prepared_combination(tmp_path):
    run = tmp_path / "r"
    rules = _rules(_plan(TINY, run))
    exps = run / "experiments"
    for name in ("cnn_T1_s1.8", "peephole_T3_s1.8", "lstm_T3_s1.8"):
        full = str(exps / name / "full" / "DONE")
        assert rules[full][0] == [str(exps / name / f"fold{k}" / "DONE") for k in (1, 2)]
        assert rules[full][1] == [f"$(PY) -m scripts.train --config {TINY} --run {run} "
                                  f"--experiment {name}/full $(GPU_ARG)"]
        T = name.split("_")[1]
        assert rules[str(exps / name / "fold2" / "DONE")][0] == [str(run / "prep" / f"s1.8_{T}" / "manifest.json")]
    assert rules[str(run / "prep" / "s1.8_T3" / "manifest.json")][1] == ["$(PREP_ONE) --only 1.8:3"]


def test_any_fold_count_gets_its_rules(tmp_path):
    """No hidden cap: folds.count 12, folds.use 11 gives fold1..fold11 rules."""
    conf = tmp_path / "twelve.yaml"
    conf.write_text(f"_base_: {ROOT / TINY}\nfolds:\n  count: 12\n  use: 11\n")
    run = tmp_path / "r"
    rules = _rules(_plan(str(conf), run))
    full = rules[str(run / "experiments" / "cnn_T1_s1.8" / "full" / "DONE")]
    assert [Path(p).parent.name for p in full[0]] == [f"fold{k}" for k in range(1, 12)]


def test_a_bad_config_stops_the_plan_with_one_error(tmp_path):
    conf = tmp_path / "bad.yaml"
    conf.write_text(f"_base_: {ROOT / TINY}\nexperiments:\n  table1: [cnn_T3_s1.8]\n")
    out = subprocess.run([sys.executable, "-m", "scripts.experiments", "makefile", "--config", str(conf),
                          "--run", str(tmp_path / "r")], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("error:") == 1 and "T must be 1" in out.stderr
    assert not (tmp_path / "r" / "experiments.mk").exists()


def test_the_makefile_parses_no_names_and_loops_over_no_folds():
    text = (ROOT / "Makefile").read_text()
    for gone in ("$(eval", ".SECONDEXPANSION", "combo_of", "combo_arg", "subst _,", "scripts.experiments combos"):
        assert gone not in text, gone


@pytest.mark.caffe                  # make runs `make setup` first
def test_make_dry_run_shows_the_plan_in_order_and_remakes_it_when_the_config_changes(tmp_path):
    """`make -n` of a table target: data preparation of the two (scale, T) first, then
    every fold before its full run; RUN/experiments.mk is written, and rewritten when
    another config is used with the same RUN."""
    run = tmp_path / "r"
    out = make("-n", "_table1", f"CONFIG={TINY}", f"RUN={run}")
    assert out.returncode == 0, out.stderr
    plan = run / "experiments.mk"
    assert plan.is_file() and "PLAN_CONFIG := tests/configs/tiny.yaml" in plan.read_text()
    trains = [shlex.split(l)[shlex.split(l).index("--experiment") + 1]
              for l in out.stdout.splitlines() if " -m scripts.train " in l]
    assert sorted(trains) == sorted(f"{n}/{s}" for n in ("cnn_T1_s1.8", "peephole_T3_s1.8")
                                    for s in ("fold1", "fold2", "full"))
    for n in ("cnn_T1_s1.8", "peephole_T3_s1.8"):
        assert trains.index(f"{n}/full") > max(trains.index(f"{n}/fold1"), trains.index(f"{n}/fold2"))
    assert sum(" -m data_prep " in l and "--only" in l for l in out.stdout.splitlines()) == 2
    other = tmp_path / "other.yaml"
    other.write_text(f"_base_: {ROOT / TINY}\nexperiments:\n  table1: [cnn_T1_s1.8]\n")
    out = make("-n", "_table1", f"CONFIG={other}", f"RUN={run}")
    assert out.returncode == 0, out.stderr
    assert f"PLAN_CONFIG := {other}" in plan.read_text()
    assert "peephole_T3_s1.8/full" not in out.stdout
