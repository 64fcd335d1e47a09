# Billing Admin — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: venv run test lint bench mutants sandbox package clean

# Reinstall only when the project definition changed: a second `make venv` is a no-op.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

run: venv
	$(BIN)/admin-app $(ARGS)

# The whole suite (no ARGS) also measures line and branch coverage of services/ and keeps its
# floor (tools/coverage_floor.py); with ARGS (a subset) it only runs the tests.
test: venv
ifeq ($(strip $(ARGS)),)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest --cov --cov-report=term --cov-report=json:build/coverage.json
	$(BIN)/python tools/coverage_floor.py build/coverage.json
else
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(ARGS)
endif

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

# Mutation testing of the money and trust paths (docs/mutants.md); ARGS=--all for every function.
mutants: venv
	$(BIN)/python tools/mutants.py $(ARGS)

sandbox: venv
	$(BIN)/admin-app sandbox --seed-demo $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .import_linter_cache mutants
