# LSTM-CNN face anti-spoofing (Xu, Li, Deng 2015), reproduced in BVLC Caffe.
# `make help` lists the targets and variables from their `##` comments below.
# Every target runs `make setup` first; setup is idempotent and takes seconds once done.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
CAFFE   := $(VENV)/bin/caffe
CONFIG  ?= configs/paper.yaml## a configs/*.yaml (default configs/paper.yaml; default.yaml documents every key)
DATASET ?= data/synth## a CASIA-FASD-layout root (default data/synth, the synthetic set)
CONFIG_NAME := $(basename $(notdir $(CONFIG)))
# Paths reach the shell through $(call q,...): one single-quoted word whatever they hold.
space := $(subst ,, )
q = '$(subst ','\'',$(1))'
# The default RUN is named after the dataset folder, spaces made underscores: make cannot
# name files with spaces, and every experiment under RUN is a make target.
RUN     ?= runs/$(notdir $(patsubst %/,%,$(subst $(space),_,$(DATASET))))-$(CONFIG_NAME)## the output folder (no spaces); default runs/<dataset folder>-<config name>
ifneq ($(words $(RUN)),1)
$(error RUN="$(RUN)" holds a space, and make cannot name its experiment targets with spaces: pass RUN=<a folder without spaces>)
endif
GPU     ?=## a GPU id: Caffe runs on that GPU (needs `make setup CAFFE_GPU=1`)
GPU_ARG := $(if $(GPU),--gpu $(GPU),)
PREP    := $(RUN)/prep
EXPS    := $(RUN)/experiments

# The run's plan, RUN/experiments.mk (scripts/experiments.py): its experiment lists and a
# rule for every fold run, full run and prepared (scale, T), generated from the config.
# Read only by the goals that train (the sub-makes every table target starts after
# setup, an experiment's DONE file or a prepared (scale, T) made directly), and remade
# when the config changes; other goals (prep, make -n prep) never write it.
PLAN := $(RUN)/experiments.mk
PLAN_GOALS := _prep_for _table1 _sweep _demo _cross
ifneq ($(wildcard $(PY)),)
ifneq ($(filter $(PLAN_GOALS) $(RUN)/experiments/% $(RUN)/prep/%/manifest.json,$(MAKECMDGOALS)),)
include $(PLAN)
endif
endif
# The plan of another config in the same RUN is replaced, whatever the files' dates.
$(PLAN): $(PLAN_SOURCES) configs/grammar.py scripts/experiments.py $(if $(filter-out $(CONFIG),$(PLAN_CONFIG)),FORCE)
	$(PY) -m scripts.experiments makefile --config $(call q,$(CONFIG)) --run $(call q,$(RUN))

.PHONY: help setup test test-fast demo demo-data prep nets tables reproduce-table1 scale-sweep sweep-slurm \
        bench clean-run gpu-check paper-check _table1 _sweep _demo _prep_for predict onnx caffe-reference \
        paper-check-ablations test-portable gpu-bundle cpu-bundle validate probe cross-dataset mcio _cross

# `make help`: every `target: ... ## text` and `VAR ?= value## text` line of this file.
help: ## this list
	@echo "LSTM-CNN face anti-spoofing (Xu, Li, Deng 2015) in BVLC Caffe. Targets:"
	@awk -F '## ' '/^[a-z][a-z0-9-]*:[^=]*## / {split($$1, t, ":"); printf "  make %-18s %s\n", t[1], $$2}' $(MAKEFILE_LIST)
	@echo "Variables (make TARGET VAR=value):"
	@awk -F '## ' '/^[A-Z_]+ *[?]=.*## / {split($$1, v, "[?]="); gsub(/ /, "", v[1]); printf "  %-18s %s\n", v[1], $$2}' $(MAKEFILE_LIST)
	@echo "  SLURM_*, DRY_RUN   sweep-slurm's job settings (see the comment above sweep-slurm)"

