"""Pipeline alerts: what a failed run, a run over its time limit, a failed schedule/sensor tick or a code location
that does not load tells the operators, and where it goes.

The sensors that notice them are a code location of their own, shipped with this runtime and added to every
workspace by the stack and the local runner (``dagster_celery_aws.alert_sensors``); this module holds their
settings, the messages, the sink and the once-only claim. Settings come from the environment the stack renders
from stack config ``alerts`` (infra/specs/contract.py):

- ``DCA_ALERTS``: the kinds on, comma-separated (``run_failure``, ``long_run``, ``tick_failure``,
  ``location_error``); unset: all; empty: none.
- ``DCA_ALERT_TOPIC``: the SNS topic to publish to (the stack's alarm topic), or ``DCA_ALERT_FILE``: a file
  each alert is appended to as one JSON line (the local runner). Neither: the alert is only logged.
- ``DCA_ALERT_LONG_RUN_SECONDS``: a run started longer ago than this and still running is reported once.
- ``DCA_ALERT_INTERVAL_SECONDS``: how often the sensors look (location loads: ten times as seldom).
- ``DCA_UI_URL``: the UI's address, for the links in the messages.

Once per event: before an alert goes out, its key (the run, the tick, the location and its error) is inserted
into the instance's key-value table, whose key is unique; a second daemon, or the same one after a restart,
finds the key and stays silent. A failed publish gives the key back, so the next evaluation tries again.
Messages hold names, ids, the first line of each error and links; values of the stack's secret variables
are masked should an error message contain one.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

KINDS = ("run_failure", "long_run", "tick_failure", "location_error")
LOCATION_NAME = "dagster_celery_aws_alerts"  # the built-in code location (infra/specs/code_locations.py)
KINDS_VAR = "DCA_ALERTS"
TOPIC_VAR = "DCA_ALERT_TOPIC"
FILE_VAR = "DCA_ALERT_FILE"
LONG_RUN_VAR = "DCA_ALERT_LONG_RUN_SECONDS"
INTERVAL_VAR = "DCA_ALERT_INTERVAL_SECONDS"
UI_URL_VAR = "DCA_UI_URL"
WORKSPACE_VAR = "DCA_WORKSPACE"  # the workspace file whose locations are checked (default: ./workspace.yaml)
# infra/specs/contract.py SECRET_VARS: never in a message, whatever an error says.
SECRET_VARS = ("DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_CELERY_BROKER_URL", "DAGSTER_CELERY_BACKEND_URL")
CLAIM_PREFIX = "dagster-celery-aws/alert/"
SUBJECT_LIMIT = 100  # SNS Publish: Subject is at most 100 ASCII characters, no line breaks
MAX_STEPS = 20  # failed steps listed in a message (a wide backfill fails hundreds; SNS takes at most 256 KB)

log = logging.getLogger(__name__)


def enabled_kinds() -> tuple[str, ...]:
    raw = os.environ.get(KINDS_VAR)
    if raw is None:
        return KINDS
    kinds = tuple(k.strip() for k in raw.split(",") if k.strip())
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"{KINDS_VAR}={raw!r}: unknown kind(s) {unknown}; valid: {', '.join(KINDS)}")
    return kinds


def interval_seconds() -> int:
    return int(os.environ.get(INTERVAL_VAR, "30"))


def long_run_seconds() -> int:
    return int(os.environ.get(LONG_RUN_VAR, str(2 * 3600)))


def ui_link(path: str) -> str:
    base = os.environ.get(UI_URL_VAR, "").rstrip("/")
    return f"{base}{path}" if base else path


def root_message(error) -> str | None:
    """The message of the error at the root of a SerializableErrorInfo: Dagster reports a step's, a sensor's or
    a code server's failure as its own error caused by the user's exception, which is the news."""
    if error is None:
        return None
    while error.cause is not None:
        error = error.cause
    return error.message


def first_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


@dataclass(frozen=True)
class Alert:
    kind: str
    key: str  # one event, one key: the claim
    subject: str
    lines: tuple[str, ...]

    def message(self) -> str:
        return _masked("\n".join(self.lines))

    def sns_subject(self) -> str:
        text = _masked(self.subject).encode("ascii", "replace").decode().replace("\n", " ")
        return text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 3] + "..."


def _masked(text: str) -> str:
    for name in SECRET_VARS:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def send(instance, alert: Alert) -> bool:
    """Publish ``alert`` unless its event was already reported; True when this call sent it."""
    if not claim(instance, alert.key):
        return False
    try:
        _publish(alert)
    except Exception:
        release(instance, alert.key)
        raise
    return True


def _publish(alert: Alert) -> None:
    topic, path = os.environ.get(TOPIC_VAR), os.environ.get(FILE_VAR)
    if topic:
        import boto3

        boto3.client("sns").publish(
            TopicArn=topic, Subject=alert.sns_subject(), Message=alert.message(),
            MessageAttributes={"kind": {"DataType": "String", "StringValue": alert.kind}},
        )  # fmt: skip
    elif path:
        record = {"kind": alert.kind, "subject": _masked(alert.subject), "message": alert.message(), "time": time.time()}
        with Path(path).open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    log.warning("alert %s: %s\n%s", alert.kind, alert.sns_subject(), alert.message())


# The instance's key-value table (dagster's run storage, SQLite or PostgreSQL) has a unique key: an insert is a
# claim that at most one process wins. Dagster's own set_cursor_values upserts, so it cannot say who was first.
def claim(instance, key: str) -> bool:
    from dagster._core.storage.runs.schema import KeyValueStoreTable
    from sqlalchemy.exc import IntegrityError

    try:
        with instance.run_storage.connect() as conn:
            conn.execute(KeyValueStoreTable.insert().values(key=CLAIM_PREFIX + key, value=str(time.time())))
    except IntegrityError:
        return False
    return True


def release(instance, key: str, prefix: bool = False) -> None:
    from dagster._core.storage.runs.schema import KeyValueStoreTable

    column = KeyValueStoreTable.c.key
    where = column.like(CLAIM_PREFIX + key + "%") if prefix else column == CLAIM_PREFIX + key
    with instance.run_storage.connect() as conn:
        conn.execute(KeyValueStoreTable.delete().where(where))


def run_failure(run, step_failures, run_error: str | None) -> Alert:
    """``step_failures``: (step key, error message) of each failed step."""
    location = _run_location(run)
    lines = [f"Run {run.run_id} of job {run.job_name}{location} failed."]
    if step_failures:
        lines.append("Failed steps:")
        lines += [f"  - {step}: {first_line(error)}" for step, error in step_failures[:MAX_STEPS]]
        if len(step_failures) > MAX_STEPS:
            lines.append(f"  ... and {len(step_failures) - MAX_STEPS} more (see the run)")
    else:
        lines.append(f"Error: {first_line(run_error)}")
    lines.append(f"Run: {ui_link(f'/runs/{run.run_id}')}")
    return Alert("run_failure", f"run_failure/{run.run_id}", f"Dagster run failed: {run.job_name}", tuple(lines))


def long_run(run, started: float, limit_seconds: int, now: float) -> Alert:
    minutes = (now - started) / 60
    lines = (
        f"Run {run.run_id} of job {run.job_name}{_run_location(run)} has been running for {minutes:.0f} min, "
        f"over the limit of {limit_seconds / 60:g} min (alerts.longRunMinutes).",
        f"Run: {ui_link(f'/runs/{run.run_id}')}",
    )
    return Alert("long_run", f"long_run/{run.run_id}", f"Dagster run running long: {run.job_name}", lines)


def tick_failure(kind: str, name: str, location: str, repository: str, key: str, error: str | None) -> Alert:
    """``kind``: "schedule" or "sensor"; ``key``: the failing streak."""
    path = f"/locations/{repository}@{location}/{kind}s/{name}"
    lines = (
        f"The {kind} {name} (code location {location}) fails its ticks.",
        f"Error: {first_line(error)}",
        f"{kind.capitalize()}: {ui_link(path)}",
    )
    return Alert("tick_failure", key, f"Dagster {kind} tick failed: {name}", lines)


def location_error(location: str, error: str | None) -> Alert:
    import hashlib

    line = first_line(error)
    digest = hashlib.sha256(line.encode()).hexdigest()[:16]
    lines = (f"Code location {location} does not load.", f"Error: {line}", f"Locations: {ui_link('/locations')}")
    return Alert("location_error", f"location_error/{location}/{digest}", f"Dagster code location error: {location}", lines)


def _run_location(run) -> str:
    origin = run.remote_job_origin
    return f" (code location {origin.location_name})" if origin else ""
