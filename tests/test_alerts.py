"""Pipeline alerts on real services: Dagster's daemon on the machine's PostgreSQL evaluates the runtime's alert
sensors (dagster_celery_aws.alert_sensors), which publish to an SNS topic of a moto server on 127.0.0.1; an SQS
queue subscribed to the topic receives what a subscriber would. A code location (tests/alert_code) gives them a
failing run, a run that waits, a sensor that always fails; another location does not load. Each event is
reported once: its claim is a row in Dagster's database, won by one process only, kept across restarts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from dagster import RunsFilter

from dagster_celery_aws import alerts
from infra.specs import code_locations
from tests.conftest import REPO_ROOT, postgres_database, s3_server, wait_for

SECRET = "pg-secret-value-123"  # a secret variable's value that a step's error quotes: never in a message
CODE = REPO_ROOT / "tests" / "alert_code"


class Stack:
    def __init__(self, tmp: Path, db: str, endpoint: str):
        import boto3

        self.tmp, self.endpoint = tmp, endpoint
        creds = {"region_name": "us-east-1", "aws_access_key_id": "local", "aws_secret_access_key": "local"}
        sns = boto3.client("sns", endpoint_url=endpoint, **creds)
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, **creds)
        self.topic = sns.create_topic(Name="alarms")["TopicArn"]
        self.queue = self.sqs.create_queue(QueueName="alarm-subscriber")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=queue_arn)
        self.received: list[dict] = []
        self.arrival: dict[str, float] = {}  # kind -> seconds after the daemon started
        self.home = tmp / "home"
        self.home.mkdir()
        pg = {"username": "postgres", "password": "", "hostname": "127.0.0.1", "db_name": db, "port": 5432,
              "scheme": "postgresql+psycopg2"}  # as worker_image/dagster.yaml
        (self.home / "dagster.yaml").write_text(yaml.safe_dump({
            "storage": {"postgres": {"postgres_db": pg}}, "telemetry": {"enabled": False},
        }))  # fmt: skip
        # The stack's generator, with the test's two locations: the alerts location comes with it.
        entries = [{"python_module": {"module_name": m, "location_name": n, "working_directory": str(CODE)}}
                   for n, m in (("alerting", "alerting"), ("broken", "broken_location"))]  # fmt: skip
        generated = code_locations.workspace((), in_image=False)["load_from"]
        self.workspace = tmp / "workspace.yaml"
        self.workspace.write_text(yaml.safe_dump({"load_from": entries + generated}))
        self.release = tmp / "release"
        self.env = {
            **os.environ, "DAGSTER_HOME": str(self.home), "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
            alerts.TOPIC_VAR: self.topic, alerts.INTERVAL_VAR: "1", alerts.LONG_RUN_VAR: "2",
            alerts.UI_URL_VAR: "https://dagster.example.com", alerts.WORKSPACE_VAR: str(self.workspace),
            "DAGSTER_PG_PASSWORD": SECRET, "ALERT_TEST_RELEASE": str(self.release),
        }  # fmt: skip
        self.env.pop(alerts.KINDS_VAR, None)  # unset: every kind, the default
        self.daemon: subprocess.Popen | None = None

    def start_daemon(self) -> float:
        self.started = time.monotonic()
        log = (self.tmp / "daemon.log").open("a")
        # A session of its own: the code servers and runs it starts are stopped with it (stop_daemon).
        self.daemon = subprocess.Popen([sys.executable, "-m", "dagster._daemon", "run", "-w", str(self.workspace)],
                                       cwd=self.tmp, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)  # fmt: skip
        return time.time()

    def running(self) -> bool:
        if self.daemon.poll() is not None:
            raise AssertionError(f"the daemon exited: {(self.tmp / 'daemon.log').read_text()[-3000:]}")
        return True

    def stop_daemon(self) -> None:
        self.daemon.terminate()
        try:
            self.daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
        with contextlib.suppress(ProcessLookupError):  # what it started and left behind (a code server, a run)
            os.killpg(self.daemon.pid, signal.SIGKILL)

    def alerts(self) -> list[dict]:
        """Every notification the subscriber got so far: (kind, subject, message)."""
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return self.received
            for m in got:
                body = json.loads(m["Body"])
                self.arrival[body["MessageAttributes"]["kind"]["Value"]] = time.monotonic() - self.started
                self.received.append({"kind": body["MessageAttributes"]["kind"]["Value"], "subject": body["Subject"],
                                      "message": body["Message"]})  # fmt: skip
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])

    def of(self, kind: str) -> list[dict]:
        return [a for a in self.alerts() if a["kind"] == kind]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with contextlib.ExitStack() as stack:
        db = stack.enter_context(postgres_database("dca_alerts"))
        endpoint, _ = stack.enter_context(s3_server())
        s = Stack(tmp_path_factory.mktemp("alerts"), db, endpoint)
        s.start_daemon()
        try:
            # Every kind arrives (the failing run's, the long run's, the failing sensor's, the broken location's).
            wait_for("an alert of every kind", lambda: s.running() and {a["kind"] for a in s.alerts()} >= set(alerts.KINDS),
                     timeout=120)
            print("alerts arrived after the daemon started (s):", s.arrival)
            yield s
        finally:
            s.release.touch()
            s.stop_daemon()


def _instance(s: Stack):
    from dagster import DagsterInstance

    return DagsterInstance.from_config(str(s.home))


def test_a_failed_run_is_reported_with_its_steps_errors_and_link(stack):
    (alert,) = stack.of("run_failure")
    instance = _instance(stack)
    (run,) = instance.get_runs(filters=RunsFilter(job_name="failing_job"))
    assert alert["subject"] == "Dagster run failed: failing_job"
    assert alert["message"].splitlines() == [
        f"Run {run.run_id} of job failing_job (code location alerting) failed.",
        "Failed steps:",
        "  - explode: ValueError: boom with password ***",
        f"Run: https://dagster.example.com/runs/{run.run_id}",
    ]


def test_a_long_run_a_failing_sensor_and_a_broken_location_are_reported(stack):
    (long_run,) = stack.of("long_run")
    assert long_run["subject"] == "Dagster run running long: slow_job"
    assert "over the limit of 0.0333333 min" in long_run["message"]
    (tick,) = stack.of("tick_failure")
    assert tick["subject"] == "Dagster sensor tick failed: broken_sensor"
    assert tick["message"].splitlines() == [
        "The sensor broken_sensor (code location alerting) fails its ticks.",
        "Error: RuntimeError: the sensor broke",
        "Sensor: https://dagster.example.com/locations/__repository__@alerting/sensors/broken_sensor",
    ]
    (location,) = stack.of("location_error")
    assert location["subject"] == "Dagster code location error: broken"
    assert "RuntimeError: this location cannot load: missing dependency" in location["message"]
    assert all(SECRET not in a["message"] for a in stack.alerts())


def test_each_event_is_reported_once_while_it_goes_on(stack):
    """The failing sensor failed tick after tick and the long run was seen running tick after tick: one alert
    each. (The run failure sensor's cursor is Dagster's, kept with its ticks.)"""
    from dagster._core.scheduler.instigation import TickStatus

    instance = _instance(stack)
    (broken,) = [s for s in instance.all_instigator_state() if s.instigator_name == "broken_sensor"]
    (looker,) = [s for s in instance.all_instigator_state() if s.instigator_name == "alert_long_run"]
    # Enough ticks after the alerts went out that a second alert would have had its chance.
    wait_for("two more failed ticks and looks at the long run", lambda: len(instance.get_ticks(
        broken.instigator_origin_id, broken.selector_id, statuses=[TickStatus.FAILURE])) >= 4 and len(
        instance.get_ticks(looker.instigator_origin_id, looker.selector_id)) >= 3, timeout=60)  # fmt: skip
    kinds = sorted(a["kind"] for a in stack.alerts())
    assert kinds == sorted(alerts.KINDS), kinds


def test_a_claim_is_won_once_across_processes_and_restarts(stack):
    """Two instances on the same PostgreSQL database (two daemons, or one before and after a restart): the
    first claim of an event wins, every later one loses, until the claim is given back."""
    first, second = _instance(stack), _instance(stack)
    assert first.run_storage is not second.run_storage
    assert [alerts.claim(first, "test/event"), alerts.claim(second, "test/event"), alerts.claim(first, "test/event")] \
        == [True, False, False]
    alerts.release(second, "test/", prefix=True)
    assert alerts.claim(second, "test/event") is True
    # What the sensors claimed is there for a restarted daemon: the run's failure, the long run, the sensor's streak.
    assert not alerts.claim(first, alerts.run_failure(
        first.get_runs(filters=RunsFilter(job_name="failing_job"))[0], [], None).key)


def test_a_run_with_many_failed_steps_lists_the_first_ones(monkeypatch):
    monkeypatch.setenv(alerts.UI_URL_VAR, "https://ui.example/")

    class Run:
        run_id, job_name, remote_job_origin = "r1", "wide", None

    steps = [(f"step_{i}", f"ValueError: {i}\ntrace") for i in range(25)]
    lines = alerts.run_failure(Run(), steps, None).message().splitlines()
    assert lines[2:4] == ["  - step_0: ValueError: 0", "  - step_1: ValueError: 1"]
    assert lines[-2:] == ["  ... and 5 more (see the run)", "Run: https://ui.example/runs/r1"]
    assert len(lines) == 2 + alerts.MAX_STEPS + 2


def test_the_local_runner_writes_each_alert_once_to_a_file_it_names(tmp_path, monkeypatch):
    """The local runner's sink (infra/local/runner.py): the same alerts, one JSON line each, in its state directory;
    the once-only claim on its embedded (SQLite) storage as on PostgreSQL."""
    from dagster import DagsterInstance

    from infra.local import runner, runtime_files
    from infra.stackfile.config import parse

    cfg = parse({"queues": [{"name": "dagster"}], "alerts": {"longRun": False, "longRunMinutes": 5}})
    layout = runtime_files.Layout(tmp_path, tmp_path / "app", tmp_path / "home", tmp_path / "logs", {})
    env = runner._alert_environment(cfg, layout, 3001)
    assert env == {
        alerts.KINDS_VAR: "run_failure,tick_failure,location_error", alerts.LONG_RUN_VAR: "300",
        alerts.WORKSPACE_VAR: str(tmp_path / "app" / "workspace.yaml"),
        alerts.FILE_VAR: str(tmp_path / runner.ALERTS_FILE), alerts.UI_URL_VAR: "http://127.0.0.1:3001",
    }  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(alerts.TOPIC_VAR, raising=False)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", SECRET)
    alert = alerts.location_error("analytics", f"ImportError: no module named x ({SECRET})\nTraceback ...")
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        # A sink that fails gives the claim back: the next look sends it.
        monkeypatch.setenv(alerts.FILE_VAR, str(tmp_path / "missing" / "alerts.jsonl"))
        with pytest.raises(FileNotFoundError):
            alerts.send(instance, alert)
        monkeypatch.setenv(alerts.FILE_VAR, env[alerts.FILE_VAR])
        assert [alerts.send(instance, alert), alerts.send(instance, alert)] == [True, False]
    (line,) = (tmp_path / runner.ALERTS_FILE).read_text().splitlines()
    assert json.loads(line)["message"].splitlines() == [
        "Code location analytics does not load.", "Error: ImportError: no module named x (***)",
        "Locations: http://127.0.0.1:3001/locations",
    ]  # fmt: skip
