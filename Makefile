# Two commands: `make run` (the provider on SQLite + the embedded store, with demo data)
# and `make test` (the whole suite). Both build .venv from pyproject.toml first.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= 2

.PHONY: run test venv translations lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

translations: $(STAMP)
	$(BIN)/pybabel compile -d idp/translations -D messages --statistics

run: translations
	$(FLASK) db upgrade
	$(FLASK) seed-demo
	@echo "Provider on http://$(HOST):$(PORT)/, demo systems on :5001 and :5002 (Ctrl-C stops all)"
	HOST=$(HOST) PORT=$(PORT) WORKERS=$(WORKERS) $(BIN)/python -m demo_rp.launch

test: translations
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Re-extract the message catalogue after changing user-facing strings.
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o idp/translations/messages.pot --no-location --sort-output --omit-header .
	$(BIN)/pybabel update -i idp/translations/messages.pot -d idp/translations -D messages --no-fuzzy-matching --ignore-obsolete

clean:
	rm -rf $(VENV) instance .pytest_cache
