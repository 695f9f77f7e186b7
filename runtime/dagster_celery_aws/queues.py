"""Which queue each step of a job goes to, and whether the deployment serves it.

One rule, used by the run worker's executor (before it sends any step), the image check (at deploy time) and
the local runner's preflight:

- a step goes to its op's ``dagster-celery/queue`` tag, else the Celery default queue: what dagster-celery's
  loop does (``step.tags``, which are the node's tags: dagster/_core/execution/plan/plan.py). For an asset
  that is ``@asset(op_tags=...)``;
- an asset's own ``tags`` are asset metadata: Dagster never gives them to the op, so ``@asset(tags={QUEUE_TAG:
  ...})`` would send the step to the default queue without a word. Such an asset is refused, naming the asset
  and the ``op_tags`` to write instead (unless its op tag already says the same queue);
- the deployment's queues are ``DCA_QUEUES`` (comma-separated): the stack's configured queues, given to the
  processes that send steps (the daemon, the run tasks; every local process). A queue in that list is served:
  on AWS a queue with ``minWorkers: 0`` has no consumer until its backlog starts a worker, so "no consumer
  now" cannot mean "never served"; a queue outside it has no worker service at all, and its steps would wait
  forever. Unset (``dagster dev``, your tests) means: no check.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

QUEUE_TAG = "dagster-celery/queue"  # dagster_celery.tags.DAGSTER_CELERY_QUEUE_TAG
QUEUES_VAR = "DCA_QUEUES"  # infra/specs/contract.py QUEUES
DEFAULT_QUEUE = "dagster"  # celery_config.yaml task_default_queue


def deployment_queues(env: Mapping[str, str] = os.environ) -> frozenset[str] | None:
    """The stack's queues, or None where no stack says (no check)."""
    names = frozenset(q.strip() for q in env.get(QUEUES_VAR, "").split(",") if q.strip())
    return names or None


def _op_handles(job_def):
    from dagster import OpDefinition

    for handle in job_def.graph.iterate_node_handles():
        if isinstance(job_def.graph.get_node(handle).definition, OpDefinition):
            yield handle


def step_queues(job_def, default: str = DEFAULT_QUEUE) -> dict[str, str]:
    """{step key: queue} for every op of the job (a dynamic op's steps share its key's queue)."""
    return {str(h): job_def.graph.get_node(h).tags.get(QUEUE_TAG, default) for h in _op_handles(job_def)}


def asset_tag_problems(job_def, default: str = DEFAULT_QUEUE) -> list[str]:
    """Assets of the job whose ``tags`` name a queue their op's tags do not send the step to."""
    problems = []
    layer = job_def.asset_layer
    for handle in _op_handles(job_def):
        assets_def = layer.get_assets_def_for_node(handle) or layer.get_assets_def_for_node(handle.root)
        if assets_def is None:
            continue
        queue = job_def.graph.get_node(handle).tags.get(QUEUE_TAG, default)
        for key, tags in assets_def.tags_by_key.items():
            wanted = (tags or {}).get(QUEUE_TAG)
            if wanted is not None and wanted != queue:
                problems.append(
                    f"asset {key.to_user_string()!r} has tags={{{QUEUE_TAG!r}: {wanted!r}}}, which Dagster does not "
                    f"give to its step: the step would go to queue {queue!r}. Route it with "
                    f"@asset(op_tags={{{QUEUE_TAG!r}: {wanted!r}}}) (asset tags are metadata only)"
                )
    return sorted(set(problems))


def unserved(queues: Mapping[str, str], served) -> dict[str, str]:
    """The job->queue rule: the {step: queue} of each step whose queue is not one of ``served`` (such a step waits
    forever: dagster issue 2336)."""
    return {step: queue for step, queue in sorted(queues.items()) if queue not in served}


def routing_problems(job_def, queues: Mapping[str, str], default: str = DEFAULT_QUEUE, served=None) -> list[str]:
    """Why the job's steps ({step: queue}) would not run on the deployment's queues: asset tags that route
    nothing, and steps for a queue outside ``served`` (None: not checked). Empty when every step has its queue."""
    problems = asset_tag_problems(job_def, default)
    missing = unserved(queues, served) if served is not None else {}
    if missing:
        sends = ", ".join(f"step {step!r} -> queue {queue!r}" for step, queue in missing.items())
        problems.append(
            f"job {job_def.name!r} sends {sends}, but the stack has no such queue (its queues: "
            f"{', '.join(sorted(served))}): such a step would wait forever. Add the queue to the stack's queues, "
            f"or tag the op with one of these"
        )
    return problems


def location_jobs(module: str, working_directory: str | None = None) -> dict:
    """The jobs of a code location, loaded as Dagster loads it, the implicit asset jobs (the UI's Materialize,
    backfills: ``__ASSET_JOB``) included: {name: job definition}."""
    from dagster._core.definitions.reconstruct import repository_def_from_target_def
    from dagster._core.workspace.autodiscovery import loadable_targets_from_python_module

    found = {}
    for target in loadable_targets_from_python_module(module, working_directory=working_directory):
        repo = repository_def_from_target_def(target.target_definition)
        if repo is not None:
            found |= {job.name: job for job in repo.get_all_jobs()}
    return found


def _first_error(err: Exception) -> str:
    """A config error's first cause (``DagsterInvalidConfigError`` lists them after a generic first line)."""
    causes = [e.message for e in getattr(err, "errors", None) or [] if getattr(e, "message", None)]
    if not causes:
        return (str(err).strip().splitlines() or [""])[0]
    # e.g. "Post processing at path ... failed:\ndagster._config.errors.PostProcessingError: You have attempted to
    # fetch the environment variable ... \n\nStack Trace: ...": the line that says what is wrong
    lines = [line for line in causes[0].split("\n\nStack Trace")[0].strip().splitlines() if line.strip()]
    return re.sub(r"^[\w.]+(Error|Exception): ", "", lines[-1].strip()) if lines else causes[0]


def executor_problem(job_def, broker_url: str | None) -> str | None:
    """Why the stack's workers would never see the job's steps (its executor runs them itself, or sends them to
    a broker of its own), or None."""
    from dagster._core.system_config.objects import ResolvedRunConfig

    executor = job_def.executor_def.name
    try:
        config = ResolvedRunConfig.build(job_def, {}).execution.execution_engine_config or {}
    except Exception as err:  # noqa: BLE001 - e.g. required run config
        return f"it cannot run without run config ({type(err).__name__}: {_first_error(err)})"
    if "broker" not in config:
        return (f"its executor {executor!r} runs the steps itself, not on the stack's Celery workers; use "
                f"dagster_celery_aws's celery_executor (on Definitions(executor=...), so that every job has it)")  # fmt: skip
    if broker_url is not None and config["broker"] != broker_url:
        return ("its Celery executor names a broker of its own, so the stack's workers never see its steps; "
                "use dagster_celery_aws's celery_executor (the deployment's broker)")  # fmt: skip
    return None
