# make run  — create .venv, install ocikit, serve a seeded sample registry on 127.0.0.1:5000
# make test — install dev dependencies and the peer tools (Debian), run the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?= -n 2

.PHONY: run test fuzz venv dev peers bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e .
	touch $@

venv: $(STAMP)

$(DEVSTAMP): $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

dev: $(DEVSTAMP)

peers:
	sh .ci/install-peers.sh

run: venv
	$(BIN)/ocikit serve --listen 127.0.0.1:5000 --root .ocikit-demo --seed-sample

test: dev peers
	$(BIN)/python -m pytest $(PYTEST_ARGS)

fuzz: dev
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -m fuzz -p no:cacheprovider --timeout=0 $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .ocikit-demo .pytest_cache
