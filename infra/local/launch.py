"""What the runner launches (``--job``, ``--select``, ``--partition``, ``--backfill``, ``--tag``), sent as the UI
sends it (``infra.local.graphql``): a run by ``launchPipelineExecution`` -- a job, or Materialize of a selection in
the location's implicit asset job, a partition as the ``dagster/partition`` tag -- or an asset backfill by
``launchPartitionBackfill``, whose runs the daemon's backfill loop launches.

The queued run coordinator queues each run and the daemon starts it, as for a click in the UI. Which location
holds the job and the selected assets is asked from the webserver (``workspaceOrError``): the UI's view of the
code is the one launched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from infra.local import graphql
from infra.local.graphql import LaunchError

WORKSPACE = """
query {
  workspaceOrError {
    __typename
    ... on Workspace { locationEntries { name locationOrLoadError {
      __typename
      ... on RepositoryLocation { repositories { jobs { name } assetNodes { assetKey { path } } } }
      ... on PythonError { message }
    } } }
    ... on PythonError { message }
  }
}"""
UNFINISHED = ("REQUESTED", "CANCELING", "FAILING")  # BulkActionStatus values of a backfill still going


@dataclass(frozen=True)
class Request:
    job: str | None  # None with assets: the implicit asset job, as the UI's Materialize
    assets: tuple[str, ...] = ()  # asset keys as the UI writes them: "a", "prefix/name"
    partition: str | None = None
    backfill: tuple[str, ...] = ()  # partition names of an asset backfill
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def run_job(self) -> str:
        return self.job or graphql.ASSET_JOB

    def describe(self) -> str:
        what = self.job or f"assets {', '.join(self.assets)}"
        if self.job and self.assets:
            what += f" (assets {', '.join(self.assets)})"
        if self.backfill:
            return f"backfill of {what}, partitions {', '.join(self.backfill)}"
        return what + (f", partition {self.partition}" if self.partition else "")


def find_location(port: int, job: str, assets=(), preferred: str | None = None) -> str:
    """The location holding ``job`` and ``assets`` as the webserver loaded it (the preflight's first): every
    location has an implicit asset job, the one to launch is the one with the selected assets."""
    workspace = graphql.query(port, WORKSPACE, {})["workspaceOrError"]
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
                found.append(entry["name"])
    found.sort(key=lambda name: name != preferred)
    if not found:
        what = f"a job {job!r}" + (f" with the assets {', '.join(assets)}" if assets else "")
        raise LaunchError(f"no code location has {what}" + (f" (not loaded: {'; '.join(failed)})" if failed else ""))
    return found[0]


def launch(port: int, request: Request, preferred: str | None = None) -> tuple[list[str], str | None]:
    """Send the request as the UI does: ([run id], None) for a run, ([], backfill id) for a backfill."""
    tags = dict(request.tags)
    if request.backfill:
        find_location(port, graphql.ASSET_JOB, request.assets, preferred)  # a clear error when nothing has them
        return [], graphql.launch_backfill(port, request.assets, request.backfill, tags)
    location = find_location(port, request.run_job, request.assets, preferred)
    run_id = graphql.launch_run(port, location, request.run_job, request.assets or None,
                                partition=request.partition, tags=tags)  # fmt: skip
    return [run_id], None


def wait_for_backfill(port: int, backfill_id: str, timeout: float, on_status: Callable[[str], None],
                      check: Callable[[], None]) -> list[str]:  # fmt: skip
    """Poll the backfill until the daemon has finished it and its runs have ended (or ``timeout``); returns the
    ids of its runs."""
    from dagster import DagsterRunStatus

    finished = {s.value for s in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)}
    deadline, last = time.monotonic() + timeout, None
    while True:
        status, runs = graphql.backfill_status(port, backfill_id)
        if status != last:
            on_status(status)
            last = status
        if status not in UNFINISHED and set(runs.values()) <= finished:
            return sorted(runs)
        if time.monotonic() > deadline:
            return sorted(runs)
        check()
        time.sleep(1)
