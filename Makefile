# Billing Admin — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: venv run test lint bench sandbox package clean

# Reinstall only when the project definition changed: a second `make venv` is a no-op.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

run: venv
	$(BIN)/admin-app $(ARGS)

test: venv
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: venv
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m bench $(ARGS)

# The installer for staff machines: dist/billing-admin/ (PyInstaller) and a .deb around it.
package: venv
	$(BIN)/pyinstaller --noconfirm --clean --log-level WARN build.spec
	packaging/build-deb.sh

sandbox: venv
	$(BIN)/admin-app sandbox --seed-demo $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
