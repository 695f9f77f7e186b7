"""``dagster-celery-aws worker list|terminate`` and ``dagster-celery-aws config``: dagster-celery's worker commands
for this deployment.

dagster-celery's ``worker list`` and ``worker terminate`` hand the YAML's ``execution: config:`` block to the
executor as it is, so the deployment's ``broker: {env: DAGSTER_CELERY_BROKER_URL}`` reaches Celery as a
dict and the commands fail (``ParameterCheckError: Param "broker" is not a str``). These commands resolve
the block first, in memory, with dagster-celery's own validation (``celery_config.resolved_config``, as the
workers' settings module does), then do what dagster-celery's do on dagster-celery's app: ask the workers
through the broker which tasks they run (``inspect().active()``), or broadcast ``shutdown`` to one or all
of them (a warm shutdown: a worker finishes its running steps first).

    dagster-celery-aws worker list [-y PATH] [--timeout SECONDS]
    dagster-celery-aws worker terminate [NAME] [--all] [-y PATH]
    dagster-celery-aws config [-y PATH]

``config`` prints the settings resolved, in the shape dagster-celery's own commands read, so that they work as
dagster-celery documents them without the broker URL -- a secret -- ever being written to a file:
``dagster-celery worker list -y <(dagster-celery-aws config)`` (bash's process substitution: a pipe).

``-y`` defaults to the deployment's Celery settings (``celery_config.yaml`` in this package, or the file
``$DAGSTER_CELERY_CONFIG`` names). ``NAME`` is dagster-celery's: a bare name means ``NAME@<this host>``
(inside a worker's task, the worker of that queue: the topology names workers ``<queue>@%h``); a full node
name (``heavy@ip-10-0-1-5``, as ``worker list`` prints them) is used as it is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from celery.utils.nodenames import default_nodename, host_format
from dagster._core.errors import DagsterInvalidConfigError
from dagster._grpc.types import ExecuteStepArgs
from dagster._serdes import unpack_value
from dagster_celery.cli import get_worker_name
from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app

from dagster_celery_aws import celery_config

APP_ARGS = ("broker", "backend", "include", "config_source")  # CeleryExecutor.for_cli's parameters


def app_settings(path: Path | None) -> dict:
    """The resolved settings ``CeleryExecutor.for_cli`` takes (the schema's other keys, e.g. retries, it does not)."""
    config = celery_config.resolved_config(path)
    return {k: config[k] for k in APP_ARGS if config.get(k) is not None}


def app_for(path: Path | None):
    """dagster-celery's app for the resolved settings, as its CLI makes it (``dagster_celery.cli.get_app``)."""
    return make_app(CeleryExecutor.for_cli(**app_settings(path)).app_args())


def resolved_yaml(path: Path | None = None) -> str:
    """The settings as a file for ``dagster-celery worker list|terminate -y``: `execution: config:`, resolved."""
    import yaml

    return yaml.safe_dump({"execution": {"config": app_settings(path)}}, sort_keys=False)


def node_name(name: str) -> str:
    return name if "@" in name else host_format(default_nodename(get_worker_name(name)))


def describe(task: dict) -> str:
    """A running task: its name and id, and for a step, its run and step keys (from the executor's message)."""
    text = f"{task.get('name')} {task.get('id')}"
    packed = (task.get("kwargs") or {}).get("execute_step_args_packed")
    try:
        args = unpack_value(packed, as_type=ExecuteStepArgs)
    except Exception:  # noqa: BLE001 - not a step, or a message of another Dagster version: name and id only
        return text
    return f"{text} run {args.run_id} step {', '.join(args.step_keys_to_execute or [])}"


def worker_list(app, timeout: float) -> int:
    active = app.control.inspect(timeout=timeout).active()
    if not active:
        print(f"no worker answered within {timeout:g} s", file=sys.stderr)
        return 1
    for node, tasks in sorted(active.items()):
        print(f"{node}: {len(tasks)} running")
        for task in tasks:
            print(f"  {describe(task)}")
    return 0


def worker_terminate(app, name: str, all_: bool) -> int:
    if all_:
        app.control.broadcast("shutdown")
        print("shutdown sent to every worker")
    else:
        node = node_name(name)
        app.control.broadcast("shutdown", destination=[node])
        print(f"shutdown sent to {node}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dagster-celery-aws", description=__doc__.split("\n\n")[0])
    groups = p.add_subparsers(dest="group", required=True)
    commands = groups.add_parser("worker", help="the deployment's Celery workers").add_subparsers(
        dest="command", required=True
    )
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument(
        "-y", "--config-yaml", type=Path, default=None,
        help="Celery settings (`execution: config:`, env: sources resolved); default: the deployment's",
    )  # fmt: skip
    groups.add_parser("config", parents=[config], help="print the settings resolved, for dagster-celery's -y")
    listing = commands.add_parser("list", parents=[config], help="list the running workers and their tasks")
    listing.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for replies (default 1)")
    terminate = commands.add_parser("terminate", parents=[config], help="shut down a worker, or all of them")
    terminate.add_argument("name", nargs="?", default="dagster", help="NAME (NAME@this host) or NAME@HOST")
    terminate.add_argument("-a", "--all", dest="all_", action="store_true", help="every worker")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.config_yaml is not None and not args.config_yaml.is_file():
        print(f"error: {args.config_yaml}: no such file", file=sys.stderr)
        return 2
    try:
        if args.group == "config":
            print(resolved_yaml(args.config_yaml), end="")
            return 0
        app = app_for(args.config_yaml)
    except (OSError, ValueError, RuntimeError, DagsterInvalidConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.command == "list":
        return worker_list(app, args.timeout)
    return worker_terminate(app, args.name, args.all_)
