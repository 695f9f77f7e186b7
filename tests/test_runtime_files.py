"""The runtime files of the image (worker_image/, the runtime package's celery_config.yaml) and the example
code location (dagster_project/), checked with the schemas and classes of the tools that read them (Dagster, dagster-aws, dagster-celery,
Celery), under the environment that the task definitions set (infra/specs/contract.py)."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import os
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from celery.app.defaults import NAMESPACES as CELERY_SETTINGS
from celery.app.defaults import flatten
from dagster._config import process_config, validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster_postgres.utils import pg_url_from_config
from moto import mock_aws

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dagster_celery_aws.celery_config import PACKAGED as CELERY_YAML  # noqa: E402
from dagster_celery_aws.storage import OUTAGE_SECONDS, PostgresStorage  # noqa: E402

from infra.specs import contract  # noqa: E402

IMAGE_DIR = ROOT / "worker_image"
DAGSTER_YAML = IMAGE_DIR / "dagster.yaml"
WORKSPACE_YAML = IMAGE_DIR / "workspace.yaml"
DOCKERFILE = IMAGE_DIR / "Dockerfile"
REQUIREMENTS = IMAGE_DIR / "requirements.txt"

RUN_TASK_FAMILY = "dagster-run"
SAMPLE_ENV = {
    contract.PG_HOST: "db.internal",
    contract.PG_PORT: "5433",
    contract.PG_DB: "dagster",
    contract.PG_USERNAME: "dagster_user",
    contract.PG_PASSWORD: "s3cret",
    contract.S3_BUCKET: "sample-bucket",
    contract.RUN_TASK_DEFINITION: RUN_TASK_FAMILY,
    contract.BROKER_URL: "amqps://user:pw@broker.internal:5671/",
    contract.BACKEND_URL: "db+postgresql+psycopg2://dagster_user:s3cret@db.internal:5433/dagster",
    contract.REGION: "eu-west-1",
}


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def _env_refs(node: Any) -> list[str]:
    """Every `{env: NAME}` in a parsed YAML document."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return [node["env"]]
        return [ref for value in node.values() for ref in _env_refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _env_refs(value)]
    return []


@pytest.fixture
def contract_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in SAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    # Offline AWS: moto, fake credentials, no local endpoint override.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "DAGSTER_CELERY_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return dict(SAMPLE_ENV)


def _class(section: dict[str, Any]):
    return getattr(importlib.import_module(section["module"]), section["class"])


def _processed(section: dict[str, Any]) -> dict[str, Any]:
    result = process_config(_class(section).config_type(), section.get("config") or {})
    assert result.success, [error.message for error in result.errors or []]
    return result.value


# --- dagster.yaml -------------------------------------------------------------------------------


def test_dagster_yaml_passes_the_instance_schema(contract_env):
    config, custom_class = dagster_instance_config(str(IMAGE_DIR))
    assert custom_class is None
    assert set(config) >= {"storage", "run_launcher", "run_coordinator", "compute_logs"}
    assert config["telemetry"] == {"enabled": False}
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["max_resume_run_attempts"] == 0
    assert monitoring["start_timeout_seconds"] > 0 and monitoring["cancel_timeout_seconds"] > 0


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {key for value in node.values() for key in _keys(value)}
    if isinstance(node, list):
        return {key for value in node for key in _keys(value)}
    return set()


def test_dagster_yaml_has_no_endpoint_url():
    # Locally the endpoint comes from boto3's own AWS_ENDPOINT_URL_S3; on AWS there is none.
    assert "endpoint_url" not in _keys(_load(DAGSTER_YAML))


def test_storage_resolves_to_psycopg2_url(contract_env):
    storage = _load(DAGSTER_YAML)["storage"]
    assert set(storage) == {"custom"} and _class(storage["custom"]) is PostgresStorage
    value = _processed(storage["custom"])
    db = value["postgres_db"]
    assert db["port"] == 5433 and db["username"] == "dagster_user" and db["password"] == "s3cret"
    url = pg_url_from_config(value)
    assert url.startswith("postgresql+psycopg2://dagster_user:s3cret@db.internal:5433/dagster")
    assert value["outage_seconds"] == OUTAGE_SECONDS  # docs/reliability.md, "Outage bounds"


