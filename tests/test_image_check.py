"""The image contract check (dagster_celery_aws.image_check) that the daemon's task runs before the migration:
what a prebuilt image must contain, each missing part named."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from dagster_celery_aws import image_check
from infra.specs import code_locations

from tests.conftest import REPO_ROOT


def layout(tmp_path: Path, locations: dict[str, str], alerts: bool = False) -> tuple[Path, str]:
    """A DAGSTER_HOME with the image's dagster.yaml and a workspace loading ``locations`` (name -> module), and
    with ``alerts`` the runtime's alerts location, as every generated workspace does."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "worker_image" / "dagster.yaml", home / "dagster.yaml")
    code = tmp_path / "code"
    code.mkdir()
    (code / "present_module.py").write_text("VALUE = 1\n")
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [
        {"python_module": {"module_name": module, "location_name": name, "working_directory": str(code)}}
        for name, module in locations.items()
    ] + ([code_locations.ALERTS] if alerts else [])}))  # fmt: skip
    return workspace, str(home)


def test_an_image_that_keeps_the_contract_passes(tmp_path):
    workspace, home = layout(tmp_path, {"analytics": "present_module"})
    assert image_check.problems(workspace, {"analytics"}, home) == []


def test_a_location_the_stack_names_but_the_image_lacks_is_named(tmp_path):
    workspace, home = layout(tmp_path, {"analytics": "present_module"})
    (found,) = image_check.problems(workspace, {"analytics", "ml"}, home)
    assert found == f"{workspace}: loads ['analytics'], the stack names ['analytics', 'ml']"


def test_a_module_that_does_not_import_is_named(tmp_path):
    workspace, home = layout(tmp_path, {"analytics": "absent_module"})
    (found,) = image_check.problems(workspace, {"analytics"}, home)
    assert found.startswith("code location 'analytics': module 'absent_module' does not import")


def test_a_missing_or_broken_instance_config_is_named(tmp_path):
    workspace, home = layout(tmp_path, {"analytics": "present_module"})
    assert image_check.problems(workspace, {"analytics"}, str(tmp_path / "nowhere")) == [
        f"$DAGSTER_HOME/dagster.yaml: not found (DAGSTER_HOME={str(tmp_path / 'nowhere')!r})"]
    (Path(home) / "dagster.yaml").write_text("run_launcher: {module: x}\n")
    (found,) = image_check.problems(workspace, {"analytics"}, home)
    assert found.startswith("$DAGSTER_HOME/dagster.yaml: not a valid instance config")


def test_the_variable_is_the_contracts():
    from infra.specs import contract

    assert image_check.LOCATIONS_VAR == contract.CODE_LOCATIONS


ROUTED = '''
from dagster import Definitions, asset, in_process_executor, job, op
from dagster_celery_aws import celery_executor


@asset(op_tags={"dagster-celery/queue": "ml"})
def features(): return 1


@asset(tags={"dagster-celery/queue": "ml"})
def scores(features): return features


@op(tags={"dagster-celery/queue": "gpu"})
def train(): return 1


@job
def train_job(): train()


@job(executor_def=in_process_executor)
def local_job(): train()


defs = Definitions(assets=[features, scores], jobs=[train_job, local_job], executor=celery_executor)
'''


def test_jobs_sending_steps_to_a_queue_the_stack_lacks_stop_the_deployment(tmp_path, monkeypatch):
    workspace, home = layout(tmp_path, {"analytics": "routed_module"})
    (tmp_path / "code" / "routed_module.py").write_text(ROUTED)
    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "amqp://broker//")
    monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", "db+postgresql+psycopg2://u@db/d")
    warned = []
    found = image_check.problems(workspace, {"analytics"}, home, served={"dagster", "ml"},
                                 broker_url="amqp://broker//", warn=warned.append)  # fmt: skip
    text = "\n".join(found)
    # The op job's step to a queue the stack lacks: job, step and queue named.
    assert "job 'train_job' sends step 'train' -> queue 'gpu', but the stack has no such queue" in text
    # An asset routed by asset tags is refused in every job holding it (the implicit asset job: Materialize).
    assert "asset 'scores' has tags={'dagster-celery/queue': 'ml'}" in text
    assert "@asset(op_tags={'dagster-celery/queue': 'ml'})" in text
    assert any("'__ASSET_JOB'" in line or "asset 'scores'" in line for line in found)
    assert not any("features" in line for line in found)  # op_tags to a queue the stack has: fine
    # A job whose executor runs steps itself runs, only not on the queues: a warning, not a failure.
    assert not any("local_job" in line for line in found)
    assert warned == ["image contract: warning: code location 'analytics': job 'local_job' would not run on the "
                      "stack's queues: its executor 'in_process' runs the steps itself, not on the stack's Celery "
                      "workers; use dagster_celery_aws's celery_executor (on Definitions(executor=...), so that "
                      "every job has it)"]  # fmt: skip
    assert image_check.problems(workspace, {"analytics"}, home, served={"dagster", "ml", "gpu"},
                                broker_url="amqp://broker//", warn=warned.append) == [
        line for line in found if "asset 'scores'" in line]  # fmt: skip


