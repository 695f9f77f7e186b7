# Everything runs from the project's own virtualenv, built from nothing on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
# checkov in a virtualenv of its own: its pins exclude the image's (tests/checkov-requirements.txt).
CHECKOV_VENV ?= .venv-checkov
STACK ?= prod
# pytest processes for make test; a test file stays in one (its module fixtures start one local stack).
JOBS ?= 2
ARGS ?=

.PHONY: venv checkov-venv test local plan validate verify checkov bench docs clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml runtime/pyproject.toml worker_image/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r worker_image/requirements.txt -e ./runtime -e '.[dev]'
	touch $@

checkov-venv: $(CHECKOV_VENV)/.installed

$(CHECKOV_VENV)/.installed: tests/checkov-requirements.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r tests/checkov-requirements.txt
	touch $@

# The whole suite, offline plus the end-to-end tests against RabbitMQ/PostgreSQL on 127.0.0.1.
test:
	$(MAKE) -j2 venv checkov-venv  # two independent virtualenvs, built side by side
	$(PY) -m ruff check .
	DCA_CHECKOV_PYTHON=$(CHECKOV_VENV)/bin/python $(PY) -m pytest -n $(JOBS) --dist loadfile --no-loadscope-reorder $(ARGS)

# The whole topology on this machine from Pulumi.dev.yaml (embedded broker, storage and S3 by default).
local: venv
	$(PY) -m infra.local up $(ARGS)

# The step path on every job shape (Celery against in-process), on the services of this machine and again behind
# a 1 ms emulated network, and a run's start in both runs modes (benchmarks/README.md); ARGS go to step_path.py.
bench: venv
	PYTHONPATH=runtime:. $(PY) benchmarks/step_path.py --quick $(ARGS)
	PYTHONPATH=runtime:. $(PY) benchmarks/step_path.py --quick --rtt-ms 1 --out benchmarks/results/step_path_rtt1 $(ARGS)
	PYTHONPATH=runtime:. $(PY) benchmarks/run_start.py --runs 5

# What `pulumi up` would create from a stack file, and its monthly cost at minimum and maximum scale.
plan: venv
	$(PY) -m infra.tools.plan $(ARGS)

# A stack file and its code checked before anything is created: config, code locations, their requirements with
# the image's pins as constraints, every job's steps on the stack's queues (infra/tools/validate.py). Pulumi's preview
# runs the same checks.
validate: venv
	$(PY) -m infra.tools.validate --stack-file Pulumi.$(STACK).yaml $(ARGS)

# Whether the deployed stack STACK serves: its services, targets, alarms, queues, run task definition, image and UI
# route, one line each; exits 1 on a failure (infra/tools/verify.py, docs/deployment.md#check-that-it-serves).
verify: venv
	pulumi stack output --json --stack $(STACK) | $(PY) -m infra.tools.verify $(ARGS)

# checkov's own report on Pulumi.$(STACK).yaml, as the Terraform plan it reads (docs/security.md).
checkov: venv checkov-venv
	mkdir -p .local
	$(PY) -m infra.tools.tfplan --stack-file Pulumi.$(STACK).yaml --stack $(STACK) > .local/$(STACK).tfplan.json
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework terraform_plan -f .local/$(STACK).tfplan.json $(ARGS)

# docs/config.md from the config models (infra/tools/config_reference.py); tests/test_readme.py fails when it is stale.
docs: venv
	$(PY) -m infra.tools.config_reference docs/config.md

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .local .pytest_cache