# ------------------------------------------------------------------ set-up
# The Caffe variant: CAFFE_GPU=1 the CUDA build, CAFFE_GPU=0 the CPU build; unset, the
# venv keeps the variant it has (the CPU build on a fresh checkout), so `make test` after
# `make setup CAFFE_GPU=1` never switches back, and nothing but CAFFE_GPU=1 builds CUDA.
CAFFE_GPU ?=## setup: 1 the CUDA build of Caffe, 0 the CPU build (unset: the venv keeps its build)
VENV_VARIANT := $(if $(findstring -cuda-,$(shell readlink $(VENV)/caffe-prefix 2>/dev/null)),cuda,cpu)
WANT_VARIANT := $(if $(CAFFE_GPU),$(if $(filter 1,$(CAFFE_GPU)),cuda,cpu),$(VENV_VARIANT))
setup: $(VENV)/.setup-stamp ## build Caffe (cached), the venv, and check them
# GPU=N: stop here, before any data or training, when Caffe cannot use that GPU
# (CPU build, no GPU, no driver); gpu-check reports that itself and runs the CPU parts.
ifneq ($(GPU),)
ifeq ($(filter gpu-check,$(MAKECMDGOALS)),)
	@$(PY) -m scripts.training.gpu --require $(GPU) || { rc=$$?; echo "GPU=$(GPU): leave GPU= out to run on the CPU" >&2; exit $$rc; }
endif
endif
# Re-run when the pins or the script change, the cached Caffe build is gone, or the
# variant asked for is not the one the venv uses.
$(VENV)/.setup-stamp: requirements.txt scripts/build/setup.sh $(if $(wildcard $(CAFFE)),,FORCE) \
                      $(if $(filter-out $(VENV_VARIANT),$(WANT_VARIANT)),FORCE)
	CAFFE_GPU=$(if $(filter cuda,$(WANT_VARIANT)),1,0) bash scripts/build/setup.sh
	@touch $@
.PHONY: FORCE
FORCE:

# The unpatched CPU build of Caffe (CAFFE_CPU_PATCHES=0, cached beside the patched one):
# tests/test_caffe_patches.py and `make bench` compare the speed patches against it.
caffe-reference: ## build (once, cached) the unpatched CPU Caffe that the speed patches are checked against
	@CAFFE_CPU_PATCHES=0 CAFFE_GPU=0 SETUP_BUILD_ONLY=1 bash scripts/build/setup.sh | tail -1

TESTS ?= tests## test, test-fast: the test files or folders to run (default: all of tests/)
test: setup caffe-reference ## the whole test suite (about 8 minutes on 2 cores)
	$(PY) -m pytest -q $(TESTS)
# The tests not marked slow: no training, no live daemons, no data set generation.
test-fast: setup ## the tests that train nothing (under a minute)
	$(PY) -m pytest -q -m "not slow" $(TESTS)
# The suite as other CPUs run it (docs/tests.md): OpenBLAS's kernels for this CPU and its
# AVX2 (Haswell) kernels, each at 1 and at 2 BLAS threads; four runs of make test's suite.
PORTABLE_CORES ?= default Haswell## test-portable: OpenBLAS kernel families to run under (default = this CPU's)
test-portable: setup caffe-reference ## make test's suite under each OpenBLAS kernel family at 1 and 2 BLAS threads
	@rc=0; for core in $(PORTABLE_CORES); do for t in 1 2; do \
	  set -- OPENBLAS_NUM_THREADS=$$t OMP_NUM_THREADS=$$t; [ "$$core" = default ] || set -- "$$@" OPENBLAS_CORETYPE=$$core; \
	  echo "=== $$*"; env "$$@" $(PY) -m pytest -q tests || rc=1; \
	done; done; exit $$rc

# ------------------------------------------------------------------ data
# The synthetic CASIA-FASD-layout set (data_prep/synth.py) and its contact sheet.
SYNTH := data/synth
demo-data: setup ## write the synthetic CASIA-FASD-layout set to data/synth
	@$(MAKE) --no-print-directory $(SYNTH)/synth_manifest.json
# The manifest is written last, so its presence means a complete set.
$(SYNTH)/synth_manifest.json:
	$(PY) -m data_prep.synth --out $(SYNTH) --preset full --config $(CONFIG) \
	  --contact-sheet $(SYNTH)/contact_sheet.png