def test_the_example_location_passes_on_the_example_stacks_queues(tmp_path, monkeypatch):
    from infra.stackfile.config import load_stack_file

    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "amqp://broker//")
    monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", "db+postgresql+psycopg2://u@db/d")
    monkeypatch.setenv("DAGSTER_S3_BUCKET", "bucket")
    workspace, home = layout(tmp_path, {})
    workspace.write_text((REPO_ROOT / "worker_image" / "workspace.yaml").read_text())
    monkeypatch.chdir(REPO_ROOT)
    served = {q.name for q in load_stack_file(REPO_ROOT / "Pulumi.dev.yaml").queues}
    warned = []
    expected = {"dagster_project", "dagster_celery_aws_alerts"}  # the image's location and the runtime's alerts
    assert image_check.problems(workspace, expected, home, served=served,
                                broker_url="amqp://broker//", warn=warned.append) == []  # fmt: skip
    assert warned == []
    found = image_check.problems(workspace, expected, home, served={"dagster"},
                                 broker_url="amqp://broker//", warn=warned.append)  # fmt: skip
    # Materialize's implicit job, the asset job and the op job, each naming its step on the missing queue.
    assert sorted(line.split("'")[3] for line in found) == ["__ASSET_JOB", "assets_job", "example_job"]
    assert all("-> queue 'heavy'" in line for line in found)


def _main(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``python -m dagster_celery_aws.image_check`` as the daemon's task runs it: workspace.yaml in its working
    directory, the stack's locations and DAGSTER_HOME in its environment."""
    clean = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", image_check.LOCATIONS_VAR)}
    return subprocess.run([sys.executable, "-m", "dagster_celery_aws.image_check"], cwd=cwd, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_main_exits_0_on_a_kept_contract_and_1_naming_each_missing_part(tmp_path):
    workspace, home = layout(tmp_path, {"analytics": "present_module"}, alerts=True)
    ok = _main(workspace.parent, {"DAGSTER_HOME": home, image_check.LOCATIONS_VAR: "analytics"})
    assert (ok.returncode, ok.stdout.strip(), ok.stderr) == (0, "image contract: OK (analytics, dagster_celery_aws_alerts)", "")
    bad = _main(workspace.parent, {image_check.LOCATIONS_VAR: "analytics,ml"})  # no DAGSTER_HOME, ml lacking
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.splitlines() == [
        "image contract: $DAGSTER_HOME/dagster.yaml: not found (DAGSTER_HOME=None)",
        f"image contract: {workspace}: loads ['analytics', 'dagster_celery_aws_alerts'], the stack names "
        "['analytics', 'dagster_celery_aws_alerts', 'ml']",
    ]
    # A prebuilt image whose workspace lacks the alerts would send none: named.
    (tmp_path / "old").mkdir()
    without, _ = layout(tmp_path / "old", {"analytics": "present_module"})
    stale = _main(without.parent, {"DAGSTER_HOME": home, image_check.LOCATIONS_VAR: "analytics"})
    assert stale.returncode == 1 and "the stack names ['analytics', 'dagster_celery_aws_alerts']" in stale.stderr
    nowhere = tmp_path / "empty"
    nowhere.mkdir()
    missing = _main(nowhere, {"DAGSTER_HOME": home, image_check.LOCATIONS_VAR: "analytics"})
    assert missing.returncode == 1 and missing.stderr.strip() == f"image contract: {nowhere / 'workspace.yaml'}: not found"
