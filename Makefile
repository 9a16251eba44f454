# Everything a fresh machine needs: `make demo` runs a real review, `make test` the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODEL := .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
CI_TOOLS := .cache/ci-tools

# The test builds the image with buildah on a debootstrap base (root, ~2.5 min): IMAGE_BUILD=0
# skips that one test on a machine where that is not possible.
IMAGE_BUILD ?= 1

.PHONY: setup demo eval-baseline test lint unit bench bench-scale bench-eval clean ci-tools image

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "Installing reviewer and its test tools (llama.cpp's server is a prebuilt wheel)..."
	$(BIN)/python -m pip install --quiet -e '.[dev,e2e]'
	touch $@

$(MODEL):
	scripts/fetch-model $(MODEL)

setup: $(BIN)/.installed $(MODEL)

demo: setup
	PATH="$(abspath $(BIN)):$$PATH" scripts/demo $(abspath $(MODEL))

# The embedded model on the starter corpus (about 5 minutes on 2 cores): eval-baseline.json.
eval-baseline: setup
	PATH="$(abspath $(BIN)):$$PATH" scripts/eval-baseline $(abspath $(MODEL))

lint: $(BIN)/.installed
	$(BIN)/ruff check reviewer tests bench
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

unit: $(BIN)/.installed
	$(BIN)/pytest -q -m "not e2e"

# Node 22 and gitlab-ci-local, to run the CI definitions themselves in the tests.
ci-tools:
	scripts/ci-tools $(CI_TOOLS)

test: setup lint ci-tools
	REVIEWER_CI_TOOLS=$(abspath $(CI_TOOLS)) REVIEWER_E2E_MODEL=$(abspath $(MODEL)) \
		REVIEWER_IMAGE_BUILD=$(IMAGE_BUILD) $(BIN)/pytest -q

image:
	scripts/build-image

bench: $(BIN)/.installed
	$(BIN)/python bench/bench_pipeline.py

# The real CLI against the GitLab and model stand-ins at 10/100/300 files (~3 min);
# BENCH_ARGS=--quick for 10 and 100 files only.
bench-scale: $(BIN)/.installed
	$(BIN)/python bench/bench_scale.py $(BENCH_ARGS)

# reviewer eval over the starter corpus against the model stand-in: overhead per case, requests.
bench-eval: $(BIN)/.installed
	$(BIN)/python bench/bench_eval.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
