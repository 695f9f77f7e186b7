"""Dashboard and alarm definitions (pure): what an operator of the stack watches and is woken up for.

Metric names and dimensions: AWS/ApplicationELB (LoadBalancer, TargetGroup = ARN suffixes), AWS/RDS
(DBInstanceIdentifier), AWS/AmazonMQ broker metrics (Broker = broker name; broker-level metrics exist on
RabbitMQ 3.x and 4.x, per-queue ones only on 3.x -- hence our own publisher), ECS/ContainerInsights
(ClusterName, ServiceName), and our namespace from infra/aws/scaling.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from infra.aws import scaling
from infra.stackfile.config import Queue


@dataclass(frozen=True)
class Targets:
    """Resolved names of what the dashboard and alarms watch."""

    region: str
    stack_id: str
    cluster: str
    worker_services: dict[str, str]  # queue -> ECS service name
    webserver_service: str
    load_balancer: str | None  # ARN suffix; None with ui.access 'ssm' (no load balancer)
    target_group: str | None  # ARN suffix
    database: str  # DB instance identifier
    broker: str  # broker name
    broker_nodes: int = 1  # 3 for a CLUSTER_MULTI_AZ broker

    @classmethod
    def placeholder(cls, load_balanced: bool) -> Targets:
        """Empty names, for what does not depend on them: which alarms exist, and how many metrics they bill."""
        lb = "" if load_balanced else None
        return cls("", "stack", "", {}, "", lb, lb, "", "")


def _queue_metric(metric: str, t: Targets, queue: str, **opts) -> list:
    return [scaling.NAMESPACE, metric, "Stack", t.stack_id, "Queue", queue, opts or {"stat": "Maximum"}]


def _widget(title: str, metrics: list, x: int, y: int, width: int = 12, **extra) -> dict:
    return {
        "type": "metric", "x": x, "y": y, "width": width, "height": 6,
        "properties": {"title": title, "metrics": metrics, "view": "timeSeries", "period": 60, **extra},
    }  # fmt: skip


def dashboard_body(t: Targets) -> str:
    widgets = []
    for i, (queue, service) in enumerate(t.worker_services.items()):
        region = {"region": t.region}
        widgets.append(_widget(f"queue {queue}: backlog and consumers", [
            _queue_metric(scaling.DEPTH, t, queue, label="messages (waiting + running)", **{"stat": "Maximum"}),
            _queue_metric("QueueReady", t, queue, label="waiting", stat="Maximum"),
            _queue_metric(scaling.CONSUMERS, t, queue, label="consumers (workers)", stat="Maximum"),
        ], x=0, y=6 * i, **region))  # fmt: skip
        widgets.append(_widget(f"queue {queue}: worker tasks", [
            ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", t.cluster, "ServiceName", service, {"label": "running"}],
            ["ECS/ContainerInsights", "DesiredTaskCount", "ClusterName", t.cluster, "ServiceName", service, {"label": "desired"}],
        ], x=12, y=6 * i, **region))  # fmt: skip
    y = 6 * len(t.worker_services)
    region = {"region": t.region}
    alb = ["AWS/ApplicationELB"]
    webserver = [
        [*alb, "HealthyHostCount", "TargetGroup", t.target_group, "LoadBalancer", t.load_balancer, {"stat": "Minimum"}],
        [*alb, "UnHealthyHostCount", "TargetGroup", t.target_group, "LoadBalancer", t.load_balancer, {"stat": "Maximum"}],
        [*alb, "HTTPCode_Target_5XX_Count", "LoadBalancer", t.load_balancer, {"stat": "Sum"}],
    ] if t.load_balancer is not None else [
        # No load balancer (ui.access 'ssm'): the webserver's container health check replaces its task when it fails.
        ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", t.cluster, "ServiceName", t.webserver_service,
         {"label": "tasks running the webserver", "stat": "Minimum"}],
    ]  # fmt: skip
    widgets += [
        _widget("webserver: health and errors", webserver, x=0, y=y, width=8, **region),
        _widget("database: CPU, connections, free storage", [
            ["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", t.database],
            ["AWS/RDS", "DatabaseConnections", "DBInstanceIdentifier", t.database],
            ["AWS/RDS", "FreeStorageSpace", "DBInstanceIdentifier", t.database, {"yAxis": "right"}],
        ], x=8, y=y, width=8, **region),
        # Broker-level figures of a cluster add up its nodes: CPU is shown per node, memory as a share of the
        # limit (both summed alike), so 100 % means the same on one node and on three.
        _widget("broker: CPU and memory % (per node), connections", [
            [{"expression": f"cpu / {t.broker_nodes}", "label": "CPU % (mean per node)", "id": "cpu_per_node"}],
            [{"expression": "100 * used / limit", "label": "memory % of limit", "id": "memory"}],
            ["AWS/AmazonMQ", "SystemCpuUtilization", "Broker", t.broker, {"id": "cpu", "visible": False}],
            ["AWS/AmazonMQ", "RabbitMQMemUsed", "Broker", t.broker, {"id": "used", "visible": False}],
            ["AWS/AmazonMQ", "RabbitMQMemLimit", "Broker", t.broker, {"id": "limit", "visible": False}],
            ["AWS/AmazonMQ", "ConnectionCount", "Broker", t.broker, {"yAxis": "right"}],
        ], x=16, y=y, width=8, **region),
    ]  # fmt: skip
    return json.dumps({"widgets": widgets})


def _query(id_: str, namespace: str, metric: str, dims: dict, stat: str = "Maximum") -> dict:
    return {"id": id_, "metric": {"namespace": namespace, "metric_name": metric, "dimensions": dims,
                                   "period": scaling.PERIOD, "stat": stat}}  # fmt: skip


def queue_alarms(q: Queue, t: Targets, no_consumer_minutes: int) -> dict[str, dict]:
    """Alarm arguments per alarm name suffix, for one queue."""
    dims = scaling.dimensions(t.stack_id, q.name)
    depth = _query("depth", scaling.NAMESPACE, scaling.DEPTH, dims)
    consumers = _query("consumers", scaling.NAMESPACE, scaling.CONSUMERS, dims)
    capacity = q.max_workers * q.concurrency
    return {
        # dagster #2336: a step routed to a queue nobody consumes waits forever and hangs its run.
        "stuck": {
            "alarm_description": f"queue {q.name}: messages waiting and no worker for {no_consumer_minutes} min "
                                 f"(runs hang); check the worker-{q.name} service and its scale-from-zero alarm",
            "comparison_operator": "GreaterThanOrEqualToThreshold", "threshold": 1,
            "evaluation_periods": no_consumer_minutes, "datapoints_to_alarm": no_consumer_minutes,
            "treat_missing_data": "notBreaching",
            "metric_queries": [depth, consumers, {"id": "stuck", "return_data": True,
                               "expression": "IF(depth > 0 AND consumers == 0, 1, 0)"}],
        },
        # At maxWorkers and more messages than slots for 15 min: raise maxWorkers or speed up the steps.
        "saturated": {
            "alarm_description": f"queue {q.name}: at maxWorkers ({q.max_workers}) with more than {capacity} "
                                 f"messages for 15 min; raise queues[].maxWorkers",
            "comparison_operator": "GreaterThanOrEqualToThreshold", "threshold": 1,
            "evaluation_periods": 15, "datapoints_to_alarm": 15, "treat_missing_data": "notBreaching",
            "metric_queries": [depth, consumers, {"id": "saturated", "return_data": True,
                               "expression": f"IF(consumers >= {q.max_workers} AND depth > {capacity}, 1, 0)"}],
        },
    }  # fmt: skip


def stack_alarms(t: Targets, first_queue: str) -> dict[str, dict]:
    """Alarm arguments per alarm name suffix, for the stack's shared parts. (The database's storage is watched
    by RDS's own events, database_storage_pattern: storage autoscaling grows it until the ceiling, so a fixed
    free-space threshold would be wrong after the first growth.)"""
    alarms = {
        "broker-memory": {
            "alarm_description": "broker memory above 80 % of its limit: RabbitMQ blocks publishers at 100 %",
            "comparison_operator": "GreaterThanThreshold", "threshold": 0.8, "evaluation_periods": 3,
            "metric_queries": [
                _query("used", "AWS/AmazonMQ", "RabbitMQMemUsed", {"Broker": t.broker}),
                _query("limit", "AWS/AmazonMQ", "RabbitMQMemLimit", {"Broker": t.broker}),
                {"id": "ratio", "expression": "used / limit", "return_data": True},
            ],
        },
        "webserver-unhealthy": {
            "alarm_description": "the Dagster webserver fails its load balancer health check",
            "namespace": "AWS/ApplicationELB", "metric_name": "UnHealthyHostCount", "statistic": "Maximum",
            "period": 60, "dimensions": {"LoadBalancer": t.load_balancer, "TargetGroup": t.target_group},
            "comparison_operator": "GreaterThanThreshold", "threshold": 0, "evaluation_periods": 5,
        },
        # Without data the autoscaling alarms see nothing (they treat missing data as not breaching).
        "queue-metrics-missing": {
            "alarm_description": "no queue metrics for 5 min: the queue-metrics sidecar of the daemon is down, "
                                 "autoscaling is blind",
            "namespace": scaling.NAMESPACE, "metric_name": scaling.DEPTH, "statistic": "SampleCount",
            "period": 60, "dimensions": scaling.dimensions(t.stack_id, first_queue),
            "comparison_operator": "LessThanThreshold", "threshold": 1, "evaluation_periods": 5,
            "treat_missing_data": "breaching",
        },
    }  # fmt: skip
    if t.load_balancer is None:
        del alarms["webserver-unhealthy"]  # ui.access 'ssm': its container health check replaces a failing task
    return alarms


def task_failure_pattern(cluster_arn: str) -> str:
    """EventBridge pattern: a task of the stack's cluster stopped with a container exiting non-zero."""
    return json.dumps({
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "clusterArn": [cluster_arn],
            "lastStatus": ["STOPPED"],
            "containers": {"exitCode": [{"anything-but": 0}]},
        },
    })  # fmt: skip


# RDS-EVENT-0225: the storage has reached maxAllocatedStorageGb, autoscaling can add no more; RDS-EVENT-0007:
# the allocated storage is exhausted (RDS User Guide, "Amazon RDS event categories and event messages";
# "Managing capacity automatically with Amazon RDS storage autoscaling").
DATABASE_STORAGE_EVENTS = ("RDS-EVENT-0225", "RDS-EVENT-0007")


def database_storage_pattern(db_identifier: str) -> str:
    """EventBridge pattern: the stack's database is at its storage ceiling or out of storage."""
    return json.dumps({
        "source": ["aws.rds"],
        "detail-type": ["RDS DB Instance Event"],
        "detail": {"SourceIdentifier": [db_identifier], "EventID": list(DATABASE_STORAGE_EVENTS)},
    })  # fmt: skip
