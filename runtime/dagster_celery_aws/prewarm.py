"""Plan-aware pre-warming: when a run starts, the worker services of the queues its plan uses that have no task
are scaled out of zero at once (desired 0 -> 1), instead of waiting for the first step's message to show in the
next minute's queue metric and the wake alarm (docs/autoscaling.md). The first step of a cold queue then waits
only for its task to start. Scale-in stays with the queue's policy (idle for ``idleMinutes`` -> ``minWorkers``);
a service that has a task, or is asked for one, is left alone; 1 is within every queue's bounds
(``maxWorkers`` >= 1).

The run worker's executor calls ``wake`` before it sends any step. It needs the stack's cluster (``DCA_CLUSTER``)
and its queues' worker services (``DCA_WORKER_SERVICES``, JSON ``{queue: service}``), which the stack gives to the
processes that run the run workers, with ``ecs:DescribeServices`` and ``ecs:UpdateService`` on exactly those
services. Without them (the local runner, ``dagster dev``) it does nothing. It never delays or fails the run:
the calls run in a thread, and an error is a warning in the run's log.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping

from dagster_celery_aws.queues import QUEUE_TAG

CLUSTER_VAR = "DCA_CLUSTER"  # infra/specs/contract.py CLUSTER
SERVICES_VAR = "DCA_WORKER_SERVICES"  # infra/specs/contract.py WORKER_SERVICES
DESCRIBE_LIMIT = 10  # DescribeServices takes at most 10 services


def plan_queues(execution_plan, default_queue: str) -> set[str]:
    """The queues of the steps the run will execute, known before any is sent (a mapped step's op's queue)."""
    return {execution_plan.get_step_by_key(key).tags.get(QUEUE_TAG, default_queue)
            for key in execution_plan.step_keys_to_execute}  # fmt: skip


def cold_start(queues: Iterable[str], env: Mapping[str, str] = os.environ, ecs=None) -> list[str]:
    """Ask one task of each worker service of ``queues`` whose desired count is 0; returns those queues."""
    cluster = env.get(CLUSTER_VAR)
    services = json.loads(env.get(SERVICES_VAR) or "{}")
    wanted = {services[q]: q for q in sorted(set(queues)) if q in services}
    if not cluster or not wanted:
        return []
    if ecs is None:
        import boto3

        ecs = boto3.client("ecs")
    names, woken = sorted(wanted), []
    for i in range(0, len(names), DESCRIBE_LIMIT):
        for service in ecs.describe_services(cluster=cluster, services=names[i : i + DESCRIBE_LIMIT])["services"]:
            if service["desiredCount"] == 0:
                ecs.update_service(cluster=cluster, service=service["serviceName"], desiredCount=1)
                woken.append(wanted[service["serviceName"]])
    return sorted(woken)


def wake(execution_plan, default_queue: str, log) -> threading.Thread | None:
    """``cold_start`` for the plan's queues in a thread (None where the stack names no services)."""
    if not os.environ.get(CLUSTER_VAR):
        return None
    queues = plan_queues(execution_plan, default_queue)

    def run() -> None:
        try:
            woken = cold_start(queues)
        except Exception as err:  # noqa: BLE001 - the queue's own scaling still wakes it
            log.warning(f"pre-warming the queues {', '.join(sorted(queues))} failed ({err}); their scaling wakes them")
            return
        if woken:
            log.info(f"pre-warming: asked one worker of queue(s) {', '.join(woken)}, which had none")

    thread = threading.Thread(target=run, name="dca-prewarm", daemon=True)
    thread.start()
    return thread
