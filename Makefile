# Two commands: `make demo` (set up + run the main job) and `make test` (set up + run the tests).
PY := .venv/bin/python
PIP := $(PY) -m pip
STAMP := .venv/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m glassloop demo

test: $(STAMP)
	.venv/bin/ruff check .
	.venv/bin/lint-imports
	$(PY) -m pytest -n 2 --durations=15

bench: $(STAMP)
	$(PY) bench/speed.py

clean:
	rm -rf .venv runs mlruns mlflow.db
