"""Per-queue scaling parameters (pure): the CloudWatch metrics the queue-metrics publisher writes and the
Application Auto Scaling / CloudWatch settings built on them.

Three mechanisms per worker service (docs/facts.md, "Application Auto Scaling / CloudWatch"):
- backlog: target tracking on messages per worker slot (metric math over the published metrics). Target
  tracking is proportional to the current count, so it cannot leave 0 tasks, and its own scale-in alarm
  waits a fixed ~15 minutes; it only scales out here (``disable_scale_in``);
- scale from zero (only where ``minWorkers`` is 0): an alarm on "messages waiting and no consumer" drives a
  step policy to exactly one task;
- idle: an alarm on "queue empty for ``idleMinutes``" drives a step policy to exactly ``minWorkers``.
  The depth counts unacknowledged (running, late-acked) steps, so an empty queue means no step runs.
"""

from __future__ import annotations

from infra.stackfile.config import Queue

NAMESPACE = "DagsterCeleryAws"  # written by dagster_celery_aws.queue_metrics
DEPTH = "QueueDepth"  # ready + unacknowledged messages
CONSUMERS = "QueueConsumers"  # one per running Celery worker (not per slot)
PERIOD = 60  # seconds; the publisher writes every 60 s or less


def dimensions(stack_id: str, queue: str) -> dict[str, str]:
    return {"Stack": stack_id, "Queue": queue}


def _stat(metric: str, stack_id: str, queue: str, stat: str, *, alarm: bool) -> dict:
    dims = dimensions(stack_id, queue)
    metric_block = {
        "namespace": NAMESPACE,
        "metric_name": metric,
        # MetricAlarm takes dimensions as a dict, target tracking as a list of {name, value} (docs/facts.md).
        "dimensions": dims if alarm else [{"name": k, "value": v} for k, v in dims.items()],
    }
    if alarm:
        return {"metric": {**metric_block, "period": PERIOD, "stat": stat}}
    return {"metric_stat": {"metric": metric_block, "stat": stat}}


def backlog_expression(concurrency: int) -> str:
    # Messages per slot of the consumers now attached; with none attached the depth itself (scale-from-zero
    # starts the first task; this policy takes over from one task on).
    return f"depth / IF(consumers > 0, consumers, 1) / {concurrency}"


def target_tracking(queue: Queue, stack_id: str) -> dict:
    """``target_tracking_scaling_policy_configuration`` of the backlog policy."""
    return {
        "target_value": queue.scaling.target_messages_per_slot,
        "disable_scale_in": True,  # scale-in is the idle policy's: configurable, and only when empty
        "scale_out_cooldown": queue.scaling.scale_out_cooldown_seconds,
        "customized_metric_specification": {
            "metrics": [
                {"id": "depth", "return_data": False, **_stat(DEPTH, stack_id, queue.name, "Maximum", alarm=False)},
                {"id": "consumers", "return_data": False, **_stat(CONSUMERS, stack_id, queue.name, "Maximum", alarm=False)},
                {"id": "backlog", "expression": backlog_expression(queue.concurrency), "return_data": True,
                 "label": f"messages per slot on {queue.name}"},
            ],  # fmt: skip
        },
    }


def exact_capacity_step(count: int, cooldown: int) -> dict:
    """``step_scaling_policy_configuration`` that sets exactly ``count`` tasks whenever its alarm fires."""
    return {
        "adjustment_type": "ExactCapacity",
        "cooldown": cooldown,
        "metric_aggregation_type": "Maximum",
        "step_adjustments": [{"metric_interval_lower_bound": "0", "scaling_adjustment": count}],  # bounds are str
    }


def wake_alarm(queue: Queue, stack_id: str) -> dict:
    """Alarm arguments: a message waits and no worker consumes the queue (the classic hang, dagster #2336)."""
    return {
        "comparison_operator": "GreaterThanOrEqualToThreshold",
        "threshold": 1,
        "evaluation_periods": 1,
        "datapoints_to_alarm": 1,
        "treat_missing_data": "notBreaching",  # no data (publisher down) never starts or stops workers
        "metric_queries": [
            {"id": "depth", **_stat(DEPTH, stack_id, queue.name, "Maximum", alarm=True)},
            {"id": "consumers", **_stat(CONSUMERS, stack_id, queue.name, "Maximum", alarm=True)},
            {"id": "waiting", "expression": "IF(depth > 0 AND consumers == 0, 1, 0)", "return_data": True,
             "label": f"{queue.name}: messages and no consumer"},
        ],  # fmt: skip
    }


def idle_alarm(queue: Queue, stack_id: str) -> dict:
    """Alarm arguments: nothing waiting or running on the queue for ``idleMinutes``."""
    minutes = queue.scaling.idle_minutes
    return {
        "comparison_operator": "LessThanOrEqualToThreshold",
        "threshold": 0,
        "evaluation_periods": minutes,
        "datapoints_to_alarm": minutes,
        "treat_missing_data": "notBreaching",
        "namespace": NAMESPACE,
        "metric_name": DEPTH,
        "dimensions": dimensions(stack_id, queue.name),
        "period": PERIOD,
        "statistic": "Maximum",
    }


# The UI (webserver.maxCount): target tracking on the service's average CPU, ECS's own metric. Out quickly (a busy
# UI answers slowly now); in slowly (tasks take a minute or two to load the code locations and pass the load
# balancer's health check).
UI_SCALE_OUT_COOLDOWN = 60
UI_SCALE_IN_COOLDOWN = 300


def ui_cpu_tracking(target_percent: int) -> dict:
    """``target_tracking_scaling_policy_configuration`` of the webserver service."""
    return {
        "target_value": float(target_percent),
        "predefined_metric_specification": {"predefined_metric_type": "ECSServiceAverageCPUUtilization"},
        "scale_out_cooldown": UI_SCALE_OUT_COOLDOWN,
        "scale_in_cooldown": UI_SCALE_IN_COOLDOWN,
    }
