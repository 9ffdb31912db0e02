# The two commands: `make run` (the whole demo) and `make test` (the whole suite).
PYTHON ?= python3.12
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The browser tests drive Debian's Chromium (tests/e2e/conftest.py), never a downloaded build.
CHROMIUM := /usr/bin/chromium
# Reverse DNS runs against the real PowerDNS Authoritative (Debian's packages), which `make run`
# and the tests start on local ports (sandbox/powerdns.py).
PDNS_SERVER := /usr/sbin/pdns_server
PDNS_SQLITE_SCHEMA := /usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql

ifneq (,$(wildcard .env))
include .env
export
endif

.PHONY: run test lint format migrations-check install chromium powerdns assets clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: powerdns $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable
	$(PY) -m sandbox.pve prepare
	$(PY) -m sandbox.run

test: chromium powerdns $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# Finds Debian's Chromium, installs it where it can (root with apt-get), or stops saying what to
# install. .ci/run uses this too.
chromium:
	@if [ ! -x $(CHROMIUM) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "[make] installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi
	@if [ ! -x $(CHROMIUM) ]; then \
	  echo "make test: the browser tests need Debian's Chromium at $(CHROMIUM)." >&2; \
	  echo "Install it as root: apt-get install chromium   (or: sudo apt-get install chromium)" >&2; \
	  exit 1; \
	fi

# Finds PowerDNS with its SQLite backend, installs them where it can (root with apt-get; the
# packages' own service is not started), or stops saying what to install. .ci/run uses this too.
powerdns:
	@if { [ ! -x $(PDNS_SERVER) ] || [ ! -f $(PDNS_SQLITE_SCHEMA) ]; } && [ "$$(id -u)" = 0 ] \
	    && command -v apt-get >/dev/null 2>&1; then \
	  echo "[make] installing Debian's pdns-server and pdns-backend-sqlite3 for reverse DNS"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    pdns-server pdns-backend-sqlite3 >/dev/null; \
	fi
	@if [ ! -x $(PDNS_SERVER) ] || [ ! -f $(PDNS_SQLITE_SCHEMA) ]; then \
	  echo "make: reverse DNS needs PowerDNS ($(PDNS_SERVER)) with its SQLite backend." >&2; \
	  echo "Install them as root: apt-get install pdns-server pdns-backend-sqlite3" >&2; \
	  exit 1; \
	fi

# The browser console's JavaScript (noVNC, xterm.js) from npm, at the versions package.json pins,
# into static/vendor/ with their licences. static/vendor/ is committed, so `make run` needs no
# npm; run this after changing package.json (and commit what it changed).
VENDOR := static/vendor
assets:
	npm ci --ignore-scripts --no-audit --no-fund
	rm -rf $(VENDOR)/novnc $(VENDOR)/xterm
	mkdir -p $(VENDOR)/novnc/docs $(VENDOR)/xterm/addon-fit
	cp -R node_modules/@novnc/novnc/core node_modules/@novnc/novnc/vendor $(VENDOR)/novnc/
	cp node_modules/@novnc/novnc/LICENSE.txt node_modules/@novnc/novnc/AUTHORS \
	  node_modules/@novnc/novnc/package.json $(VENDOR)/novnc/
	cp node_modules/@novnc/novnc/docs/LICENSE.* $(VENDOR)/novnc/docs/
	cp node_modules/@xterm/xterm/lib/xterm.mjs node_modules/@xterm/xterm/lib/xterm.mjs.map \
	  node_modules/@xterm/xterm/css/xterm.css node_modules/@xterm/xterm/LICENSE \
	  node_modules/@xterm/xterm/package.json $(VENDOR)/xterm/
	cp node_modules/@xterm/addon-fit/lib/addon-fit.mjs \
	  node_modules/@xterm/addon-fit/lib/addon-fit.mjs.map node_modules/@xterm/addon-fit/LICENSE \
	  node_modules/@xterm/addon-fit/package.json $(VENDOR)/xterm/addon-fit/

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrations-check: $(STAMP)
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var