# One Viola-Jones pass over every video, then every (scale, T) of the config (paper §4.1).
# With the paper config, data/prep points at the result: the committed solvers/*.prototxt
# read data/prep/s<scale>_T<T>/, so `caffe train --solver solvers/...` works as it stands.
SYNTH_DEP := $(if $(filter $(SYNTH) $(SYNTH)/,$(subst $(space),_,$(DATASET))),$(SYNTH)/synth_manifest.json)
DATASET_OK = test -d $(call q,$(DATASET))/train_release || { echo $(call q,DATASET=$(DATASET) has no train_release/: point DATASET at a CASIA-FASD copy) >&2; exit 2; }
CHECK_DATASET = @$(DATASET_OK)
prep: setup ## prepare every (scale, T) of the config (Viola-Jones once, HDF5 samples, folds)
	@$(MAKE) --no-print-directory $(PREP)/report.json
	@if [ "$(CONFIG_NAME)" = paper ]; then mkdir -p data && ln -sfn "$$(realpath -m --relative-to=data $(call q,$(PREP)))" data/prep \
	  && echo $(call q,data/prep -> $(PREP) (read by the committed solvers)); fi
$(PREP)/report.json: $(SYNTH_DEP) $(CONFIG)
	$(CHECK_DATASET)
	$(PY) -m data_prep --dataset $(call q,$(DATASET)) --out $(call q,$(PREP)) --config $(call q,$(CONFIG))

# The table targets prepare only the (scale, T) their experiments train, once, before
# any training (`--only`; up-to-date combinations are skipped in seconds).
# OF = table1, sweep or all: the plan's PLAN_COMBOS_$(OF).
PREP_ONE = $(DATASET_OK) && $(PY) -m data_prep --dataset $(call q,$(DATASET)) --out $(call q,$(PREP)) --config $(call q,$(CONFIG))
_prep_for: $(SYNTH_DEP)
	$(CHECK_DATASET)
	$(PY) -m data_prep --dataset $(call q,$(DATASET)) --out $(call q,$(PREP)) --config $(call q,$(CONFIG)) \
	  --only $(PLAN_COMBOS_$(OF))

# ------------------------------------------------------------------ nets
# Regenerate the committed prototxt/ and solvers/ files and the net figures.
nets: setup ## regenerate prototxt/ and solvers/ from configs/default.yaml
	$(PY) -m prototxt.generate

# ------------------------------------------------------------------ experiments
# An experiment folder is $(EXPS)/<model>_T<T>_s<scale>/<split>, split = fold<k> or full;
# its DONE file is a target of the plan ($(PLAN), `cat` it), so `make -j N` runs N at
# once and finished ones are skipped. The full-train-set run depends on its folds: model
# selection reads their curves (§4.3). Prepared data is an order-only prerequisite:
# re-running prep (a no-op when up to date) never invalidates finished experiments;
# delete an experiment's folder to retrain it.

# Every table target ends by printing Table 1 (and Table 2 of a sweep) with eval.summary.
TABLES = $(PY) -m eval.tables --results $(call q,$(EXPS)) --out $(call q,$(RUN)/tables) --config $(call q,$(CONFIG))
SUMMARY = @$(PY) -m eval.summary $(call q,$(RUN)/tables)
tables: setup ## rebuild every table and figure of RUN from its score files (no training)
	$(TABLES)
	$(SUMMARY)

reproduce-table1: setup ## Table 1: CNN and LSTM-CNN at the paper's best settings
	@$(MAKE) --no-print-directory _prep_for OF=table1
	@$(MAKE) --no-print-directory _table1
_table1: $(PLAN_DONE_table1)
	$(TABLES)
	$(SUMMARY)

scale-sweep: setup ## Table 2: CNN and LSTM-CNN(3,5,7,9) x 5 scales
	@$(MAKE) --no-print-directory _prep_for OF=sweep
	@$(MAKE) --no-print-directory _sweep
_sweep: $(PLAN_DONE_sweep)
	$(TABLES)
	$(SUMMARY)

