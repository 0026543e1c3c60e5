# LSTM-CNN face anti-spoofing (Xu, Li, Deng 2015), reproduced in BVLC Caffe.
#
#   make demo               the whole pipeline on the synthetic data set (configs/demo.yaml)
#   make test               the test suite (pytest)
#   make reproduce-table1   Table 1: CNN and LSTM-CNN at the paper's best settings
#   make scale-sweep        Table 2: CNN and LSTM-CNN(3,5,7,9) x 5 scales
#   make sweep-slurm        the same sweep as a Slurm job array (scripts/slurm.py)
#   make gpu-check          on a GPU machine: CUDA Caffe against the CPU (JSON report)
#   make paper-check        Table 1 with the paper's solver at 64x64 (configs/paper-check.yaml)
#
# Variables: DATASET (a CASIA-FASD-layout root; default the synthetic set), CONFIG (a
# configs/*.yaml), RUN (the output folder; default runs/<dataset>-<config>), GPU (a GPU
# id: Caffe runs on that GPU; needs `make setup CAFFE_GPU=1`), CAFFE_GPU=1 (CUDA build),
# SLURM_{PARTITION,GRES,TIME,MEM,CPUS,ARRAY_LIMIT,ARGS} and DRY_RUN=1 (sweep-slurm's jobs).
# Every target runs `make setup` first; setup is idempotent and takes seconds once done.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.SECONDEXPANSION:

VENV    ?= .venv
PY      := $(VENV)/bin/python
CAFFE   := $(VENV)/bin/caffe
CONFIG  ?= configs/paper.yaml
DATASET ?= data/synth
CONFIG_NAME := $(basename $(notdir $(CONFIG)))
RUN     ?= runs/$(notdir $(patsubst %/,%,$(DATASET)))-$(CONFIG_NAME)
GPU     ?=
GPU_ARG := $(if $(GPU),--gpu $(GPU),)
PREP    := $(RUN)/prep
EXPS    := $(RUN)/experiments

# Experiment lists come from the config (scripts/experiments.py); only read once the
# venv exists, i.e. in the sub-make that every public target starts after setup.
ifneq ($(wildcard $(PY)),)
exp_list = $(shell $(PY) -m scripts.experiments $(1) --config $(CONFIG) --run $(RUN))
endif

.PHONY: help setup test demo demo-data prep nets tables reproduce-table1 scale-sweep sweep-slurm bench \
        clean-run gpu-check paper-check _table1 _sweep _demo _prep_for predict caffe-reference paper-check-ablations

help:
	@sed -n '2,15p' Makefile | sed 's/^# \{0,1\}//'

# ------------------------------------------------------------------ set-up
# The Caffe variant: CAFFE_GPU=1 the CUDA build, CAFFE_GPU=0 the CPU build; unset, the
# venv keeps the variant it has (the CPU build on a fresh checkout), so `make test` after
# `make setup CAFFE_GPU=1` never switches back, and nothing but CAFFE_GPU=1 builds CUDA.
VENV_VARIANT := $(if $(findstring -cuda-,$(shell readlink $(VENV)/caffe-prefix 2>/dev/null)),cuda,cpu)
WANT_VARIANT := $(if $(CAFFE_GPU),$(if $(filter 1,$(CAFFE_GPU)),cuda,cpu),$(VENV_VARIANT))
setup: $(VENV)/.setup-stamp
# GPU=N: stop here, before any data or training, when Caffe cannot use that GPU
# (CPU build, no GPU, no driver); gpu-check reports that itself and runs the CPU parts.
ifneq ($(GPU),)
ifeq ($(filter gpu-check,$(MAKECMDGOALS)),)
	@$(PY) -m scripts.gpu --require $(GPU) || { echo "GPU=$(GPU): leave GPU= out to run on the CPU" >&2; exit 2; }
endif
endif
# Re-run when the pins or the script change, the cached Caffe build is gone, or the
# variant asked for is not the one the venv uses.
$(VENV)/.setup-stamp: requirements.txt scripts/setup.sh $(if $(wildcard $(CAFFE)),,FORCE) \
                      $(if $(filter-out $(VENV_VARIANT),$(WANT_VARIANT)),FORCE)
	CAFFE_GPU=$(if $(filter cuda,$(WANT_VARIANT)),1,0) bash scripts/setup.sh
	@touch $@
.PHONY: FORCE
FORCE:

# The unpatched CPU build of Caffe (CAFFE_CPU_PATCHES=0, cached beside the patched one):
# tests/test_caffe_patches.py and `make bench` compare the speed patches against it.
caffe-reference:
	@CAFFE_CPU_PATCHES=0 CAFFE_GPU=0 SETUP_BUILD_ONLY=1 bash scripts/setup.sh | tail -1

test: setup caffe-reference
	$(PY) -m pytest -q tests