def test_storage_fails_without_its_environment(contract_env, monkeypatch):
    monkeypatch.delenv(contract.PG_PASSWORD)
    result = process_config(PostgresStorage.config_type(), _load(DAGSTER_YAML)["storage"]["custom"]["config"])
    assert not result.success
    assert contract.PG_PASSWORD in " ".join(error.message for error in result.errors)


def test_compute_log_manager_builds_from_env(contract_env):
    section = _load(DAGSTER_YAML)["compute_logs"]
    assert section["class"] == "S3ComputeLogManager"
    value = _processed(section)
    assert value["bucket"] == "sample-bucket"
    assert value["prefix"] == contract.COMPUTE_LOGS_PREFIX
    manager = _class(section).from_config_value(None, value)
    assert manager._s3_bucket == "sample-bucket"  # noqa: SLF001
    # dagster-aws's manager, capturing with the thread mirror (dagster_celery_aws.compute_logs)
    from dagster_aws.s3 import S3ComputeLogManager

    from dagster_celery_aws.compute_logs import ThreadMirroredLocalComputeLogManager

    assert isinstance(manager, S3ComputeLogManager)
    assert isinstance(manager.local_manager, ThreadMirroredLocalComputeLogManager)


def test_ecs_run_launcher_uses_the_given_task_definition(contract_env):
    section = _load(DAGSTER_YAML)["run_launcher"]
    assert section["class"] == "RunLauncher"  # runs mode "task" (DCA_RUNS_MODE unset) returns EcsRunLauncher
    value = _processed(section)
    assert value["container_name"] == contract.RUN_CONTAINER
    assert value["secrets_tag"] is None  # secrets come from the task definition, no tag look-up
    with mock_aws():
        ecs = boto3.client("ecs")
        arn = ecs.register_task_definition(
            family=RUN_TASK_FAMILY,
            containerDefinitions=[{"name": contract.RUN_CONTAINER, "image": "img:1", "memory": 512}],
        )["taskDefinition"]["taskDefinitionArn"]
        launcher = _class(section).from_config_value(None, value)
    from dagster_celery_aws.run_launcher import EcsRunLauncher

    assert type(launcher) is EcsRunLauncher
    assert launcher.task_definition == arn
    assert launcher.container_name == contract.RUN_CONTAINER
    assert launcher.secrets_tags == []
    assert launcher.use_current_ecs_task_config is True


def test_ecs_run_launcher_rejects_a_task_definition_without_the_run_container(contract_env):
    section = _load(DAGSTER_YAML)["run_launcher"]
    with mock_aws():
        boto3.client("ecs").register_task_definition(
            family=RUN_TASK_FAMILY,
            containerDefinitions=[{"name": "other", "image": "img:1", "memory": 512}],
        )
        with pytest.raises(Exception, match="container is not defined"):
            _class(section).from_config_value(None, _processed(section))


def test_runs_mode_daemon_launches_from_the_code_server_and_reads_no_ecs_setting(contract_env, monkeypatch):
    from dagster._core.launcher import DefaultRunLauncher
    from dagster_celery_aws.run_launcher import DaemonRunLauncher

    section = _load(DAGSTER_YAML)["run_launcher"]
    monkeypatch.setenv(contract.RUNS_MODE, "daemon")
    monkeypatch.delenv(contract.RUN_TASK_DEFINITION)  # mode daemon: no task has it
    with mock_aws():  # no ECS call: nothing registered, and none is made
        launcher = _class(section).from_config_value(None, _processed(section))
    # Dagster's own launcher, with the run worker health check run monitoring needs (tests/test_faults.py, fault 15)
    assert type(launcher) is DaemonRunLauncher and isinstance(launcher, DefaultRunLauncher)
    assert launcher.supports_check_run_worker_health