# The sweep on a Slurm cluster (scripts/slurm/driver.py): a prep job, a job array with one task per
# experiment (its folds, then its full run), and a tables job after the array. Re-submit the
# same command to carry on; finished experiments are skipped. DRY_RUN=1 only writes the
# scripts into $(RUN)/slurm/ and prints the sbatch commands. Empty variables take the
# defaults of scripts/slurm/driver.py: no partition or GRES, 24:00:00, 8G, 4 CPUs per task.
# SLURM_GRES=gpu:1 runs each task with GPU=0 (CUDA_VISIBLE_DEVICES is the allocated GPU).
SLURM_PARTITION ?=
SLURM_GRES ?=
SLURM_TIME ?=
SLURM_MEM ?=
SLURM_CPUS ?=
SLURM_ARRAY_LIMIT ?=
SLURM_ARGS ?=
DRY_RUN ?=
SLURM_OPTS = $(if $(SLURM_PARTITION),--partition '$(SLURM_PARTITION)') $(if $(SLURM_GRES),--gres '$(SLURM_GRES)') \
  $(if $(SLURM_TIME),--time '$(SLURM_TIME)') $(if $(SLURM_MEM),--mem '$(SLURM_MEM)') \
  $(if $(SLURM_CPUS),--cpus '$(SLURM_CPUS)') $(if $(SLURM_ARRAY_LIMIT),--array-limit '$(SLURM_ARRAY_LIMIT)') \
  $(foreach a,$(SLURM_ARGS),--sbatch-arg='$(a)') $(if $(DRY_RUN),--dry-run)
sweep-slurm: setup ## the scale sweep as a Slurm job array (scripts/slurm/driver.py)
	$(PY) -m scripts.cluster --config $(call q,$(CONFIG)) --dataset $(call q,$(DATASET)) --run $(call q,$(RUN)) $(strip $(SLURM_OPTS))

# The main job end to end on the synthetic data set, sized for a 2-core CPU.
# Its small nets train DEMO_JOBS experiments at once (default: one per core), each on
# cores / DEMO_JOBS threads: small GEMMs gain less from a second thread than from a second
# experiment. (The thread count moves results by float rounding only: OpenBLAS's GEMMs
# round differently on 1 and 2 threads; see scripts/build/caffe-patches/README.md.)
NPROC     := $(shell nproc 2>/dev/null || echo 1)
DEMO_JOBS ?= $(NPROC)## demo: experiments trained at once (default: one per core)
DEMO_THREADS = $(shell echo $$(( $(NPROC) / $(DEMO_JOBS) > 0 ? $(NPROC) / $(DEMO_JOBS) : 1 )))
demo: setup ## the whole pipeline on the synthetic data set (configs/demo.yaml), then Table 1 and 2
	@$(MAKE) --no-print-directory _prep_for OF=all CONFIG=configs/demo.yaml
	@OMP_NUM_THREADS=$(DEMO_THREADS) OPENBLAS_NUM_THREADS=$(DEMO_THREADS) \
	  $(MAKE) --no-print-directory -j$(DEMO_JOBS) _demo CONFIG=configs/demo.yaml
_demo: $(PLAN_DONE_all)
	$(TABLES)
	$(SUMMARY)

# Known-answer validation: synthetic sets whose answer holds by construction
# (synth.cues, data_prep/synth.py), each trained by reproduce-table1 with its
# configs/validate-<set>.yaml (the demo's nets and solver), then the verdicts of
# eval/validate.py (PASS/FAIL per expected verdict, table and figure in runs/validate/).
# The shuffled-order and frozen-frame temporal sets are not in the default (15 minutes on
# 2 cores; their LSTM-CNN verdicts FAIL, docs/validation.md); run them with
# make validate VALIDATE_SETS="reversed order temporal background static".
VALIDATE_SETS ?= reversed background static## validate: the known-answer sets (default: reversed background static; also order, temporal)
validate: setup ## known-answer validation: temporal-only, background-only and control sets, PASS/FAIL
	@for s in $(VALIDATE_SETS); do \
	  $(MAKE) --no-print-directory data/known-$$s/synth_manifest.json && \
	  OMP_NUM_THREADS=$(DEMO_THREADS) OPENBLAS_NUM_THREADS=$(DEMO_THREADS) \
	  $(MAKE) --no-print-directory -j$(DEMO_JOBS) reproduce-table1 DATASET=data/known-$$s \
	    CONFIG=configs/validate-$$s.yaml RUN=runs/validate-$$s || exit $$?; done
	$(PY) -m eval.validate --sets $(VALIDATE_SETS) --runs $(foreach s,$(VALIDATE_SETS),runs/validate-$(s)) --out runs/validate
# A known-answer set; its manifest is written last, so its presence means a complete set.
data/known-%/synth_manifest.json:
	$(PY) -m data_prep.synth --out data/known-$* --config configs/validate-$*.yaml \
	  --contact-sheet data/known-$*/contact_sheet.png

