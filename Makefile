# Two commands do all set-up on a fresh machine with only Python 3.11+:
#   make demo   creates .venv, installs wangge, runs the end-to-end demo
#   make test   creates .venv, installs wangge with its test tools, runs the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# -qq: setuptools' notice about the strict editable install (which is intended) is noise
# to a new user; errors still show.
install: $(BIN)/python
	$(BIN)/python -m pip install -qq --config-settings editable_mode=strict -e '.[test,bench]'

demo: install
	$(BIN)/wangge demo

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/wangge bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
