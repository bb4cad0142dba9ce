# Two commands from a fresh clone:
#   make book   set up .venv, generate the embedded phantom cohort, run every chapter, build the HTML book
#   make test   set up .venv and run the test suite (pytest over lib + nbval over the smoke chapters)
SHELL := /bin/bash
PYTHON_BOOTSTRAP ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= default
# Chapters run side by side: 3 at a time, one torch thread each, on the CPU profiles; one at a
# time on the paper profile (lib.runner.default_jobs says why). JOBS=N overrides.
JOBS ?=
JOBS_ARG := $(if $(JOBS),--jobs $(JOBS))
# Every page on your own cohort: make book PROFILE=paper DATA_DIR=/data/BraTS2020/MICCAI_BraTS2020_TrainingData
# (passed as --set data_dir=... to each page that reads data; empty: the parameter files' data_dir).
DATA_DIR ?=
DATA_SET := $(if $(DATA_DIR),--set 'data_dir=$(DATA_DIR)')
# Any parameter, on every page that has it: make book SET="variant_per_modality_seeds=[] permutation_swap=[]"
# (space-separated KEY=VALUE, no space inside a value: seeds=[0,1]). The study A summary page lists
# what each section of a page cost in the last build and the keys that shorten it.
SET ?=
SET_ARGS := $(foreach kv,$(SET),--set '$(kv)')
export PYTHONPATH := $(CURDIR)
export MPLBACKEND := Agg
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: book test setup data chapters html smoke bench status rehearse-paper clean clean-results

setup: $(STAMP)

# Extra pip arguments for torch alone, e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
# for the CPU build where no local wheel folder provides it (README, "Environment notes").
TORCH_PIP_ARGS ?=

# torch first and pinned (an unpinned torch pulls a multi-GB CUDA build), then torchdyn without
# its declared dependencies (see requirements-nodeps.txt), then everything else.
$(STAMP): requirements.txt requirements-nodeps.txt constraints.txt
	@test -n "$(PYTHON_BOOTSTRAP)" || { echo "error: python3.11 not found"; exit 1; }
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH_PIP_ARGS) torch==2.13.0 -c constraints.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -c constraints.txt
	touch $(STAMP)

data: setup
	$(PY) -m lib cohort --params params/data/$(PROFILE).yaml $(DATA_SET)

chapters: data
	$(PY) -m lib book --profile $(PROFILE) --no-build $(JOBS_ARG) $(DATA_SET) $(SET_ARGS)

# Which pages `make book` would run, and why (what changed since each result); runs nothing.
status: setup
	$(PY) -m lib book --profile $(PROFILE) --dry-run $(JOBS_ARG) $(DATA_SET) $(SET_ARGS)

# Then check what a reader gets: every page built, nothing loaded from the network, no error
# cell, each page the notebook of a complete run, the synthetic label where the phantom was used.
html: setup
	$(VENV)/bin/jupyter-book build book
	$(PY) -m lib check-book

book: chapters html
	@echo "The book: book/_build/html/index.html"

# Smoke chapters are prepared with their parameters injected, then executed by nbval.
smoke: setup
	$(PY) -m lib prepare-smoke --out build/smoke

test: smoke
	$(PY) -m pytest -q -p no:cacheprovider tests build/smoke --nbval-lax --nbval-current-env

bench: setup
	$(PY) benchmarks/bench_study_a.py --size 48 --width 8 --depth 4 --train-steps 3 --batch 16 --out results/benchmarks/study_a.json
	$(PY) benchmarks/bench_parallel.py --out results/benchmarks/parallel.json
	$(PY) benchmarks/bench_memory_format.py --out results/benchmarks/memory_format.json
	$(PY) benchmarks/bench_grouped_unet.py --out results/benchmarks/grouped_unet.json
	$(PY) benchmarks/bench_slice_memory.py --out results/benchmarks/slice_memory.json
	$(PY) benchmarks/bench_compile.py --out results/benchmarks/compile.json

# Before spending GPU hours on your BraTS copy: the data chapter's and study A's paper profiles
# with their geometry and code paths (240 px whole slices, depth 5, adjoint over 10 RK4 steps,
# 10 folds, the 0.01 grid, the renamed run, the variant) on a 14-patient 1 mm phantom, with only
# study A's scale cut (1 seed, 1 epoch, width 4, 3 slices per patient), into
# results/{data,study_a}/...-rehearsal. Study A's numbers mean nothing; it shows the pipeline runs
# end to end. About 13-20 min on 2 CPU cores (README).
REHEARSE_TARGET ?= et
REHEARSAL_DATA := data/phantom-1mm
rehearse-paper: setup
	$(PY) -m lib phantom --out $(REHEARSAL_DATA) --subjects 14 --resolution 1
	$(PY) -m lib run book/data.py --params params/data/paper.yaml \
	    --set name=paper-rehearsal --set data_dir=$(REHEARSAL_DATA)
	$(PY) -m lib run book/study_a.py --params params/study_a/$(REHEARSE_TARGET)-paper.yaml \
	    --set name=$(REHEARSE_TARGET)-paper-rehearsal --set data_dir=$(REHEARSAL_DATA) \
	    --set "title=REHEARSAL of the paper profile (1 epoch, width 4; its numbers mean nothing), $(REHEARSE_TARGET)" \
	    --set 'seeds=[0]' --set ode_epochs=1 --set unet_epochs=1 --set ode_base_width=4 --set unet_base_width=4 \
	    --set max_slices_per_subject=3 --set ig_max_slices=4 \
	    --set 'variant_per_modality_seeds=[0]' --set variant_per_modality_width=2

clean-results:
	rm -rf results build book/_build book/*.ipynb

clean: clean-results
	rm -rf $(VENV) data
