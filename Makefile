# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test coverage bench typecheck clean venv

# Branch coverage below this fails `make test` (measured with subprocesses; README, "Development").
COVERAGE_FLOOR ?= 90

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python tools/dev_hook.py
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

# The tests under coverage (branches, subprocesses included), then the floor, then mypy.
test: $(STAMP)
	rm -f .coverage .coverage.*
	$(BIN)/python -m coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/python -m coverage combine --quiet
	$(BIN)/python -m coverage report --fail-under=$(COVERAGE_FLOOR) --format=total > /dev/null || \
		{ $(BIN)/python -m coverage report; echo "branch coverage is under the floor of $(COVERAGE_FLOOR)%"; exit 1; }
	@echo "branch coverage: $$($(BIN)/python -m coverage report --format=total)% (floor $(COVERAGE_FLOOR)%)"
	$(BIN)/python -m mypy

# `make test`, then the per-module report and an HTML one in htmlcov/.
coverage: test
	$(BIN)/python -m coverage report
	$(BIN)/python -m coverage html --quiet
	@echo "htmlcov/index.html"

# The benchmarks' own peers (aiometer) come from the `bench` extra.
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python tools/dev_hook.py
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/prefetch.py all
	$(BIN)/python benchmarks/ratelimit.py

typecheck: $(STAMP)
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) dist build .demo .bench .coverage .coverage.* htmlcov