def test_the_daemon_launchers_health_check_tells_a_busy_code_server_from_a_gone_one(monkeypatch):
    """The branches fault 15 (tests/test_faults.py) does not reach with a live server: a deadline exceeded is
    a busy server (running, transient); any other unreachable server is gone (failed); no tag, nothing to ask."""
    import grpc
    from dagster import DagsterRun
    from dagster._core.errors import DagsterUserCodeUnreachableError
    from dagster._core.launcher import WorkerStatus
    from dagster._core.storage.tags import GRPC_INFO_TAG

    from dagster_celery_aws import run_launcher

    class Rpc(grpc.RpcError):
        def __init__(self, code):
            self._code = code

        def code(self):
            return self._code

    def client_raising(code):
        class Client:
            def __init__(self, **kwargs):
                pass

            def can_cancel_execution(self, request, timeout):
                try:
                    raise Rpc(code)
                except Rpc as rpc:
                    raise DagsterUserCodeUnreachableError("unreachable") from rpc

        return Client

    launcher = run_launcher.DaemonRunLauncher()
    run = DagsterRun(job_name="j", tags={GRPC_INFO_TAG: '{"host": "localhost", "socket": "/tmp/gone.sock"}'})
    monkeypatch.setattr(run_launcher, "DagsterGrpcClient", client_raising(grpc.StatusCode.DEADLINE_EXCEEDED))
    busy = launcher.check_run_worker_health(run)
    assert (busy.status, busy.transient) == (WorkerStatus.RUNNING, True)
    monkeypatch.setattr(run_launcher, "DagsterGrpcClient", client_raising(grpc.StatusCode.UNAVAILABLE))
    gone = launcher.check_run_worker_health(run)
    assert gone.status == WorkerStatus.FAILED and "is gone" in gone.msg
    assert launcher.check_run_worker_health(DagsterRun(job_name="j")).status == WorkerStatus.RUNNING


@pytest.mark.parametrize("mode", ["task", "daemon"])
def test_the_instance_loads_the_launcher_of_each_mode_as_dagster_does(contract_env, monkeypatch, mode):
    # As `dagster instance migrate` and every process load it: rehydrated as a RunLauncher (Dagster checks the class).
    from dagster._core.launcher import RunLauncher
    from dagster._serdes import ConfigurableClassData
    from dagster_celery_aws.run_launcher import DaemonRunLauncher, EcsRunLauncher

    section = _load(DAGSTER_YAML)["run_launcher"]
    monkeypatch.setenv(contract.RUNS_MODE, mode)
    data = ConfigurableClassData(section["module"], section["class"], yaml.safe_dump(section["config"]))
    with mock_aws():
        boto3.client("ecs").register_task_definition(
            family=RUN_TASK_FAMILY, containerDefinitions=[{"name": contract.RUN_CONTAINER, "image": "img:1", "memory": 512}]
        )
        launcher = data.rehydrate(as_type=RunLauncher)
    assert type(launcher) is {"task": EcsRunLauncher, "daemon": DaemonRunLauncher}[mode]


def test_an_unknown_runs_mode_is_named(contract_env, monkeypatch):
    section = _load(DAGSTER_YAML)["run_launcher"]
    monkeypatch.setenv(contract.RUNS_MODE, "lambda")
    with pytest.raises(ValueError, match="DCA_RUNS_MODE='lambda' is not a runs mode; valid: task, daemon"):
        _class(section).from_config_value(None, _processed(section))


def test_the_runtime_knows_the_stacks_runs_modes():
    from dagster_celery_aws import run_launcher

    from infra.stackfile.config import RunsMode

    assert run_launcher.RUNS_MODE == contract.RUNS_MODE
    assert run_launcher.MODES == tuple(m.value for m in RunsMode)


# --- celery_config.yaml ---------------------------------------------------------------------------


def test_celery_config_passes_the_executor_schema(contract_env):
    from dagster_celery.cli import get_validated_config
    from dagster_celery.executor import celery_executor

    raw = _load(CELERY_YAML)["execution"]["config"]
    assert validate_config(celery_executor.config_schema.config_type, raw).success
    validated = get_validated_config(str(CELERY_YAML))  # what `dagster-celery worker start -y` does
    assert validated["broker"] == SAMPLE_ENV[contract.BROKER_URL]
    assert validated["backend"] == SAMPLE_ENV[contract.BACKEND_URL]


def test_celery_config_source_keys_are_celery_settings():
    known = {name for name, _ in flatten(CELERY_SETTINGS)}
    source = _load(CELERY_YAML)["execution"]["config"]["config_source"]
    unknown = sorted(set(source) - known)
    assert not unknown, f"not Celery settings: {unknown}"


