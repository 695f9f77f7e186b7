"""Code checked before anything is created: ``make validate`` (``python -m infra.tools.validate``), ``make plan`` and
``pulumi up``'s preview (the program under mocks with preview on) refuse a stack file whose code locations are
missing, do not import, need requirements that would move the image's pins, or send a step to a queue the stack
lacks; each error names the location, the job, the step and the queue."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pulumi
import pytest
import yaml

from infra.specs import code_locations
from infra.tools.testing import run_stack

REPO_ROOT = Path(__file__).resolve().parents[1]

CODE = '''
from dagster import Definitions, asset, job, op

from dagster_celery_aws import celery_executor, deployment_resources


@op(tags={"dagster-celery/queue": "ml"})
def train():
    return 1


@job(executor_def=celery_executor)
def train_job():
    train()


@asset(op_tags={"dagster-celery/queue": "ml"})
def model():
    return 2


defs = Definitions(jobs=[train_job], assets=[model], executor=celery_executor, resources=deployment_resources())
'''


def location(root: Path, code: str = CODE, requirements: str | None = None) -> Path:
    (root / "team_code").mkdir(parents=True)
    (root / "team_code" / "__init__.py").write_text(textwrap.dedent(code))
    if requirements is not None:
        (root / "requirements.txt").write_text(requirements)
    return root


def config(path: Path, queues=("dagster", "ml")) -> dict:
    return {"queues": [{"name": q} for q in queues],
            "codeLocations": [{"name": "team", "path": str(path), "module": "team_code"}]}  # fmt: skip


def stack_file(tmp_path: Path, values: dict) -> Path:
    path = tmp_path / "Pulumi.team.yaml"
    path.write_text(yaml.safe_dump({"config": {f"dagster-celery-aws:{k}": v for k, v in values.items()}}))
    return path


def validate(tmp_path: Path, stack: Path) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "infra.tools.validate", "--stack-file", str(stack), "--state-dir", str(tmp_path / "state")]
    proc = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    print(proc.stdout, proc.stderr)
    return proc


def test_a_stack_whose_code_runs_on_its_queues_is_valid(tmp_path):
    code = location(tmp_path / "code")
    proc = validate(tmp_path, stack_file(tmp_path, config(code)))
    assert proc.returncode == 0
    # train_job and the implicit asset job (Materialize) are not counted apart: every job the location lists.
    assert "valid; " in proc.stdout and "every step on a queue of the stack (dagster, ml)" in proc.stdout


def test_a_step_for_a_queue_the_stack_lacks_is_an_error_naming_job_step_and_queue(tmp_path):
    code = location(tmp_path / "code")
    proc = validate(tmp_path, stack_file(tmp_path, config(code, queues=("dagster",))))
    assert proc.returncode == 1
    assert "error: code location 'team': job 'train_job' sends step 'train' -> queue 'ml', but the stack has no " \
           "such queue (its queues: dagster)" in proc.stderr


def test_an_asset_routed_by_asset_tags_is_an_error_as_in_the_image_check(tmp_path):
    code = location(tmp_path / "code", CODE.replace('@asset(op_tags=', '@asset(tags='))
    proc = validate(tmp_path, stack_file(tmp_path, config(code)))
    assert proc.returncode == 1
    assert "error: code location 'team': asset 'model' has tags={'dagster-celery/queue': 'ml'}" in proc.stderr
    assert "@asset(op_tags={'dagster-celery/queue': 'ml'})" in proc.stderr


def test_requirements_that_would_move_the_image_pins_are_an_error(tmp_path):
    pinned = next(line for line in code_locations.PINS.read_text().splitlines() if line.startswith("requests=="))
    code = location(tmp_path / "code", requirements="requests==2.30.0\n")
    proc = validate(tmp_path, stack_file(tmp_path, config(code)))
    assert proc.returncode == 1
    assert "code location 'team': pip could not install" in proc.stderr
    assert "The user requested requests==2.30.0" in proc.stderr
    assert f"The user requested (constraint) {pinned}" in proc.stderr


def test_a_location_that_does_not_import_is_an_error(tmp_path):
    code = location(tmp_path / "code", code="import not_installed_anywhere\n")
    proc = validate(tmp_path, stack_file(tmp_path, config(code)))
    assert proc.returncode == 1
    assert "error: code location team (team_code): DagsterImportError" in proc.stderr
    assert "No module named 'not_installed_anywhere'" in proc.stderr


def test_validate_and_plan_refuse_a_code_location_that_does_not_exist(tmp_path):
    stack = stack_file(tmp_path, config(tmp_path / "nowhere"))
    proc = validate(tmp_path, stack)
    assert proc.returncode == 2 and "codeLocations[0].path" in proc.stderr and "no such directory" in proc.stderr
    plan = subprocess.run([sys.executable, "-m", "infra.tools.plan", "--stack-file", str(stack)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert plan.returncode == 2 and "codeLocations[0].path" in plan.stderr and "no such directory" in plan.stderr


def test_pulumi_preview_runs_the_checks_before_any_resource(tmp_path):
    code = location(tmp_path / "code")
    values = config(code, queues=("dagster",))
    with pytest.raises(pulumi.RunError) as err:
        run_stack(config=values, stack="team", preview=True)
    assert "the code of the stack is invalid" in str(err.value)
    assert "job 'train_job' sends step 'train' -> queue 'ml'" in str(err.value)
    # Not under the update's own run (the preview has passed by then) nor, so, in the other tests' mocks.
    assert run_stack(config=values, stack="team").of_type("aws:mq/broker:Broker")
