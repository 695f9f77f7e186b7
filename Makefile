# Everything runs from the project's own virtualenv, built from nothing on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: venv test local plan clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml runtime/pyproject.toml worker_image/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r worker_image/requirements.txt -e ./runtime -e '.[dev]'
	touch $@

# The whole suite, offline plus the end-to-end tests against RabbitMQ/PostgreSQL on 127.0.0.1.
test: venv
	$(PY) -m ruff check .
	$(PY) -m pytest $(ARGS)

# The whole topology on this machine from Pulumi.dev.yaml (embedded broker, storage and S3 by default).
local: venv
	$(PY) -m infra.local up $(ARGS)

# What `pulumi up` would create from a stack file, and its monthly cost at minimum and maximum scale.
plan: venv
	$(PY) -m infra.plan $(ARGS)

clean:
	rm -rf $(VENV) .local .pytest_cache
