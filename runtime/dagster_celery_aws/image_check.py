"""``python -m dagster_celery_aws.image_check``: does this image keep the contract every process relies on?

Run in the daemon's task before the schema migration (and by the local runner before it starts anything), so
that a prebuilt image (stack config ``image.uri``) that lacks a part fails the deployment with a message naming
the part, instead of a webserver or a worker failing later. The contract (README, "Bring your own code"):

- this runtime, importable (it is: this module runs);
- ``$DAGSTER_HOME/dagster.yaml``, a valid Dagster instance config;
- ``workspace.yaml`` in the working directory, loading exactly the code locations the stack names in
  ``DCA_CODE_LOCATIONS`` (comma-separated) and the runtime's alerts (``dagster_celery_aws_alerts``), each module
  importable from its working directory;
- every job of every location (the implicit asset jobs that Materialize and backfills run included) sends each
  step to one of the stack's queues (``DCA_QUEUES``) and routes no asset by asset ``tags``
  (``dagster_celery_aws.queues``): a step for a queue the stack lacks would wait forever on AWS, so the
  deployment stops naming the job, the step and the queue. A job whose executor runs its steps itself (not
  the Celery executor, or one with a broker of its own) is a warning: it runs, just not on the queues.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import yaml

LOCATIONS_VAR = "DCA_CODE_LOCATIONS"  # infra/specs/contract.py CODE_LOCATIONS
BROKER_VAR = "DAGSTER_CELERY_BROKER_URL"  # infra/specs/contract.py BROKER_URL


def job_findings(module: str, directory: str, location: str, served, broker_url: str | None):
    """(problems, warnings) of the location's jobs on the stack's queues ``served`` (None: not checked)."""
    from dagster_celery_aws.queues import executor_problem, location_jobs, routing_problems, step_queues

    problems, warnings = [], []
    for name, job_def in sorted(location_jobs(module, directory).items()):
        problem = executor_problem(job_def, broker_url)
        if problem:
            warnings.append(f"code location {location!r}: job {name!r} would not run on the stack's queues: {problem}")
            continue
        for line in routing_problems(job_def, step_queues(job_def), served=served):
            problems.append(f"code location {location!r}: {line}")
    return problems, warnings


def problems(workspace: Path, expected: set[str], dagster_home: str | None, served=None, broker_url=None,
             warn=print) -> list[str]:
    """What the image lacks; with the stack's queues (``served``) also its jobs' routing, and ``warn`` is told
    of jobs that would run, but not on the queues."""
    found = []
    if not dagster_home or not (Path(dagster_home) / "dagster.yaml").is_file():
        found.append(f"$DAGSTER_HOME/dagster.yaml: not found (DAGSTER_HOME={dagster_home!r})")
    else:
        from dagster._core.instance.config import dagster_instance_config

        try:
            dagster_instance_config(dagster_home)
        except Exception as err:  # noqa: BLE001 - reported by name
            found.append(f"$DAGSTER_HOME/dagster.yaml: not a valid instance config ({type(err).__name__}: {err})")
    if not workspace.is_file():
        return [*found, f"{workspace}: not found"]
    entries = [e.get("python_module") for e in (yaml.safe_load(workspace.read_text()) or {}).get("load_from") or []]
    names = {e.get("location_name") or e.get("module_name") for e in entries if isinstance(e, dict)}
    if names != expected:
        found.append(f"{workspace}: loads {sorted(names)}, the stack names {sorted(expected)}")
    for entry in entries:
        if not isinstance(entry, dict):
            found.append(f"{workspace}: an entry that is not a python_module mapping: {entry!r}")
            continue
        directory = entry.get("working_directory") or str(workspace.parent)
        sys.path.insert(0, directory)
        location = entry.get("location_name") or entry["module_name"]
        try:
            importlib.import_module(entry["module_name"])
            jobs_found, warnings = ([], []) if served is None else \
                job_findings(entry["module_name"], directory, location, served, broker_url)
        except Exception as err:  # noqa: BLE001 - any import failure names the module
            found.append(f"code location {location!r}: module {entry['module_name']!r} does not "
                         f"import from {directory} ({type(err).__name__}: {err})")  # fmt: skip
        else:
            found += jobs_found
            for line in warnings:
                warn(f"image contract: warning: {line}")
        finally:
            sys.path.remove(directory)
    return found


def main() -> int:
    from dagster_celery_aws.alerts import LOCATION_NAME

    # The runtime's alert sensors are a location of every workspace the stack generates (pipeline alerts).
    expected = {n for n in os.environ.get(LOCATIONS_VAR, "").split(",") if n} | {LOCATION_NAME}
    from dagster_celery_aws.queues import deployment_queues

    found = problems(Path("workspace.yaml").resolve(), expected, os.environ.get("DAGSTER_HOME"),
                     served=deployment_queues(), broker_url=os.environ.get(BROKER_VAR))  # fmt: skip
    for line in found:
        print(f"image contract: {line}", file=sys.stderr)
    if not found:
        print(f"image contract: OK ({', '.join(sorted(expected))})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
