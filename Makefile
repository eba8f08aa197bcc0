PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: test run venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest

run: venv
	$(VENV)/bin/collector run

clean:
	rm -rf $(VENV) .pytest_cache
