# The two commands a fresh machine needs: `make demo` (the closed loop) and `make test`.
# Both create or refresh .venv themselves from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BENCH  ?= service

.PHONY: demo grade test test-fast compose-test compose-chaos lint format bench calibrate world stack clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,dev]'
	touch $(STAMP)

demo: $(STAMP)
	@tools/system-packages.sh
	$(PY) -m demo $(ARGS)

# The course's 2026 grading: the A/B loop twice with SEED and EPISODES, ab_result.json and the
# reproducibility rule (python -m demo.grade --help; README "For students of the course").
SEED     ?= 31337
EPISODES ?= 1000
grade: $(STAMP)
	@tools/system-packages.sh
	$(PY) -m demo.grade --seed $(SEED) --episodes $(EPISODES) $(ARGS)

test: $(STAMP)
	@tools/system-packages.sh
	$(PY) -m pytest $(ARGS)

# The fast lane: no nginx, no gunicorn stacks, no RecBole, no full loop (markers: tests/conftest.py),
# on 2 xdist workers. `make test` stays serial: its stack and fault tests measure latencies and
# kill processes, and share the 2 cores with what they measure.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not stack and not trainer" -n 2 $(ARGS)

# The compose stack for real: build, up --scale 2, simulate, pull, export, train, keeper, scale 3
# and back, down -v (README "With Docker Compose"). Needs a Docker engine and Compose v2; skipped
# without an engine. TORCH_INDEX=URL builds the trainer image against that torch wheel index.
compose-test: $(STAMP)
	BOTIFY_COMPOSE_TEST=1 $(PY) -m pytest tests/compose/test_compose.py -s -p no:cacheprovider $(ARGS)

# Faults on the compose stack while simulated listeners run (README "Reliability"): a Redis
# restart keeps every key; a replica killed, a replica crashed, Redis restarted, nginx restarted,
# Redis paused 5 s, one at a time; then every acknowledged step exactly once in the exported logs.
# Needs what compose-test needs, except the trainer image.
compose-chaos: $(STAMP)
	BOTIFY_COMPOSE_TEST=1 $(PY) -m pytest tests/compose/test_chaos.py -s -p no:cacheprovider $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports  # the layers of docs/architecture.md (pyproject's [tool.importlinter])

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# One benchmark script: `make bench BENCH=sim` runs bench/bench_sim.py (default: the service).
bench: $(STAMP)
	@tools/system-packages.sh
	$(PY) bench/bench_$(BENCH).py $(ARGS)

world: $(STAMP)
	$(PY) -m sim.world --out data/world --seed 42 $(ARGS)

# The world against the course's table, on the default world seed and two others (issue 24).
CALIBRATE_ARGS ?= --world-seed 42 --world-seed 7 --world-seed 2
calibrate: $(STAMP)
	$(PY) -m sim.calibrate $(CALIBRATE_ARGS) $(ARGS)

stack: $(STAMP)
	@tools/system-packages.sh
	$(PY) -m ops.stack up $(ARGS)

clean:
	rm -rf $(VENV) runs data .pytest_cache .ruff_cache .import_linter_cache
