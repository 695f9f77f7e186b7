"""Queue-scoped variables and secrets (stack config ``queues[].access``) under Dagster's resource model.

Dagster resolves the config of every resource of a job -- ``EnvVar("X")`` reads ``X`` -- in every process of a
run: the webserver and the daemon when they launch it, the run worker, and each step's process. A variable
granted to the ``ml`` workers only would fail that resolution everywhere else ("You have attempted to fetch the
environment variable X which is not set"). So every process that is not granted ``X`` gets a placeholder:

    X=[not granted here: X is for queue(s) ml only]

a plain string that config resolution accepts and that holds no value. The granted queue's workers get the real
value instead (on AWS an ECS secret or variable; locally the runner passes it on). A step is checked before
it runs, on its worker (``dagster_celery_aws.fast_task``): when a resource the step uses (its own, its inputs'
and outputs' I/O managers, and the resources those depend on: Dagster's ``get_required_resource_keys_for_step``)
resolved a placeholder, the step fails at once with a message naming the variable, the resource and the
queues that hold it, instead of calling a service with a placeholder for a password. Code that reads
``os.environ`` itself reads the placeholder text, which says the same.

The placeholder is a string: a queue-scoped value behind an ``int``/``bool`` config field fails config
resolution where it is not granted; keep such values as strings, or grant them in ``access`` (every task).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

_PLACEHOLDER = re.compile(r"\[not granted here: (?P<name>[A-Za-z_][A-Za-z0-9_]*) is for queue\(s\) (?P<queues>\S+) only\]")


def placeholder(name: str, queues: Iterable[str]) -> str:
    return f"[not granted here: {name} is for queue(s) {','.join(sorted(queues))} only]"


def placeholders(granted: Mapping[str, Iterable[str]], queue: str | None = None) -> dict[str, str]:
    """{variable: placeholder} for a process of ``queue`` (None: not a worker), given {variable: the queues
    granted it}: every variable the process is not granted."""
    return {name: placeholder(name, queues) for name, queues in sorted(granted.items()) if queue not in set(queues)}


def parse(value: object) -> tuple[str, tuple[str, ...]] | None:
    """(variable, queues) when ``value`` is a placeholder, else None."""
    m = _PLACEHOLDER.fullmatch(value) if isinstance(value, str) else None
    return (m["name"], tuple(m["queues"].split(","))) if m else None


def any_placeholder(env: Mapping[str, str] = os.environ) -> bool:
    """Whether this process lacks any queue-scoped variable (else there is nothing to check)."""
    return any(parse(v) for v in env.values())


def _found(config: object, path: str):
    """(config path, variable, queues) of every placeholder in a resolved config value."""
    hit = parse(config)
    if hit:
        yield path, *hit
    elif isinstance(config, Mapping):
        for key, value in config.items():
            yield from _found(value, f"{path}.{key}" if path else str(key))
    elif isinstance(config, list | tuple):
        for i, value in enumerate(config):
            yield from _found(value, f"{path}[{i}]")


def step_problems(job_def, step, resolved_run_config, execution_plan, queue: str | None) -> list[str]:
    """Why ``step`` cannot run here: each placeholder its resources resolved."""
    from dagster._core.execution.resources_init import get_required_resource_keys_for_step

    keys = set(get_required_resource_keys_for_step(job_def, step, execution_plan))
    todo = list(keys)
    while todo:  # and the resources those resources need
        resource_def = job_def.resource_defs.get(todo.pop())
        for dep in getattr(resource_def, "required_resource_keys", ()) or ():
            if dep not in keys:
                keys.add(dep)
                todo.append(dep)
    here = f"queue {queue!r}" if queue else "this process"
    problems = []
    for key in sorted(keys):
        config = resolved_run_config.resources.get(key)
        for path, name, queues in _found(getattr(config, "config", None), ""):
            field = f" (config {path})" if path else ""
            granted = ", ".join(queues)
            if queue in queues:
                problems.append(
                    f"step {step.key!r} uses resource {key!r}{field}, which reads {name}: the stack grants {name} to "
                    f"{here}, but this worker did not get its value (locally: set {name} in the runner's shell)"
                )
            else:
                problems.append(
                    f"step {step.key!r} runs on {here} and uses resource {key!r}{field}, which reads {name}: the stack "
                    f"grants {name} only to queue(s) {granted} (queues[].access). Send the step there "
                    f"(op_tags={{'dagster-celery/queue': {queues[0]!r}}}) or grant {name} to {here} as well"
                )
    return problems