def _check_reliability_settings(conf) -> None:
    assert conf.broker_url == SAMPLE_ENV[contract.BROKER_URL]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_redirect_stdouts is False
    assert conf.broker_connection_retry_on_startup is True
    assert conf.task_default_queue == "dagster"
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is False


def test_celery_settings_of_the_run_worker(contract_env):
    """The app that the project's celery_executor sends steps with (executor config -> make_app)."""
    from dagster._core.execution.retries import RetryMode
    from dagster_celery.cli import get_validated_config
    from dagster_celery.make_app import make_app

    from dagster_celery_aws.executor import TunedCeleryExecutor

    validated = dict(get_validated_config(str(CELERY_YAML)))
    validated.pop("retries")
    executor = TunedCeleryExecutor(retries=RetryMode.DISABLED, **validated)
    _check_reliability_settings(make_app(executor.app_args()).conf)


def test_celery_settings_of_the_workers(contract_env, monkeypatch, tmp_path):
    """The app the workers run, `celery -A dagster_celery.app worker`: `make_app()` imports the runtime's
    `dagster_celery_config` module, which resolves the packaged celery_config.yaml in memory."""
    from dagster_celery.make_app import make_app

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # any working directory
    monkeypatch.delitem(sys.modules, "dagster_celery_config", raising=False)
    try:
        conf = make_app().conf
        _check_reliability_settings(conf)
        assert conf.broker_url == os.environ["DAGSTER_CELERY_BROKER_URL"]
        # results in PostgreSQL, stored by Celery's database backend that also notifies the run worker
        backend = SAMPLE_ENV[contract.BACKEND_URL]
        assert conf.result_backend == f"dagster_celery_aws.result_notices:NotifyingDatabaseBackend+{backend[3:]}"
    finally:
        sys.modules.pop("dagster_celery_config", None)
    assert not any(tmp_path.rglob("*")), "the broker URL must not be written to disk"


# --- both YAMLs and the contract -----------------------------------------------------------------


@pytest.mark.parametrize("path", [DAGSTER_YAML, CELERY_YAML], ids=lambda p: p.name)
def test_env_references_are_contract_names(path):
    refs = _env_refs(_load(path))
    assert refs, f"no env: references in {path.name}"
    allowed = set(contract.PLAIN_VARS) | set(contract.SECRET_VARS)
    assert set(refs) <= allowed, sorted(set(refs) - allowed)


def test_every_dagster_contract_var_is_read_by_a_runtime_file():
    refs = set(_env_refs(_load(DAGSTER_YAML))) | set(_env_refs(_load(CELERY_YAML)))
    ours = {v for v in (*contract.PLAIN_VARS, *contract.SECRET_VARS) if v.startswith("DAGSTER_")}
    assert ours <= refs, sorted(ours - refs)


def test_workspace_loads_the_project_module_and_the_alerts():
    from infra.specs import code_locations

    project, alerts = _load(WORKSPACE_YAML)["load_from"]
    assert project["python_module"]["module_name"] == "dagster_project"
    # The image's own workspace ends as every generated one does: with the runtime's alert sensors.
    assert alerts == code_locations.workspace((), in_image=True)["load_from"][-1] == code_locations.ALERTS


# --- dagster_project -----------------------------------------------------------------------------


@pytest.fixture
def project(contract_env):
    import dagster_project

    return dagster_project


def test_definitions_load_with_celery_executor(project):
    job = project.defs.resolve_job_def("example_job")
    from dagster_celery_aws import celery_executor, executor

    assert job.executor_def is celery_executor and celery_executor.name == "celery"
    assert celery_executor.executor_creation_fn is executor.tuned_celery_executor.executor_creation_fn
    # The executor is configured from the same file as the workers, resolved the same way.
    from dagster_celery_aws.celery_config import resolved_config

    assert celery_executor.config_schema.resolve_config({}).value["config"] == resolved_config(CELERY_YAML)