# ------------------------------------------------------------------ data
# The synthetic CASIA-FASD-layout set (data_prep/synth.py) and its contact sheet.
SYNTH := data/synth
demo-data: setup
	@$(MAKE) --no-print-directory $(SYNTH)/synth_manifest.json
# The manifest is written last, so its presence means a complete set.
$(SYNTH)/synth_manifest.json:
	$(PY) -m data_prep.synth --out $(SYNTH) --preset full --config $(CONFIG) \
	  --contact-sheet $(SYNTH)/contact_sheet.png

# One Viola-Jones pass over every video, then every (scale, T) of the config (paper §4.1).
# With the paper config, data/prep points at the result: the committed solvers/*.prototxt
# read data/prep/s<scale>_T<T>/, so `caffe train --solver solvers/...` works as it stands.
SYNTH_DEP := $(if $(filter $(SYNTH) $(SYNTH)/,$(DATASET)),$(SYNTH)/synth_manifest.json)
CHECK_DATASET = @test -d "$(DATASET)/train_release" || { echo "DATASET=$(DATASET) has no train_release/: point DATASET at a CASIA-FASD copy" >&2; exit 2; }
prep: setup
	@$(MAKE) --no-print-directory $(PREP)/report.json
	@if [ "$(CONFIG_NAME)" = paper ]; then mkdir -p data && ln -sfn "$$(realpath -m --relative-to=data "$(PREP)")" data/prep \
	  && echo "data/prep -> $(PREP) (read by the committed solvers)"; fi
$(PREP)/report.json: $(SYNTH_DEP) $(CONFIG)
	$(CHECK_DATASET)
	$(PY) -m data_prep --dataset "$(DATASET)" --out "$(PREP)" --config $(CONFIG)

# The table targets prepare only the (scale, T) their experiments train, once, before
# any training (`--only`; up-to-date combinations are skipped in seconds).
# OF = table1, sweep or all (scripts/experiments.py combos).
_prep_for: $(SYNTH_DEP)
	$(CHECK_DATASET)
	$(PY) -m data_prep --dataset "$(DATASET)" --out "$(PREP)" --config $(CONFIG) \
	  --only $(shell $(PY) -m scripts.experiments combos --of $(OF) --config $(CONFIG))
# One combination, s<scale>_T<T>, when an experiment is made directly (make RUN/.../DONE).
combo_of = $(word 3,$(subst _, ,$(1)))_$(word 2,$(subst _, ,$(1)))
combo_arg = $(patsubst s%,%,$(word 1,$(subst _, ,$(1)))):$(patsubst T%,%,$(word 2,$(subst _, ,$(1))))
$(PREP)/%/manifest.json: $(SYNTH_DEP)
	$(CHECK_DATASET)
	$(PY) -m data_prep --dataset "$(DATASET)" --out "$(PREP)" --config $(CONFIG) --only $(call combo_arg,$*)

# ------------------------------------------------------------------ nets
# Regenerate the committed prototxt/ and solvers/ files and the net figures.
nets: setup
	$(PY) -m prototxt.generate

# ------------------------------------------------------------------ experiments
# An experiment folder is $(EXPS)/<model>_T<T>_s<scale>/<split>, split = fold<k> or full.
# Each is a file target, so `make -j N` runs N at once and finished ones are skipped.
# The full-train-set run depends on its folds: model selection reads their curves (§4.3).
# Prepared data is an order-only prerequisite: re-running prep (a no-op when up to date)
# never invalidates finished experiments; delete an experiment's folder to retrain it.
$(EXPS)/%/full/DONE: $$(foreach k,$$(call exp_list,folds),$(EXPS)/$$*/fold$$(k)/DONE)
	$(PY) -m scripts.train --config $(CONFIG) --run $(RUN) --experiment $*/full $(GPU_ARG)
define FOLD_RULE
$(EXPS)/%/fold$(1)/DONE: | $(PREP)/$$$$(call combo_of,$$$$*)/manifest.json
	$(PY) -m scripts.train --config $(CONFIG) --run $(RUN) --experiment $$*/fold$(1) $(GPU_ARG)
endef
$(foreach k,1 2 3 4 5 6 7 8 9,$(eval $(call FOLD_RULE,$(k))))
# Fold results are reached through the full run's rule; never delete them as intermediates.
.SECONDARY:

tables: setup
	$(PY) -m eval.tables --results $(EXPS) --out $(RUN)/tables --config $(CONFIG)

reproduce-table1: setup
	@$(MAKE) --no-print-directory _prep_for OF=table1
	@$(MAKE) --no-print-directory _table1
_table1: $$(call exp_list,table1)
	$(PY) -m eval.tables --results $(EXPS) --out $(RUN)/tables --config $(CONFIG)

scale-sweep: setup
	@$(MAKE) --no-print-directory _prep_for OF=sweep
	@$(MAKE) --no-print-directory _sweep
_sweep: $$(call exp_list,sweep)
	$(PY) -m eval.tables --results $(EXPS) --out $(RUN)/tables --config $(CONFIG)

