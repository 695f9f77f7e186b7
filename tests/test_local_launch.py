"""The local runner launches what the UI launches, through the webserver's GraphQL: assets selected with
Materialize, one partition, a backfill of two partitions, run tags; it serves the UI with no job to run, prints
a failed step's error under its report, warns about secrets the shell lacks, and its embedded S3 keeps objects
across a restart.

The asset project is written to a directory outside the repository; RabbitMQ and PostgreSQL are the real ones
on 127.0.0.1, the S3 API a moto server the test starts (the embedded one is tested on its own).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import wait_for
from tests.test_local_e2e import REPO_ROOT, RUN_LINE, events, pg_url, placement, rabbit_url, run_local, s3  # noqa: F401

ASSETS = '''
from dagster import AssetExecutionContext, DailyPartitionsDefinition, Definitions, asset

from dagster_celery_aws import celery_executor, deployment_resources

QUEUE = "dagster-celery/queue"
daily = DailyPartitionsDefinition(start_date="2024-01-01")


@asset(group_name="raw")
def numbers():
    return [1, 2, 3]


@asset(group_name="model", op_tags={QUEUE: "ml"})
def total(numbers):
    return sum(numbers)


@asset(group_name="raw", partitions_def=daily)
def daily_raw(context: AssetExecutionContext):
    return context.partition_key


@asset(group_name="model", partitions_def=daily, op_tags={QUEUE: "ml"})
def daily_summary(context: AssetExecutionContext, daily_raw):
    assert daily_raw == context.partition_key
    return f"summary of {daily_raw}"


@asset(group_name="model")
def broken(numbers):
    raise ValueError("the model needs more numbers than " + str(len(numbers)))


defs = Definitions(assets=[numbers, total, daily_raw, daily_summary, broken], executor=celery_executor,
                   resources=deployment_resources())
'''
STEP = re.compile(r"^\s+(\w+)\s+(\S+)\s+(\S+@\S+)\s+\S+ s\s+(SUCCESS|FAILURE)$", re.M)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("asset-project")
    (root / "asset_code").mkdir()
    (root / "asset_code" / "__init__.py").write_text(textwrap.dedent(ASSETS))
    return root


def stack(tmp_path: Path, project: Path, access: dict | None = None) -> Path:
    config = {"queues": [{"name": "dagster"}, {"name": "ml"}],
              "codeLocations": [{"name": "assets", "path": str(project), "module": "asset_code"}]}  # fmt: skip
    if access:
        config["access"] = access
    path = tmp_path / "Pulumi.assets.yaml"
    path.write_text(yaml.safe_dump({"config": {f"dagster-celery-aws:{k}": v for k, v in config.items()}}))
    return path


def services(rabbit_url, pg_url, s3) -> list[str]:  # noqa: F811
    return ["--broker-url", rabbit_url, "--database-url", pg_url, "--s3-endpoint", s3[0]]


def runs(stdout: str) -> list[tuple[str, str, str]]:
    return [(m["run_id"], m["job"], m["status"]) for m in RUN_LINE.finditer(stdout)]


def test_materialize_a_selection_in_one_partition_with_tags(tmp_path, project, rabbit_url, pg_url, s3):  # noqa: F811
    proc = run_local(tmp_path, "--once", "--stack-file", str(stack(tmp_path, project)), *services(rabbit_url, pg_url, s3),
                     "--select", "daily_raw,daily_summary", "--partition", "2024-01-02", "--tag", "team=analytics")  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    ((run_id, job, status),) = runs(proc.stdout)
    assert (job, status) == ("__ASSET_JOB", "SUCCESS")
    assert {s: q for s, q, _, _ in STEP.findall(proc.stdout)} == {"daily_raw": "dagster", "daily_summary": "ml"}
    where = placement(events(pg_url, run_id))
    assert {s: (q, n.split("@")[0]) for s, (q, n) in where.items()} == {"daily_raw": ("dagster", "dagster"),
                                                                         "daily_summary": ("ml", "ml")}  # fmt: skip
    from dagster._core.storage.dagster_run import DagsterRun  # the run's tags, as the UI sets them
    import psycopg2
    from dagster._serdes import deserialize_value

    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT run_body FROM runs WHERE run_id = %s", (run_id,))
        run = deserialize_value(cur.fetchone()[0], DagsterRun)
    assert run.tags["dagster/partition"] == "2024-01-02" and run.tags["team"] == "analytics"
    assert run.asset_selection == {__import__("dagster").AssetKey("daily_raw"), __import__("dagster").AssetKey("daily_summary")}


def test_a_two_partition_backfill_runs_each_partition(tmp_path, project, rabbit_url, pg_url, s3):  # noqa: F811
    proc = run_local(tmp_path, "--once", "--stack-file", str(stack(tmp_path, project)), *services(rabbit_url, pg_url, s3),
                     "--select", "daily_raw,daily_summary", "--backfill", "2024-01-03,2024-01-04")  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert re.search(r"^submitted backfill \w+: backfill of assets daily_raw, daily_summary", proc.stdout, re.M)
    done = runs(proc.stdout)
    assert len(done) == 2 and all(status == "SUCCESS" for _, _, status in done), done
    import psycopg2

    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT value FROM run_tags WHERE key = 'dagster/partition' AND run_id = ANY(%s)",
                    ([r for r, _, _ in done],))  # fmt: skip
        assert sorted(v for (v,) in cur.fetchall()) == ["2024-01-03", "2024-01-04"]


def test_a_failed_step_error_is_printed_under_the_report(tmp_path, project, rabbit_url, pg_url, s3):  # noqa: F811
    proc = run_local(tmp_path, "--once", "--stack-file", str(stack(tmp_path, project)), *services(rabbit_url, pg_url, s3),
                     "--select", "numbers,broken")  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert runs(proc.stdout)[0][2] == "FAILURE"
    report = proc.stdout[proc.stdout.index("step broken failed:"):]
    assert 'Error occurred while executing op "broken"' in report.splitlines()[0]
    assert "ValueError: the model needs more numbers than 3" in report


def test_without_a_job_the_ui_serves_every_location_and_the_secrets_lacking_are_named(
    tmp_path, project, rabbit_url, pg_url, s3  # noqa: F811
):
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/token-AbCdEf"
    sf = stack(tmp_path, project, access={"secrets": {"TEAM_TOKEN": arn}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCA_") and k != "TEAM_TOKEN"}
    argv = [sys.executable, "-m", "infra.local", "up", "--state-dir", str(tmp_path / "state"), "--port", "0",
            "--stack-file", str(sf), *services(rabbit_url, pg_url, s3)]  # fmt: skip
    log = open(tmp_path / "runner.log", "w+")
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def serving():
            assert proc.poll() is None, (tmp_path / "runner.log").read_text()[-3000:]
            return "nothing to launch" in (tmp_path / "runner.log").read_text()

        wait_for("the runner serving with nothing to launch", serving, timeout=300, interval=1)
        out = (tmp_path / "runner.log").read_text()
        url = re.search(r"^webserver: (http://127\.0\.0\.1:\d+)$", out, re.M)[1]
        assert f"warning: secret TEAM_TOKEN (for every process) is not set in this shell: its value, {arn}, is " \
               f"readable only on AWS" in out
        assert "nothing to launch" in out and "submitted" not in out
        query = json.dumps({"query": "{ workspaceOrError { ... on Workspace { locationEntries { name "
                                     "locationOrLoadError { __typename } } } } }"}).encode()  # fmt: skip
        with urllib.request.urlopen(urllib.request.Request(f"{url}/graphql", query, {"Content-Type": "application/json"})) as r:
            entries = json.loads(r.read())["data"]["workspaceOrError"]["locationEntries"]
        # the user's location, and the runtime's pipeline alerts (docs/operations.md) which every workspace loads
        assert [(e["name"], e["locationOrLoadError"]["__typename"]) for e in entries] == [
            ("assets", "RepositoryLocation"), ("dagster_celery_aws_alerts", "RepositoryLocation")]

        # dagster-celery's own command on the file the runner printed: the topology's two workers answer.
        cli = re.search(r"^workers: dagster-celery worker list -y (\S+)$", out, re.M)[1]
        assert oct(Path(cli).stat().st_mode & 0o777) == "0o600"
        listed = subprocess.run([str(Path(sys.executable).with_name("dagster-celery")), "worker", "list", "-y", cli],
                                capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
        assert listed.returncode == 0, listed.stderr[-2000:]
        assert re.search(r"'dagster@[^']+': \[\]", listed.stdout) and re.search(r"'ml@[^']+': \[\]", listed.stdout)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        log.close()


def test_after_a_restart_an_asset_reads_its_upstream_from_the_embedded_s3(tmp_path, project):
    """Embedded services only: daily_summary in a second runner session loads daily_raw's output, written by the
    first session, from the embedded S3 (moto keeps nothing itself; the runner saved it under the state dir)."""
    sf = str(stack(tmp_path, project))
    first = run_local(tmp_path, "--once", "--stack-file", sf, "--select", "daily_raw", "--partition", "2024-01-05")
    assert first.returncode == 0 and runs(first.stdout)[0][2] == "SUCCESS", first.stdout[-3000:]
    second = run_local(tmp_path, "--once", "--stack-file", sf, "--select", "daily_summary", "--partition", "2024-01-05")
    assert re.search(r"objects kept in \S+/state/s3: [1-9]\d* loaded", second.stdout)
    assert second.returncode == 0 and runs(second.stdout)[0][2] == "SUCCESS", second.stdout[-3000:]


def test_the_embedded_s3_keeps_its_objects_across_a_restart(tmp_path):
    """Two sessions in this process: moto's backend is one per process, so it is emptied before each session,
    as a new runner process starts with an empty one (the end-to-end test above uses two processes)."""
    from moto.moto_api._internal.models import moto_api_backend

    from infra.local import services as svc_mod

    moto_api_backend.reset()
    first = svc_mod.start(None, None, None, "kept", tmp_path)
    try:
        client = svc_mod.s3_client(first.s3_endpoint)
        client.put_object(Bucket="kept", Key="io/numbers", Body=b"\x80pickled")
        client.put_object(Bucket="kept", Key="logs/../odd key", Body=b"log")
    finally:
        first.close()
    moto_api_backend.reset()
    second = svc_mod.start(None, None, None, "kept", tmp_path)
    try:
        assert "2 loaded" in " ".join(second.described)
        client = svc_mod.s3_client(second.s3_endpoint)
        assert client.get_object(Bucket="kept", Key="io/numbers")["Body"].read() == b"\x80pickled"
        assert client.get_object(Bucket="kept", Key="logs/../odd key")["Body"].read() == b"log"
    finally:
        second.close()


def test_unset_secrets_are_named_with_where_they_go():
    from infra.stackfile.config import parse
    from infra.local.runner import warn_unset_secrets

    token = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ml-token-AbCdEf"
    param = "arn:aws:ssm:eu-west-1:123456789012:parameter/team/key"
    cfg = parse({"queues": [{"name": "dagster"}, {"name": "ml", "access": {"secrets": {"ML_TOKEN": token}}}],
                 "access": {"secrets": {"TEAM_KEY": param}}})  # fmt: skip
    lines = warn_unset_secrets(cfg, {"TEAM_KEY": "set"})
    assert lines == [f"warning: secret ML_TOKEN (for queue ml's workers) is not set in this shell: its value, {token}, "
                     f"is readable only on AWS; export ML_TOKEN=... before starting to give it a local value"]
    assert warn_unset_secrets(cfg, {"TEAM_KEY": "set", "ML_TOKEN": "set"}) == []
