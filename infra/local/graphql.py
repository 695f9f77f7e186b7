"""Launching through the webserver's GraphQL API, exactly as the UI does: the same mutations with the same
parameters, so the webserver resolves the selection and the config, the QueuedRunCoordinator queues the run and
the daemon launches it (runs), or the daemon's backfill loop launches the partitions' runs (backfills).

- ``launch_run``: the Launchpad's and Materialize's ``launchPipelineExecution``. A job by name; an asset
  selection (Materialize: the location's implicit ``__ASSET_JOB`` with ``assetSelection``); a partition
  (the ``dagster/partition`` tag the UI sets); any other tags.
- ``launch_backfill``: the Materialize dialog's ``launchPartitionBackfill`` of assets over partitions (an
  asset backfill, run by the daemon).
- ``backfill_status``: a backfill's status and, when it has launched them, its runs; ``run_status``: a run's.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping

ASSET_JOB = "__ASSET_JOB"  # the implicit job of a location's assets (dagster: IMPLICIT_ASSET_JOB_NAME)
REPOSITORY = "__repository__"  # the repository Definitions make (dagster: SINGLETON_REPOSITORY_NAME)
PARTITION_TAG = "dagster/partition"

_ERRORS = "... on Error { message } ... on RunConfigValidationInvalid { errors { message } }"  # every failure type

LAUNCH_RUN = """mutation LaunchRun($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename ... on LaunchRunSuccess { run { runId } } %s
  }
}""" % _ERRORS

LAUNCH_BACKFILL = """mutation LaunchBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename ... on LaunchBackfillSuccess { backfillId } %s
  }
}""" % _ERRORS

BACKFILL = """query Backfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename ... on PartitionBackfill { status runs(limit: 100) { runId status } } ... on PythonError { message }
  }
}"""


class LaunchError(Exception):
    """The webserver refused the launch; the message is its answer."""


RUN = """query Run($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status } ... on PythonError { message } }
}"""


def query(port: int | str, text: str, variables: Mapping, timeout: float = 60) -> dict:
    """``port``: the webserver's on 127.0.0.1, or its base URL (a deployed UI: infra/tools/verify.py)."""
    base = port.rstrip("/") if isinstance(port, str) else f"http://127.0.0.1:{port}"
    body = json.dumps({"query": text, "variables": variables}).encode()
    request = urllib.request.Request(f"{base}/graphql", body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as err:  # a query the schema refuses: 400 with the GraphQL errors as the body
        answer = json.loads(err.read() or b"{}") or {"errors": [{"message": str(err)}]}
    if answer.get("errors"):
        raise LaunchError("; ".join(e.get("message", str(e)) for e in answer["errors"]))
    return answer["data"]


def _asset_keys(assets: Iterable[str]) -> list[dict]:
    return [{"path": key.split("/")} for key in assets]


def _tags(tags: Mapping[str, str]) -> list[dict]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def _result(answer: dict, success: str, field: str) -> str:
    if answer["__typename"] == success:
        return answer["run"]["runId"] if field == "run" else answer[field]
    details = {k: v for k, v in answer.items() if k != "__typename"}
    raise LaunchError(f"{answer['__typename']}: {json.dumps(details)}")


def launch_run(port: int, location: str, job: str = ASSET_JOB, assets: Iterable[str] | None = None,
               checks: Iterable[str] = (), partition: str | None = None,
               tags: Mapping[str, str] | None = None) -> str:  # fmt: skip
    """Launch a run as the UI does; returns its id. ``assets`` (keys, ``a/b`` for a multi-part key) selects
    assets of ``job`` (Materialize), with the asset checks ``checks`` (``asset:check``); ``partition`` is the
    partition to run."""
    selector = {"repositoryLocationName": location, "repositoryName": REPOSITORY, "jobName": job}
    if assets is not None:
        selector["assetSelection"] = _asset_keys(assets)
        selector["assetCheckSelection"] = [
            {"assetKey": _asset_keys([c.rsplit(":", 1)[0]])[0], "name": c.rsplit(":", 1)[1]} for c in checks]
    all_tags = {**(tags or {}), **({PARTITION_TAG: partition} if partition is not None else {})}
    params = {"selector": selector, "runConfigData": {}, "mode": "default",
              "executionMetadata": {"tags": _tags(all_tags)}}  # fmt: skip
    answer = query(port, LAUNCH_RUN, {"executionParams": params})["launchPipelineExecution"]
    return _result(answer, "LaunchRunSuccess", "run")


def launch_backfill(port: int, assets: Iterable[str], partitions: Iterable[str],
                    tags: Mapping[str, str] | None = None) -> str:  # fmt: skip
    """Launch an asset backfill of ``assets`` over ``partitions`` as the UI's Materialize dialog does; returns
    the backfill's id (its runs are launched by the daemon)."""
    params = {"assetSelection": _asset_keys(assets), "partitionNames": list(partitions), "fromFailure": False,
              "tags": _tags(tags or {})}  # fmt: skip
    answer = query(port, LAUNCH_BACKFILL, {"backfillParams": params})["launchPartitionBackfill"]
    return _result(answer, "LaunchBackfillSuccess", "backfillId")


def run_status(port: int | str, run_id: str) -> str:
    """A run's status as the UI shows it (``DagsterRunStatus`` values)."""
    answer = query(port, RUN, {"runId": run_id})["runOrError"]
    if answer["__typename"] != "Run":
        raise LaunchError(f"{answer['__typename']}: {answer.get('message', '')}")
    return answer["status"]


def backfill_status(port: int, backfill_id: str) -> tuple[str, dict[str, str]]:
    """(the backfill's status, {run id: run status} of the runs it launched)."""
    answer = query(port, BACKFILL, {"backfillId": backfill_id})["partitionBackfillOrError"]
    if answer["__typename"] != "PartitionBackfill":
        raise LaunchError(f"{answer['__typename']}: {answer.get('message', '')}")
    return answer["status"], {r["runId"]: r["status"] for r in answer["runs"] or []}