# The sweep on a Slurm cluster (scripts/slurm.py): a prep job, a job array with one task per
# experiment (its folds, then its full run), and a tables job after the array. Re-submit the
# same command to carry on; finished experiments are skipped. DRY_RUN=1 only writes the
# scripts into $(RUN)/slurm/ and prints the sbatch commands. Empty variables take the
# defaults of scripts/slurm.py: no partition or GRES, 24:00:00, 8G, 4 CPUs per task.
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
sweep-slurm: setup
	$(PY) -m scripts.cluster --config $(CONFIG) --dataset $(DATASET) --run $(RUN) $(strip $(SLURM_OPTS))

# The main job end to end on the synthetic data set, sized for a 2-core CPU.
# Its small nets train DEMO_JOBS experiments at once (default: one per core), each on
# cores / DEMO_JOBS threads: small GEMMs gain less from a second thread than from a second
# experiment. Results do not depend on it (tests/test_caffe_patches.py: thread count).
NPROC     := $(shell nproc 2>/dev/null || echo 1)
DEMO_JOBS ?= $(NPROC)
DEMO_THREADS = $(shell echo $$(( $(NPROC) / $(DEMO_JOBS) > 0 ? $(NPROC) / $(DEMO_JOBS) : 1 )))
demo: setup
	@$(MAKE) --no-print-directory _prep_for OF=all CONFIG=configs/demo.yaml
	@OMP_NUM_THREADS=$(DEMO_THREADS) OPENBLAS_NUM_THREADS=$(DEMO_THREADS) \
	  $(MAKE) --no-print-directory -j$(DEMO_JOBS) _demo CONFIG=configs/demo.yaml
_demo: $$(call exp_list,table1) $$(call exp_list,sweep)
	$(PY) -m eval.tables --results $(EXPS) --out $(RUN)/tables --config $(CONFIG)
	@echo "Tables and figures: $(RUN)/tables"

# Do the paper's own solver settings (lr 0.001, weight decay 0.01, batch 100 / 32) train?
# Table 1 with configs/paper-check.yaml: 64x64 crops, 1,200 iterations, fold 1 only.
paper-check: setup
	@$(MAKE) --no-print-directory reproduce-table1 CONFIG=configs/paper-check.yaml
# After paper-check: its peephole fold again with one paper-silent choice changed at a
# time (scripts/ablations.py), curves and a table in runs/paper-check-ablations/.
paper-check-ablations: setup
	@$(MAKE) --no-print-directory _prep_for OF=table1 CONFIG=configs/paper-check.yaml DATASET=$(SYNTH) RUN=runs/synth-paper-check
	$(PY) -m scripts.ablations --experiment peephole_T7_s1.8/fold1
	$(PY) -m scripts.ablations --experiment cnn_T1_s2.6/fold1

# Score one video with a finished experiment (scripts/predict.py), e.g.
#   make predict VIDEO=data/synth/test_release/1/HR_1.avi MODEL=runs/synth-demo/experiments/cnn_T1_s2.6/full
VIDEO ?= data/synth/test_release/1/1.avi
MODEL ?= $(firstword $(wildcard $(RUN)/experiments/*/full))
predict: setup
	$(PY) -m scripts.predict $(VIDEO) --model $(MODEL) $(ARGS)

# Speed figures: Caffe training throughput vs numpy GEMM (paper-size nets), the metrics on a
# million scores, and data preparation (Viola-Jones 1 vs 2 workers, 25 combinations, memory).
bench: setup caffe-reference
	$(PY) -m scripts.bench
	$(PY) -m scripts.bench_predict
	@if [ -d runs/synth-demo/prep ]; then $(PY) -m scripts.mixing --bench runs/synth-demo/prep --config configs/demo.yaml; \
	  else echo "(subject mixing: run make demo first, then make bench)"; fi
	$(PY) -m eval.bench_metrics
	@$(MAKE) --no-print-directory $(SYNTH)/synth_manifest.json
	$(PY) -m data_prep.bench --dataset $(SYNTH) --every 5

# CUDA Caffe against the CPU on this machine's GPU $(GPU) (default 0): device query,
# forward/backward agreement and throughput of the paper-size nets, and the demo's first
# Table 1 experiment (fold 1) trained on both (scripts/gpu_check.py; exit 0 all passed,
# 1 a check failed, 2 bad input, 3 no usable GPU: CPU parts only). Report:
# runs/gpu-check/report.json (make itself then shows "Error 1/2/3"). Needs
# `make setup CAFFE_GPU=1` for the GPU parts.
gpu-check: setup
	@$(MAKE) --no-print-directory prep CONFIG=configs/demo.yaml DATASET=$(SYNTH) RUN=runs/synth-demo GPU=
	$(PY) -m scripts.gpu_check --gpu $(or $(GPU),0) --demo-config configs/demo.yaml --demo-run runs/synth-demo

clean-run:
	rm -rf $(RUN)
