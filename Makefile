# livespace: make run | make test | make test-fast | make install | make lint | make lock
#            make test-lowest
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-fast lint lock bench clean page browser

install: $(STAMP) js-deps page yjs-deps

# The versions tested last: requirements.lock (constraints; `make lock` writes it again).
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

lock: $(STAMP)
	$(BIN)/python tools/lock.py

run: install
	$(BIN)/livespace migrate
	$(BIN)/livespace serve

# Both tiers, coverage measured (servers started by the tests too), the floor in
# pyproject.toml ([tool.coverage.report] fail_under) enforced.
test: install browser
	rm -f .coverage .coverage.*
	$(BIN)/python -m pytest -q --cov --cov-report=
	@echo "coverage: $$($(BIN)/python -m coverage report --format=total)% (floor in pyproject.toml)"

# The fast tier: no process started (unit, contract suites, the app in-process).
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

# The fast tier on the lower bound of every runtime dependency (tools/lowest.py), in a
# venv of its own: the other end of the ranges that `make test` checks on the lock.
.PHONY: test-lowest
test-lowest:
	test -x .venv-lowest/bin/python || $(PYTHON) -m venv .venv-lowest
	$(PYTHON) tools/lowest.py > .venv-lowest/constraints.txt
	.venv-lowest/bin/python -m pip install --quiet -c .venv-lowest/constraints.txt -e '.[dev]'
	.venv-lowest/bin/python -m pip list --format=freeze | grep -i -f .venv-lowest/constraints.txt
	.venv-lowest/bin/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check src tests bench tools
	$(MAKE) --no-print-directory lint-types

# mypy strict everywhere; tests/conftest.py apart (its module name is that of
# tests/integration/conftest.py)
.PHONY: lint-types
lint-types:
	$(BIN)/mypy
	$(BIN)/mypy tests/conftest.py

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

# The live page served at / (clients/page, bundled with the SDK's source from clients/js)
# into src/livespace/static; rebuilt when a source changes. Needs Node.js and npm.
PAGE_HTML := src/livespace/static/index.html
PAGE_SRC  := clients/page/index.html clients/page/build.mjs \
	$(shell find clients/page/src clients/js/src -name '*.ts' -o -name '*.css' 2>/dev/null)
page: $(PAGE_HTML)

$(PAGE_HTML): clients/page/node_modules/.installed $(PAGE_SRC)
	npm run --prefix clients/page --silent build

clients/page/node_modules/.installed: clients/page/package.json clients/page/package-lock.json
	@command -v npm >/dev/null || { echo "page: npm not found; install Node.js >= 20 \
	(e.g. apt-get install nodejs npm)"; exit 1; }
	npm ci --prefix clients/page --no-audit --no-fund
	touch $@

# The browser tests drive Debian's chromium (never a downloaded browser build).
CHROMIUM := /usr/bin/chromium
browser: $(CHROMIUM)

$(CHROMIUM):
	apt-get update
	apt-get install -y --no-install-recommends chromium

# Real Yjs clients (yjs + y-websocket + ws) the collaborative-note tests drive: tests/yjs.
.PHONY: yjs-deps
yjs-deps: tests/yjs/node_modules/.installed

tests/yjs/node_modules/.installed: tests/yjs/package.json tests/yjs/package-lock.json
	@command -v npm >/dev/null || { echo "yjs-deps: npm not found; install Node.js >= 20 \
	and npm (e.g. apt-get install nodejs npm): the collaborative-note tests need them"; exit 1; }
	npm ci --prefix tests/yjs --no-audit --no-fund
	touch $@

clean:
	rm -rf $(VENV) .venv-lowest .pytest_cache .mypy_cache .ruff_cache clients/page/node_modules \
	src/livespace/static test-artifacts tests/yjs/node_modules