# Cross-dataset (scripts/cross.py, eval/cross.py, docs/cross-dataset.md): train on
# TRAIN_SET's training split (several sets: "casia replay msu"), select on its validation
# data, test on TEST_SET; the table shows HTER under the three threshold conventions.
# Data sets: casia, replay, msu, oulu; roots in cross.roots (synthetic trees by default).
TRAIN_SET ?= casia## cross-dataset: training set(s): casia, replay, msu, oulu (several: "casia replay msu")
TEST_SET ?= replay## cross-dataset: the test set
HOLD_OUT ?= oulu## mcio: the set left out of MSU, CASIA, Replay (Idiap), OULU and tested on
CROSS_CONFIG ?= configs/cross.yaml## cross-dataset, mcio: their config
CROSS_RUN = runs/cross-$(subst $(space),-,$(strip $(TRAIN_SET)))-to-$(TEST_SET)
cross-dataset: setup ## train on TRAIN_SET, test on TEST_SET: the three threshold conventions, EER, AUC, TPR@FPR
	$(PY) -m scripts.cross prepare --config $(call q,$(CROSS_CONFIG)) --train $(TRAIN_SET) --test $(TEST_SET) --run $(CROSS_RUN)
	@OMP_NUM_THREADS=$(DEMO_THREADS) OPENBLAS_NUM_THREADS=$(DEMO_THREADS) \
	  $(MAKE) --no-print-directory -j$(DEMO_JOBS) _cross CONFIG=$(CROSS_CONFIG) RUN=$(CROSS_RUN)
	$(PY) -m scripts.cross evaluate --config $(call q,$(CROSS_CONFIG)) --run $(CROSS_RUN)
_cross: $(PLAN_DONE_table1)
mcio: setup ## MCIO leave-one-out: train on three of msu casia replay oulu, test on HOLD_OUT
	@$(MAKE) --no-print-directory cross-dataset TRAIN_SET="$(filter-out $(HOLD_OUT),msu casia replay oulu)" TEST_SET=$(HOLD_OUT)

# Does a trained LSTM-CNN use the order of its frames? (scripts/temporal_probe.py)
probe: setup ## score an LSTM-CNN's test clips stored, reversed, shuffled, one frame repeated: make probe MODEL=RUN/experiments/<name>/full
	$(PY) -m scripts.temporal_probe --model $(call q,$(MODEL))

# Do the paper's own solver settings (lr 0.001, weight decay 0.01, batch 100 / 32) train?
# Table 1 with configs/paper-check.yaml: 64x64 crops, 1,200 iterations, fold 1 only.
paper-check: setup ## Table 1 with the paper's solver at 64x64 (configs/paper-check.yaml)
	@$(MAKE) --no-print-directory reproduce-table1 CONFIG=configs/paper-check.yaml
# After paper-check: its peephole fold again with one paper-silent choice changed at a
# time (scripts/diagnostics/ablations.py), curves and a table in runs/paper-check-ablations/.
paper-check-ablations: setup ## after paper-check: one paper-silent choice changed at a time (scripts/diagnostics/ablations.py)
	@$(MAKE) --no-print-directory _prep_for OF=table1 CONFIG=configs/paper-check.yaml DATASET=$(SYNTH) RUN=runs/synth-paper-check
	$(PY) -m scripts.diagnostics.ablations --experiment peephole_T7_s1.8/fold1
	$(PY) -m scripts.diagnostics.ablations --experiment cnn_T1_s2.6/fold1

