"""What the runner launches, sent to the webserver's GraphQL API with the mutations the UI's buttons send:

- a run (Launch / Materialize): ``launchPipelineExecution`` with the job, an asset selection, run tags, and a
  partition as the ``dagster/partition`` tag (the UI's partition picker sets that tag);
- a backfill (Materialize selected partitions / Launch backfill): ``launchPartitionBackfill`` with the partition
  names and the asset selection (an asset backfill), or the job's partition set ``<job>_partition_set``. The
  daemon's backfill daemon then launches its runs, each tagged ``dagster/backfill``.

The queued run coordinator queues each run and the daemon starts it, as for a click in the UI. Materialize
without a job runs Dagster's implicit asset job (``__ASSET_JOB``); which location and repository hold the job
is asked from the webserver (``workspaceOrError``), so the UI's view of the code is the one launched.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

ASSET_JOB = "__ASSET_JOB"  # dagster IMPLICIT_ASSET_JOB_NAME: what the UI's Materialize launches
PARTITION_TAG = "dagster/partition"  # dagster.PARTITION_NAME_TAG
BACKFILL_TAG = "dagster/backfill"  # dagster BACKFILL_ID_TAG

WORKSPACE = """
query {
  workspaceOrError {
    __typename
    ... on Workspace { locationEntries { name locationOrLoadError {
      __typename
      ... on RepositoryLocation { repositories { name jobs { name } assetNodes { assetKey { path } } } }
      ... on PythonError { message }
    } } }
    ... on PythonError { message }
  }
}"""

LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}"""

LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""


class LaunchError(Exception):
    """The webserver refused what was asked; the message is its answer."""


@dataclass(frozen=True)
class Request:
    job: str | None  # None with assets: the implicit asset job, as the UI's Materialize
    assets: tuple[str, ...] = ()  # asset keys as the UI writes them: "a", "prefix/name"
    partition: str | None = None
    backfill: tuple[str, ...] = ()  # partition names of a backfill
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def run_job(self) -> str | None:
        return self.job or (ASSET_JOB if self.assets else None)

    def describe(self) -> str:
        what = self.job or f"assets {', '.join(self.assets)}"
        if self.job and self.assets:
            what += f" (assets {', '.join(self.assets)})"
        if self.backfill:
            return f"backfill of {what}, partitions {', '.join(self.backfill)}"
        return what + (f", partition {self.partition}" if self.partition else "")


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        answer = json.loads(resp.read())
    if answer.get("errors"):
        raise LaunchError("; ".join(e.get("message", str(e)) for e in answer["errors"]))
    return answer["data"]


def find_job(port: int, job: str, location: str | None = None, assets=()) -> tuple[str, str]:
    """(location, repository) holding ``job`` and ``assets`` as the webserver loaded them (the preflight's location
    first): every location has an implicit asset job, the one to launch is the one with the selected assets."""
    workspace = graphql(port, WORKSPACE)["workspaceOrError"]
    if workspace["__typename"] != "Workspace":
        raise LaunchError(workspace.get("message", workspace["__typename"]))
    found, failed = [], []
    for entry in workspace["locationEntries"]:
        loaded = entry["locationOrLoadError"] or {}
        if loaded.get("__typename") != "RepositoryLocation":
            failed.append(f"{entry['name']}: {(loaded.get('message') or 'not loaded').strip().splitlines()[0]}")
            continue
        for repo in loaded["repositories"]:
            keys = {"/".join(node["assetKey"]["path"]) for node in repo["assetNodes"]}
            if any(j["name"] == job for j in repo["jobs"]) and set(assets) <= keys:
                found.append((entry["name"], repo["name"]))
    found.sort(key=lambda lr: lr[0] != location)
    if not found:
        what = f"a job {job!r}" + (f" with the assets {', '.join(assets)}" if assets else "")
        raise LaunchError(f"no code location has {what}" + (f" (not loaded: {'; '.join(failed)})" if failed else ""))
    return found[0]


def _asset_keys(assets) -> list[dict]:
    return [{"path": key.split("/")} for key in assets]


def launch(port: int, request: Request, location: str | None = None) -> tuple[list[str], str | None]:
    """Send the request as the UI does: ([run id], None) for a run, ([], backfill id) for a backfill."""
    job = request.run_job
    loc, repo = find_job(port, job, location, request.assets)
    tags = [{"key": k, "value": v} for k, v in request.tags]
    if request.backfill:
        params = {"partitionNames": list(request.backfill), "tags": tags, "fromFailure": False}
        if request.assets:
            params["assetSelection"] = _asset_keys(request.assets)
        else:
            params["selector"] = {"partitionSetName": f"{job}_partition_set",
                                  "repositorySelector": {"repositoryLocationName": loc, "repositoryName": repo}}  # fmt: skip
        answer = graphql(port, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if answer["__typename"] != "LaunchBackfillSuccess":
            raise LaunchError(f"{answer['__typename']}: {answer.get('message', '')}".strip())
        return [], answer["backfillId"]
    if request.partition:
        tags.append({"key": PARTITION_TAG, "value": request.partition})
    selector = {"repositoryLocationName": loc, "repositoryName": repo, "pipelineName": job}
    if request.assets:
        selector["assetSelection"] = _asset_keys(request.assets)
    params = {"selector": selector, "mode": "default", "runConfigData": {}, "executionMetadata": {"tags": tags}}
    answer = graphql(port, LAUNCH_RUN, {"params": params})["launchPipelineExecution"]
    if answer["__typename"] != "LaunchRunSuccess":
        detail = answer.get("message") or "; ".join(e["message"] for e in answer.get("errors") or [])
        raise LaunchError(f"{answer['__typename']}: {detail}".strip())
    return [answer["run"]["runId"]], None


def wait_for_backfill(instance, backfill_id: str, timeout: float, on_status: Callable[[str], None],
                      check: Callable[[], None]) -> list[str]:  # fmt: skip
    """Poll the backfill until the daemon has finished it (or ``timeout``); returns its runs' ids, oldest first."""
    from dagster import RunsFilter

    deadline, last = time.monotonic() + timeout, None
    while True:
        backfill = instance.get_backfill(backfill_id)
        status = backfill.status.value if backfill else "UNKNOWN"
        if status != last:
            on_status(status)
            last = status
        runs = instance.get_runs(RunsFilter(tags={BACKFILL_TAG: backfill_id}))
        settled = all(r.is_finished for r in runs)
        if status not in ("REQUESTED", "CANCELING", "FAILING", "UNKNOWN") and settled:
            break
        if time.monotonic() > deadline:
            break
        check()
        time.sleep(1)
    return [r.run_id for r in reversed(runs)]
