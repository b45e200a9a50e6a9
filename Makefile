# mllc: every target creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo demo-scaleout test lint format golden docs schema bench mutate clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "mllc needs Python >= 3.11 (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --config-settings editable_mode=compat -e '.[dev,dask,s3]'
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m mllc.demo

# The same lifecycle beyond one machine: data and models on an S3-protocol server, the
# search on a Dask scheduler with two workers, production synced the GitOps way, and a
# second clone that scores and verifies (all on 127.0.0.1: examples/scaleout.py).
demo-scaleout: $(STAMP)
	$(PY) examples/scaleout.py

test: lint
	$(PY) -m pytest -q -n auto

lint: $(STAMP)
	$(VENV)/bin/ruff check mllc tests bench examples
	$(VENV)/bin/ruff format --check mllc tests bench examples
	$(VENV)/bin/mypy mllc
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format mllc tests bench examples
	$(VENV)/bin/ruff check --fix mllc tests bench examples

# Regenerate golden files; review the diff before committing.
golden: $(STAMP)
	$(PY) -m pytest -q tests --regen-golden

docs: $(STAMP)
	$(PY) -m mllc.spec.reference docs/spec.md
	$(PY) -m mllc schema --kind lifecycle
	$(PY) -m mllc schema --kind plan
	$(PY) -m mllc schema --kind monitor
	$(PY) -m mllc schema --kind verify

schema: docs

# The server bench's anchor, MLServer (pyproject's `mlserver` extra), gets a venv of its own
# in .bench/ (its pins are not ours), with our scikit-learn so it unpickles the same file.
bench: $(STAMP)
	@test .bench/mlserver-venv/.installed -nt pyproject.toml || { \
		rm -rf .bench/mlserver-venv && $(PYTHON) -m venv .bench/mlserver-venv && \
		.bench/mlserver-venv/bin/pip install --quiet --disable-pip-version-check \
			$$($(PY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["mlserver"])') \
			"scikit-learn==$$($(PY) -c 'import sklearn; print(sklearn.__version__)')" && \
		touch .bench/mlserver-venv/.installed; }
	$(PY) bench/run.py

# Mutation testing of the pure core (spec rules and checks, promotion policy, gates, the
# plan's diff), in a copy under .mutate/: slow, so not part of `make test`. Prints each
# module's kill ratio and survivors; fails when a module kills fewer than 90%.
MUTATE_STAMP := $(VENV)/.mutate-installed
$(MUTATE_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check --config-settings editable_mode=compat -e '.[dev,dask,s3,mutate]'
	@touch $(MUTATE_STAMP)

mutate: $(MUTATE_STAMP)
	nice -n 10 $(PY) tests/mutate.py

clean:
	rm -rf $(VENV) .bench .pytest_cache .mypy_cache .ruff_cache