# Score one video with a finished experiment (scripts/predict.py), e.g.
#   make predict VIDEO=data/synth/test_release/1/HR_1.avi MODEL=runs/synth-demo/experiments/cnn_T1_s2.6/full
# or a camera, stream or file as its frames arrive: make predict SOURCE=0 MODEL=...
VIDEO ?= data/synth/test_release/1/1.avi## predict's video
MODEL ?= $(firstword $(wildcard $(RUN)/experiments/*/full))## predict's and onnx's finished experiment folder (default: the first in RUN)
SOURCE ?=## predict: score live instead of VIDEO: a camera index (0), a stream URL or a file
predict: setup ## score one video: make predict VIDEO=x.avi MODEL=RUN/experiments/<name>/full (or SOURCE=0)
	$(PY) -m scripts.predict $(if $(SOURCE),--source $(call q,$(SOURCE)),$(call q,$(VIDEO))) --model $(call q,$(MODEL)) $(ARGS)

# An ONNX model of a finished experiment (scripts/onnx_export.py): MODEL/model.onnx, written
# once ONNX Runtime has matched Caffe on random inputs (relative 1e-5); then
# `predict --backend onnx`, or scripts/inference/onnx_run.py alone on a machine without Caffe.
onnx: setup ## write MODEL/model.onnx, checked against Caffe: make onnx MODEL=RUN/experiments/<name>/full
	$(PY) -m scripts.onnx_export --model $(call q,$(MODEL))

# Speed figures: Caffe training throughput vs numpy GEMM (paper-size nets), the metrics on a
# million scores, and data preparation (Viola-Jones 1 vs 2 workers, 25 combinations, memory).
bench: setup caffe-reference ## speed: patched vs unpatched Caffe training, predict, metrics, data preparation
	$(PY) -m scripts.diagnostics.bench
	$(PY) -m scripts.diagnostics.bench_predict
	@if [ -d runs/synth-demo/prep ]; then $(PY) -m scripts.diagnostics.mixing --bench runs/synth-demo/prep --config configs/demo.yaml; \
	  else echo "(subject mixing: run make demo first, then make bench)"; fi
	$(PY) -m eval.bench_metrics
	@$(MAKE) --no-print-directory $(SYNTH)/synth_manifest.json
	$(PY) -m data_prep.bench --dataset $(SYNTH) --every 5

# CUDA Caffe against the CPU on this machine's GPU $(GPU) (default 0): device query,
# forward/backward agreement and throughput of the paper-size nets, and the demo's first
# Table 1 experiment (fold 1) trained on both (scripts/diagnostics/gpu_check.py; exit codes from the
# one table in configs/errors.py: 0 all passed, 1 a check failed, 2 bad input, 8 no usable
# GPU: CPU parts only). Report: runs/gpu-check/report.json (make itself then shows
# "Error 1/2/8"). Needs `make setup CAFFE_GPU=1` for the GPU parts.
gpu-check: setup ## on a GPU machine: CUDA Caffe against the CPU (runs/gpu-check/report.json)
	@$(MAKE) --no-print-directory prep CONFIG=configs/demo.yaml DATASET=$(SYNTH) RUN=runs/synth-demo GPU=
	$(PY) -m scripts.diagnostics.gpu_check --gpu $(or $(GPU),0) --demo-config configs/demo.yaml --demo-run runs/synth-demo

# A relocatable Caffe for a GPU node without network or compilers (scripts/build/gpu_bundle.py):
# one tarball in dist/ with the caffe tool, libcaffe and every non-CUDA library it needs,
# the three paper-size nets on HDF5Data and check.sh (CPU vs GPU, frames/s; exit codes as
# gpu-check). CUDA=13 builds Caffe once (cached) with NVIDIA's CUDA 13.0 wheels from PyPI,
# CUDA=11 with Debian's 11.8. On the GPU node: tar -xzf ... && sh <bundle>/check.sh
CUDA ?= 13## gpu-bundle: the CUDA toolkit, 13 (NVIDIA's 13.0 wheels from PyPI) or 11 (Debian's 11.8)
BUNDLE_ARCH ?= 90## gpu-bundle: GPU architectures compiled for (default 90: H100/H200)
BUNDLE_PTX ?= 90## gpu-bundle: architectures whose PTX is embedded too (newer GPUs compile it at load)
gpu-bundle: setup ## a relocatable CUDA Caffe and its check for an offline GPU node (dist/*.tar.gz)
	$(PY) -m scripts.build.gpu_bundle --cuda $(call q,$(CUDA)) --arch $(call q,$(BUNDLE_ARCH)) --ptx $(call q,$(BUNDLE_PTX))
cpu-bundle: setup ## the same for the CPU build of Caffe (dist/caffe-lstm-cnn-fasd-cpu.tar.gz)
	$(PY) -m scripts.build.gpu_bundle --cpu

clean-run: ## delete RUN (its prepared data, experiments and tables)
	rm -rf $(call q,$(RUN))
