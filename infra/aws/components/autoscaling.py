"""Autoscaling: one queue's worker service follows the queue's backlog (infra/aws/scaling.py has the why); the
UI's webserver service follows its CPU (``UiScaling``).

Creates, for one worker service: a target-tracking policy on messages per worker slot (scale out), a step
policy + alarm that sets ``minWorkers`` after the queue has been empty for ``idleMinutes`` (scale in), and,
only where ``minWorkers`` is 0, a step policy + alarm that starts one task when a message waits and no
worker consumes (scale from zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws import scaling
from infra.stackfile.config import Queue, Webserver


@dataclass
class QueueScalingArgs:
    queue: Queue
    stack_id: str
    target: aws.appautoscaling.Target


class QueueScaling(pulumi.ComponentResource):
    def __init__(self, name: str, args: QueueScalingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("dagster-celery-aws:autoscaling:QueueScaling", name, None, opts)
        q, target = args.queue, args.target
        child = pulumi.ResourceOptions(parent=self)
        on_target = {
            "service_namespace": target.service_namespace,
            "resource_id": target.resource_id,
            "scalable_dimension": target.scalable_dimension,
        }
        aws.appautoscaling.Policy(
            f"{name}-backlog", policy_type="TargetTrackingScaling", **on_target,
            target_tracking_scaling_policy_configuration=scaling.target_tracking(q, args.stack_id), opts=child,
        )  # fmt: skip
        idle = aws.appautoscaling.Policy(
            f"{name}-idle", policy_type="StepScaling", **on_target,
            step_scaling_policy_configuration=scaling.exact_capacity_step(q.min_workers, cooldown=60), opts=child,
        )  # fmt: skip
        aws.cloudwatch.MetricAlarm(
            f"{name}-idle", alarm_description=f"queue {q.name} empty for {q.scaling.idle_minutes} min: scale to minWorkers",
            alarm_actions=[idle.arn], **scaling.idle_alarm(q, args.stack_id), opts=child,
        )  # fmt: skip
        if q.min_workers == 0:
            wake = aws.appautoscaling.Policy(
                f"{name}-wake", policy_type="StepScaling", **on_target,
                step_scaling_policy_configuration=scaling.exact_capacity_step(1, cooldown=q.scaling.scale_out_cooldown_seconds),
                opts=child,
            )  # fmt: skip
            aws.cloudwatch.MetricAlarm(
                f"{name}-wake", alarm_description=f"queue {q.name} has messages and no worker: start one",
                alarm_actions=[wake.arn], **scaling.wake_alarm(q, args.stack_id), opts=child,
            )  # fmt: skip
        self.register_outputs({})


class UiScaling(pulumi.ComponentResource):
    """One target-tracking policy on the webserver service's average CPU (webserver.maxCount, targetCpuPercent)."""

    def __init__(self, name: str, webserver: Webserver, target: aws.appautoscaling.Target,
                 opts: pulumi.ResourceOptions | None = None):  # fmt: skip
        super().__init__("dagster-celery-aws:autoscaling:UiScaling", name, None, opts)
        aws.appautoscaling.Policy(
            f"{name}-cpu", policy_type="TargetTrackingScaling", service_namespace=target.service_namespace,
            resource_id=target.resource_id, scalable_dimension=target.scalable_dimension,
            target_tracking_scaling_policy_configuration=scaling.ui_cpu_tracking(webserver.target_cpu_percent),
            opts=pulumi.ResourceOptions(parent=self),
        )  # fmt: skip
        self.register_outputs({})
