# The two commands a fresh machine needs: `make plan` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= staging
# torch is installed first and pinned: any other spec would pull a multi-GB CUDA build.
TORCH_VERSION ?= 2.13.0

.PHONY: plan plan-json test lint typecheck format bench-train bench-checkpoint bench-plan clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/pip install --quiet -e ".[all,training,s3,mtc,dev,policy]"
	touch $@

plan: $(VENV)/.installed
	$(BIN)/mlplatform plan $(STACK)

plan-json: $(VENV)/.installed
	$(BIN)/mlplatform plan $(STACK) --json

# Two workers: the distributed tests already spawn several processes each.
TEST_WORKERS ?= 2
test: $(VENV)/.installed
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# checkov lives in its own venv: it pins boto3 and other libraries differently from ours.
CHECKOV := .venv-checkov/bin/checkov
$(CHECKOV):
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet "checkov>=3.2,<4"

# Style, then the security scanners over everything we ship: scripts, Dockerfiles, workflows.
lint: $(VENV)/.installed $(CHECKOV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	git ls-files -z '*.sh' | xargs -0 -r $(BIN)/shellcheck
	git ls-files -z '*Dockerfile' | xargs -0 -r $(BIN)/hadolint
	BC_SKIP_MAPPING=TRUE $(CHECKOV) --skip-download --quiet --compact \
		-d .github/workflows --framework github_actions
	BC_SKIP_MAPPING=TRUE $(CHECKOV) --skip-download --quiet --compact -d docker --framework dockerfile
	# Every Kubernetes object and runner pod the stacks create, rendered from their offline plans.
	rm -rf build/manifests
	$(BIN)/mlplatform manifests staging build/manifests/staging
	$(BIN)/mlplatform manifests production build/manifests/production
	BC_SKIP_MAPPING=TRUE $(CHECKOV) --skip-download --quiet --compact \
		-d build/manifests --framework kubernetes

# Benchmarks print figures; they are not tests (and not in CI).
bench-train: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_train.py

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# Not a test: prints sync vs async save times and tier-1 throughput vs raw disk (~4 GiB written).
bench-checkpoint: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_checkpoint.py

# Offline plan time per stack (goal < 10 s): pull requests wait for it.
bench-plan: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_plan.py

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