def test_example_job_uses_both_queues_and_a_priority(project):
    job = project.defs.resolve_job_def("example_job")
    tags = {node.name: dict(node.definition.tags) for node in job.nodes}
    queues = {name: t.get("dagster-celery/queue", "dagster") for name, t in tags.items()}
    assert set(queues.values()) == {"dagster", "heavy"}
    assert any("dagster-celery/priority" in t for t in tags.values())
    assert len(tags) >= 4  # a fan-out and a join


def test_io_manager_is_s3_pickle_on_the_contract_bucket(project, monkeypatch):
    from dagster import build_resources
    from dagster_aws.s3.io_manager import PickledObjectS3IOManager

    from dagster_celery_aws import s3

    assert (s3.S3_BUCKET_VAR, s3.IO_PREFIX) == (contract.S3_BUCKET, contract.IO_PREFIX)
    monkeypatch.setenv(contract.S3_BUCKET, "sample-bucket")
    with mock_aws():
        boto3.client("s3").create_bucket(
            Bucket="sample-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        with build_resources({"io_manager": project.defs.resources["io_manager"]}) as resources:
            io_manager = resources.io_manager
    assert isinstance(io_manager, PickledObjectS3IOManager)  # dagster-aws's, as S3PickleIOManager uses
    assert (io_manager.bucket, str(io_manager._base_path)) == ("sample-bucket", contract.IO_PREFIX)  # noqa: SLF001


def test_example_job_values_go_to_the_bucket(project):
    """The job's logic and I/O manager, in process (no Celery) against moto's S3."""
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(
            Bucket="sample-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        result = project.defs.resolve_job_def("example_job").execute_in_process()
        keys = [obj["Key"] for obj in s3.list_objects_v2(Bucket="sample-bucket")["Contents"]]
    assert result.success
    assert result.output_for_node("join") == sum(30 + i for i in range(4))
    assert any(key.startswith(f"{contract.IO_PREFIX}/") and key.endswith("/join/result") for key in keys)


def test_celery_config_path_override(monkeypatch, tmp_path):
    from dagster_celery_aws import celery_config

    monkeypatch.delenv(celery_config.CONFIG_PATH_VAR, raising=False)
    assert celery_config.config_path() == CELERY_YAML
    other = tmp_path / "celery.yaml"
    other.write_text("execution:\n  config:\n    broker: filesystem://\n", encoding="utf-8")
    monkeypatch.setenv(celery_config.CONFIG_PATH_VAR, str(other))
    assert celery_config.executor_config() == {"broker": "filesystem://"}
    assert celery_config.celery_settings()["broker_url"] == "filesystem://"
    monkeypatch.setenv(celery_config.CONFIG_PATH_VAR, str(tmp_path / "missing.yaml"))
    with pytest.raises(FileNotFoundError):
        celery_config.config_path()


def test_celery_settings_need_every_variable_they_name(contract_env, monkeypatch):
    from dagster_celery_aws import celery_config

    monkeypatch.delenv(contract.BROKER_URL)
    with pytest.raises(RuntimeError, match="could not resolve"):
        celery_config.celery_settings()


# --- the image -----------------------------------------------------------------------------------


def _pins() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"not an exact pin: {line!r}"
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


@pytest.mark.parametrize(
    "package",
    ["dagster", "dagster-celery", "dagster-aws", "dagster-postgres", "dagster-webserver", "celery",
     "kombu", "boto3", "psycopg2-binary"],
)
def test_image_pins_match_the_test_environment(package):
    assert _pins()[package] == importlib.metadata.version(package)


def test_dockerfile_layout():
    text = DOCKERFILE.read_text(encoding="utf-8")
    base = re.search(r"^FROM\s+python:(\d+)\.(\d+)\.\d+-slim\S*\s*$", text, re.M)
    assert base, "base image must be python:X.Y.Z-slim..."
    assert (int(base[1]), int(base[2])) == sys.version_info[:2]
    assert f"WORKDIR {contract.APP_DIR}" in text
    assert f"DAGSTER_HOME={contract.DAGSTER_HOME}" in text
    assert re.search(r"^USER 10001(:10001)?\s*$", text, re.M)
    assert "--no-cache-dir" in text and "requirements.txt" in text
    for source in ("dagster_project/", "runtime/", "worker_image/dagster.yaml", "worker_image/workspace.yaml"):
        assert source in text
