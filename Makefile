# livespace: make run | make test | make install | make lint
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint bench clean

install: $(STAMP) js-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/livespace migrate
	$(BIN)/livespace serve

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# The benchmark (not part of `make test`, not in the wheel: the bench/ folder of this
# checkout): docs/performance.md. ARGS=... passes options,
# e.g. make bench ARGS="fanout --servers livespace,websockets".
ARGS ?= all
bench: install bench-deps
	$(BIN)/python -m bench $(ARGS)

# The Node load generator (bench/loadgen): npm ci when npm is there, else say how.
.PHONY: bench-deps
bench-deps: bench/loadgen/node_modules/.installed

bench/loadgen/node_modules/.installed: bench/loadgen/package.json bench/loadgen/package-lock.json
	@command -v npm >/dev/null || { echo "bench-deps: npm not found; install Node.js >= 18 \
	(e.g. apt-get install nodejs npm), or run livespace bench --generator python"; exit 1; }
	npm ci --prefix bench/loadgen --no-audit --no-fund
	touch $@

# The TypeScript SDK (clients/js): its dev tools (TypeScript, types), from its lock file.
.PHONY: js-deps
js-deps: clients/js/node_modules/.installed

clients/js/node_modules/.installed: clients/js/package.json clients/js/package-lock.json
	@command -v npm >/dev/null || { echo "js-deps: npm not found; install Node.js >= 20 \
	and npm (e.g. apt-get install nodejs npm): the TypeScript SDK's tests need them"; exit 1; }
	npm ci --prefix clients/js --no-audit --no-fund
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
