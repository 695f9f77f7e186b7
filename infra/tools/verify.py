"""Does a deployed stack serve? ``pulumi up`` succeeding says the resources exist, not that the services run:
a service can be rolling back, a queue's workers crash-looping on a bad image, the UI route closed. This reads
the stack's outputs (``pulumi stack output --json``) and asks AWS (boto3), then prints one line per check and
exits 1 when any fails (for CI):

- every service steady: running = desired, one deployment and it COMPLETED, no task stopped with an error
  within the tasks ECS still lists (the stopped reason is printed);
- the load balancer's targets healthy;
- no alarm that notifies the stack's alarm topic in ALARM;
- every queue served: its worker service ACTIVE, its Application Auto Scaling target allows a task;
- the run task definition ACTIVE (runs mode "task");
- one image across every task definition, and one digest across the running tasks;
- the UI route's prerequisites: with ui.access 'ssm', ECS Exec on the service that runs the webserver;
- with ``--canary``: the canary job (dagster_celery_aws.canary, in one of the stack's code locations) launched
  through the webserver's GraphQL as the UI launches a run, one step on every queue, waited for.

    pulumi stack output --json | python -m infra.tools.verify            # or --outputs outputs.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Stop codes of a task that failed (ECS API reference, Task.stopCode); a scale-in or a replaced deployment stops
# tasks with ServiceSchedulerInitiated / UserInitiated and no error in the reason.
FAILED_STOP_CODES = {"TaskFailedToStart", "EssentialContainerExited"}
FAILED_REASON = re.compile(r"fail|error|unhealthy|cannot|unable", re.IGNORECASE)
SCALABLE_DIMENSION = "ecs:service:DesiredCount"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}  # DagsterRunStatus of a run that has ended


@dataclass(frozen=True)
class Check:
    ok: bool
    check: str
    subject: str
    detail: str = ""

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.check:<12}  {self.subject:<40}  {self.detail}".rstrip()


def _services(outputs: dict) -> dict[str, str]:
    """{ECS service name: what it runs}: the webserver's service is the daemon's with ui.access 'ssm'."""
    names = {outputs["daemon_service"]: "daemon"}
    names.setdefault(outputs["webserver_service"], "webserver")
    for queue, name in outputs.get("worker_services", {}).items():
        names[name] = f"queue {queue}"
    return names


def _stopped_with_error(task: dict) -> str | None:
    reason = task.get("stoppedReason", "")
    exits = [f"{c['name']} exited {c['exitCode']}" + (f" ({c['reason']})" if c.get("reason") else "")
             for c in task.get("containers", []) if c.get("exitCode") not in (None, 0)]  # fmt: skip
    if task.get("stopCode") in FAILED_STOP_CODES or FAILED_REASON.search(reason):
        return "; ".join(filter(None, [reason or task.get("stopCode"), *exits]))
    return None


def _describe(ecs, cluster: str, names: list[str]) -> dict[str, dict]:
    found = {}
    for i in range(0, len(names), 10):  # DescribeServices takes at most 10 services
        answer = ecs.describe_services(cluster=cluster, services=names[i : i + 10])
        found |= {s["serviceName"]: s for s in answer["services"]}
    return found


def check_services(ecs, cluster: str, services: dict[str, str], found: dict[str, dict]) -> Iterable[Check]:
    for name, role in services.items():
        subject = f"{name} ({role})"
        service = found.get(name)
        if service is None or service.get("status") != "ACTIVE":
            yield Check(
                False, "service", subject, f"not found or not ACTIVE ({(service or {}).get('status', 'missing')})"
            )
            continue
        running, desired = service["runningCount"], service["desiredCount"]
        deployments = service.get("deployments", [])
        primary = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
        rollout = primary.get("rolloutState", "COMPLETED")  # absent: a service without a rolling update
        problems = []
        if running != desired:
            problems.append(f"running {running} of desired {desired}")
        if len(deployments) > 1 or rollout != "COMPLETED":
            problems.append(f"deployment {rollout}: {primary.get('rolloutStateReason', '')}".rstrip(": "))
        stopped = ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus="STOPPED")["taskArns"]
        if stopped:
            for task in ecs.describe_tasks(cluster=cluster, tasks=stopped[:100])["tasks"]:
                error = _stopped_with_error(task)
                if error:
                    problems.append(f"task {task['taskArn'].rsplit('/', 1)[-1]} stopped: {error}")
                    break  # the latest is enough to act on; ECS shows the rest
        yield Check(not problems, "service", subject, "; ".join(problems) or f"running {running} of {desired}")


def check_queues(ecs, autoscaling, cluster: str, workers: dict[str, str]) -> Iterable[Check]:
    if not workers:
        return
    ids = [f"service/{cluster}/{name}" for name in workers.values()]
    targets = {}
    for page in autoscaling.get_paginator("describe_scalable_targets").paginate(
        ServiceNamespace="ecs", ResourceIds=ids, ScalableDimension=SCALABLE_DIMENSION
    ):
        targets |= {t["ResourceId"]: t for t in page["ScalableTargets"]}
    for queue, name in sorted(workers.items()):
        target = targets.get(f"service/{cluster}/{name}")
        if target is None:
            yield Check(False, "queue", queue, f"no scaling target on service {name}: nothing starts its workers")
        elif target["MaxCapacity"] < 1:
            yield Check(False, "queue", queue, f"service {name} may run at most {target['MaxCapacity']} tasks")
        elif target.get("SuspendedState", {}).get("DynamicScalingOutSuspended"):
            yield Check(False, "queue", queue, f"scale-out of service {name} is suspended")
        else:
            yield Check(True, "queue", queue, f"{name}: {target['MinCapacity']}..{target['MaxCapacity']} tasks")


def check_targets(elb, target_group: str | None) -> Iterable[Check]:
    if not target_group:
        return
    health = elb.describe_target_health(TargetGroupArn=target_group)["TargetHealthDescriptions"]
    name = target_group.rsplit(":", 1)[-1]
    bad = [f"{t['Target']['Id']} {t['TargetHealth']['State']} ({t['TargetHealth'].get('Description', '')})"
           for t in health if t["TargetHealth"]["State"] != "healthy"]  # fmt: skip
    if not health:
        yield Check(False, "targets", name, "no registered target: the UI has nothing behind it")
    else:
        yield Check(not bad, "targets", name, "; ".join(bad) or f"{len(health)} healthy")


def check_alarms(cloudwatch, topic: str) -> Iterable[Check]:
    alarms = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
        alarms += [a for kind in ("MetricAlarms", "CompositeAlarms") for a in page.get(kind, [])
                   if topic in a.get("AlarmActions", [])]  # fmt: skip
    firing = [a for a in alarms if a["StateValue"] == "ALARM"]
    for alarm in firing:
        yield Check(False, "alarm", alarm["AlarmName"], alarm.get("StateReason", ""))
    if not firing:
        yield Check(True, "alarm", f"{len(alarms)} alarms", "none in ALARM")


def check_run_task_definition(ecs, arn: str | None) -> Iterable[Check]:
    if not arn:
        return
    try:
        status = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["status"]
    except ecs.exceptions.ClientException as err:
        status = err.response["Error"]["Message"]
    family = arn.rsplit("/", 1)[-1]
    yield Check(status == "ACTIVE", "run task", family, status if status != "ACTIVE" else "ACTIVE")


def check_image(ecs, cluster: str, found: dict[str, dict], run_task_definition: str | None) -> Iterable[Check]:
    definitions = [s["taskDefinition"] for s in found.values()] + ([run_task_definition] if run_task_definition else [])
    images: dict[str, list[str]] = {}
    for arn in definitions:
        for container in ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["containerDefinitions"]:
            images.setdefault(container["image"], []).append(arn.rsplit("/", 1)[-1])
    digests: dict[str, set[str]] = {}
    for name in found:
        running = ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus="RUNNING")["taskArns"]
        for task in ecs.describe_tasks(cluster=cluster, tasks=running)["tasks"] if running else []:
            for container in task.get("containers", []):
                if container.get("imageDigest"):
                    digests.setdefault(container["imageDigest"], set()).add(name)
    if len(images) > 1:
        yield Check(
            False,
            "image",
            "task definitions",
            "; ".join(f"{i} in {', '.join(sorted(set(d)))}" for i, d in images.items()),
        )
    elif len(digests) > 1:
        yield Check(
            False, "image", "running tasks", "; ".join(f"{d} in {', '.join(sorted(s))}" for d, s in digests.items())
        )
    else:
        yield Check(True, "image", "every service", next(iter(digests), next(iter(images), "")))


def check_ui_route(found: dict[str, dict], outputs: dict) -> Iterable[Check]:
    from infra.aws.stack import SSM_UI_URL

    if outputs["ui_url"] != SSM_UI_URL:
        yield Check(True, "ui route", outputs["ui_url"], "load balancer")
        return
    name = outputs["webserver_service"]
    enabled = bool(found.get(name, {}).get("enableExecuteCommand"))
    yield Check(enabled, "ui route", f"ssm to {name}",
                "ECS Exec enabled" if enabled else "ECS Exec is off: no SSM session can reach the UI")  # fmt: skip


def check_canary(ui: str, queues: Iterable[str], timeout: float, poll: float = 5.0) -> Iterable[Check]:
    """Launch the canary on the webserver at ``ui`` with the stack's queues and wait for its run to end."""
    from dagster_celery_aws import canary
    from infra.local import graphql, launch

    try:
        location = launch.find_location(ui, canary.CANARY_JOB)
        run_id = graphql.launch_run(ui, location, canary.CANARY_JOB, tags={canary.QUEUES_TAG: ",".join(sorted(queues))})
    except (graphql.LaunchError, OSError) as err:
        yield Check(False, "canary", canary.CANARY_JOB, f"not launched from {ui}: {err}")
        return
    deadline, status = time.monotonic() + timeout, "QUEUED"
    while status not in FINISHED and time.monotonic() < deadline:
        time.sleep(poll)
        status = graphql.run_status(ui, run_id)
    detail = status if status in FINISHED else f"still {status} after {timeout:.0f} s"
    yield Check(status == "SUCCESS", "canary", f"run {run_id}", f"{detail} ({ui}/runs/{run_id})")


