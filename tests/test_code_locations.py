"""A user's own code location, from a directory outside this repository, with a dependency the example does
not have and a queue with a secret and an IAM statement of its own: run by the local runner on RabbitMQ,
PostgreSQL and an S3 API, and declared by the Pulumi program under mocks (image, workspace, roles, secrets)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from infra.specs import code_locations
from infra.aws.components.image import WORKSPACE_CONTEXT
from infra.stackfile.config import ConfigError, load_stack_file, parse
from infra.tools.testing import reveal, run_stack
from tests.test_local_e2e import RUN_LINE, pg_url, rabbit_url, run_local, s3  # noqa: F401 (fixtures)

ML_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ml-token-AbCdEf"
MODEL_READ = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::acme-models/*"}

CODE = '''
import os

import tinydep
from dagster import Definitions, job, op

from dagster_celery_aws import celery_executor, deployment_resources


@op
def prepare():
    # Every task gets the stack's variables; a queue's own secret reaches that queue's workers only (the others
    # hold a placeholder, so that EnvVar config resolves everywhere: dagster_celery_aws.scoped_env).
    assert os.environ["TEAM"] == "analytics"
    assert os.environ["ML_TOKEN"] == "[not granted here: ML_TOKEN is for queue(s) ml only]"
    return 20


@op(tags={"dagster-celery/queue": "ml"})
def train(n):
    assert os.environ["ML_TOKEN"] == "token-for-ml-only"
    return tinydep.double(n)


@op
def report(model):
    assert model == 40
    return model


@job(executor_def=celery_executor)
def train_job():
    report(train(prepare()))


defs = Definitions(jobs=[train_job], resources=deployment_resources())
'''


@pytest.fixture(scope="module")
def location(tmp_path_factory) -> Path:
    """The code location: analytics_code/ and a requirements.txt naming a wheel of its own dependency."""
    root = tmp_path_factory.mktemp("analytics")
    package = root / "analytics_code"
    package.mkdir()
    (package / "__init__.py").write_text(CODE)
    wheel = write_wheel(root / "wheels", "tinydep", "1.0", {"tinydep/__init__.py": "def double(x):\n    return 2 * x\n"})
    (root / "requirements.txt").write_text(f"./wheels/{wheel.name}\n")
    return root


def write_wheel(directory: Path, name: str, version: str, files: dict[str, str]) -> Path:
    """A pure-Python wheel (PEP 427), written directly: no build backend, no network."""
    directory.mkdir(parents=True, exist_ok=True)
    info = f"{name}-{version}.dist-info"
    files = {**files, f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = [f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()},"
              f"{len(text.encode())}" for path, text in files.items()]  # fmt: skip
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
        zf.writestr(f"{info}/RECORD", "\n".join([*record, f"{info}/RECORD,,"]) + "\n")
    return wheel


def stack_config(location: Path) -> dict:
    return {
        "queues": [
            {"name": "dagster"},
            {"name": "ml", "access": {"secrets": {"ML_TOKEN": ML_SECRET}, "iamStatements": [MODEL_READ]}},
        ],
        "codeLocations": [{"name": "analytics", "path": str(location), "module": "analytics_code"}],
        "access": {"environment": {"TEAM": "analytics"}},
        "operations": {"flower": True},
    }


def write_stack(tmp_path: Path, location: Path) -> Path:
    path = tmp_path / "Pulumi.analytics.yaml"
    path.write_text(yaml.safe_dump({"config": {f"dagster-celery-aws:{k}": v for k, v in stack_config(location).items()}}))
    return path


def test_the_local_runner_runs_the_code_location_with_every_step_on_its_queue(
    tmp_path, location, rabbit_url, pg_url, s3, monkeypatch  # noqa: F811
):
    assert "tinydep" not in sys.modules and not any(Path(p, "tinydep").exists() for p in sys.path if p)
    monkeypatch.setenv("ML_TOKEN", "token-for-ml-only")  # locally, a secret comes from the shell by its name
    endpoint, _client = s3
    proc = run_local(
        tmp_path, "--once", "--stack-file", str(write_stack(tmp_path, location)), "--job", "train_job",
        "--broker-url", rabbit_url, "--database-url", pg_url, "--s3-endpoint", endpoint,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert RUN_LINE.search(proc.stdout).group("status") == "SUCCESS"
    assert re.search(r"^flower: http://127\.0\.0\.1:\d+/flower$", proc.stdout, re.M)  # answered its health check
    placed = dict(re.findall(r"^\s+(prepare|train|report)\s+(\S+)\s+\S+@", proc.stdout, re.M))
    assert placed == {"prepare": "dagster", "train": "ml", "report": "dagster"}
    # The dependency came from the location's requirements, installed for the runner's processes.
    assert list((tmp_path / "state" / "code" / "analytics").glob("tinydep*"))


def test_pulumi_builds_the_location_into_the_image_and_gives_the_queue_its_secret_and_role(location):
    stack = run_stack(config=stack_config(location), stack="analytics")
    (image,) = stack.of_type("docker-build:index:Image")
    assert image.inputs["context"]["named"]["code-analytics"] == {"location": str(location)}
    dockerfile = image.inputs["dockerfile"]["inline"]
    assert "COPY --from=code-analytics --chown=10001:10001 . /opt/dagster/code/analytics" in dockerfile
    # With the image's pins as constraints (kept in the image by worker_image/Dockerfile).
    assert "RUN pip install --no-cache-dir --constraint /opt/dagster/constraints.txt --requirement requirements.txt" in dockerfile
    assert "COPY worker_image/requirements.txt /opt/dagster/constraints.txt" in dockerfile
    assert dockerfile.rstrip().endswith("USER 10001:10001")
    workspace_dir = Path(image.inputs["context"]["named"][WORKSPACE_CONTEXT]["location"])
    assert yaml.safe_load((workspace_dir / "workspace.yaml").read_text()) == {"load_from": [{"python_module": {
        "module_name": "analytics_code", "location_name": "analytics", "working_directory": "/opt/dagster/code/analytics"}},
        code_locations.ALERTS]}  # and the runtime's pipeline alerts

    roles = {r.name: r for r in stack.of_type("aws:iam/role:Role")}
    assert "dagster-analytics-ecs-queue-ml" in roles
    policies = {p.name: json.loads(reveal(p.inputs["policy"])) for p in stack.of_type("aws:iam/rolePolicy:RolePolicy")}
    assert policies["dagster-analytics-ecs-queue-ml-user-code"]["Statement"] == [MODEL_READ]
    assert not any(MODEL_READ in doc["Statement"] for name, doc in policies.items() if "queue-ml" not in name)
    execution = policies["dagster-analytics-ecs-execution"]
    readable = [s["Resource"] for s in execution["Statement"] if s.get("Action") == "secretsmanager:GetSecretValue"][0]
    assert ML_SECRET in readable

    for taskdef in stack.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        containers = json.loads(taskdef.inputs["containerDefinitions"])
        main = next(c for c in containers if taskdef.name.endswith(f"-{c['name']}-task") or c["name"] == "run")
        secrets = {s["name"]: s["valueFrom"] for s in main["secrets"]}
        env = {e["name"]: e["value"] for e in main["environment"]}
        assert env["TEAM"] == "analytics", taskdef.urn
        if taskdef.name.endswith("-daemon-task"):
            assert env["DCA_CODE_LOCATIONS"] == "analytics", taskdef.urn  # what the image check expects
        is_ml = taskdef.name.endswith("-worker-ml-task")
        assert (secrets.get("ML_TOKEN") == ML_SECRET) == is_ml, taskdef.urn
        # Every other task resolves EnvVar("ML_TOKEN") to a placeholder naming the queue, never to a value.
        assert env.get("ML_TOKEN") == (None if is_ml else "[not granted here: ML_TOKEN is for queue(s) ml only]")
        if is_ml:
            assert taskdef.inputs["taskRoleArn"] == roles["dagster-analytics-ecs-queue-ml"].state["arn"]


# Names ending in '-' + 6 characters: the full ARN of "team/registry-secret" and of "prod/db-master" (with a JSON
# key), and "team/cache-master", which is a full ARN as Secrets Manager reads it (the secret "team/cache").
SUFFIXED = {
    "REGISTRY": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/registry-secret-Ab12Cd",
    "DB_PASSWORD": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-master-x9Y8z7:password::",
    "CACHE": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/cache-master",
}


def test_the_execution_role_reads_exactly_the_full_secret_arns_given():
    stack = run_stack(config={"queues": [{"name": "dagster"}], "access": {"secrets": SUFFIXED}}, stack="arns")
    policies = {p.name: json.loads(reveal(p.inputs["policy"])) for p in stack.of_type("aws:iam/rolePolicy:RolePolicy")}
    (read,) = [s for s in policies["dagster-arns-ecs-execution"]["Statement"] if s["Sid"] == "ReadStackSecrets"]
    users = {arn for arn in read["Resource"] if ":secret:team/" in arn or ":secret:prod/" in arn}
    # The ARN ECS asks for, without its JSON key, and no '-??????' that would match another secret's name.
    assert users == {
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/registry-secret-Ab12Cd",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-master-x9Y8z7",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/cache-master",
    }
    assert not any("?" in arn or "*" in arn for arn in read["Resource"])


def test_the_generated_dockerfile_passes_hadolint(location):
    stack = run_stack(config=stack_config(location), stack="analytics")
    (image,) = stack.of_type("docker-build:index:Image")
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    proc = subprocess.run([hadolint, "-"], input=image.inputs["dockerfile"]["inline"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "change, message",
    [
        ({"path": "/nonexistent/code"}, "codeLocations[0].path = '/nonexistent/code': no such directory"),
        ({"module": "missing_module"}, "codeLocations[0].module = 'missing_module': neither missing_module/__init__.py"),
        ({"requirements": "nope.txt"}, "codeLocations[0].requirements = 'nope.txt': no such file"),
    ],
)
def test_a_code_location_that_is_not_where_the_config_says_is_named_before_anything_is_built(location, change, message):
    cfg = stack_config(location)
    cfg["codeLocations"] = [{**cfg["codeLocations"][0], **change}]
    with pytest.raises(ConfigError) as err:
        code_locations.resolve(parse(cfg), location.parent)
    assert message in str(err.value)


def test_the_runner_refuses_a_missing_location_with_one_line(tmp_path, location):
    cfg = stack_config(location)
    cfg["codeLocations"][0]["path"] = str(tmp_path / "gone")
    path = tmp_path / "Pulumi.gone.yaml"
    path.write_text(yaml.safe_dump({"config": {f"dagster-celery-aws:{k}": v for k, v in cfg.items()}}))
    load_stack_file(path)  # valid on its own: the directory is checked where the code is loaded
    proc = run_local(tmp_path, "--once", "--stack-file", str(path))
    assert proc.returncode == 2 and "no such directory" in proc.stdout