def verify(outputs: dict, client: Callable[[str], object]) -> list[Check]:
    """Every check on the stack whose ``pulumi stack output --json`` is ``outputs``; ``client(name)`` gives a
    boto3 client (its region and endpoint are the caller's)."""
    ecs, cluster, services = client("ecs"), outputs["cluster_name"], _services(outputs)
    run, found = outputs.get("run_task_definition"), _describe(ecs, cluster, list(services))
    return [
        *check_services(ecs, cluster, services, found),
        *check_targets(client("elbv2"), outputs.get("target_group")),
        *check_alarms(client("cloudwatch"), outputs["alarm_topic"]),
        *check_queues(ecs, client("application-autoscaling"), cluster, outputs.get("worker_services", {})),
        *check_run_task_definition(ecs, run),
        *check_image(ecs, cluster, found, run),
        *check_ui_route(found, outputs),
    ]


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(prog="python -m infra.tools.verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("--outputs", type=argparse.FileType(), default=sys.stdin,
                        help="the stack's `pulumi stack output --json` (default: standard input)")  # fmt: skip
    parser.add_argument("--region", help="the stack's region (default: boto3's, e.g. AWS_REGION)")
    parser.add_argument("--canary", action="store_true",
                        help="also run the canary job through the webserver and wait for it (dagster_celery_aws.canary)")  # fmt: skip
    parser.add_argument("--ui", help="the webserver's URL for --canary (default: ui_url; with ui.access 'ssm', the "
                        "forwarded port on 127.0.0.1)")  # fmt: skip
    parser.add_argument("--canary-timeout", type=float, default=900.0,
                        help="seconds to wait for the canary's run (default 900: a queue at zero starts a worker first)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        outputs = json.load(args.outputs)
    except json.JSONDecodeError as err:
        parser.error(f"--outputs is not the JSON of `pulumi stack output --json`: {err}")
    missing = [
        k for k in ("cluster_name", "daemon_service", "webserver_service", "alarm_topic", "ui_url") if k not in outputs
    ]
    if missing:
        parser.error(f"the stack outputs lack {', '.join(missing)}: pass `pulumi stack output --json` of this project")
    session = boto3.session.Session(region_name=args.region)
    checks = verify(outputs, session.client)
    if args.canary:
        ui = args.ui or outputs["ui_url"].split()[0]  # the SSM route's output is the forwarded URL and a note
        checks += check_canary(ui, outputs.get("worker_services", {}), args.canary_timeout)
    for check in checks:
        print(check.line())
    failed = sum(not c.ok for c in checks)
    print(f"{len(checks) - failed} ok, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
