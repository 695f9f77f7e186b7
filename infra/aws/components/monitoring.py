"""Monitoring: one dashboard and the alarms that come before a hung run or a full disk.

Creates: an SNS topic for alarms and pipeline alerts, encrypted with the stack's key (an e-mail subscription when
``operations.alarmEmail`` is set) -- first, as the daemon's task publishes the alerts -- then with ``watch``, a
CloudWatch dashboard (per queue backlog, consumers, running/desired workers; webserver health and 5xx;
database CPU, connections, free storage; broker CPU, memory, connections), per queue a "messages and no
consumer" and a "saturated at maxWorkers" alarm, stack alarms (database storage, broker memory,
unhealthy webserver, missing queue metrics), and an EventBridge rule that reports tasks stopping with an
error exit code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws import monitoring, naming
from infra.stackfile.config import StackConfig


@dataclass
class MonitoringArgs:
    config: StackConfig
    kms_key_arn: pulumi.Input[str]  # the alarm topic's: alarms and events publish through its key policy


class Monitoring(pulumi.ComponentResource):
    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("dagster-celery-aws:monitoring:Monitoring", name, None, opts)
        cfg, self._name, self._config = args.config, name, args.config
        child = pulumi.ResourceOptions(parent=self)
        self.topic = aws.sns.Topic(naming.fit(aws.sns.Topic, f"{name}-alarms"), kms_master_key_id=args.kms_key_arn, opts=child)
        account = aws.get_caller_identity_output().account_id
        aws.sns.TopicPolicy(
            f"{name}-alarms",
            arn=self.topic.arn,
            policy=pulumi.Output.all(self.topic.arn, account).apply(lambda a: json.dumps({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "AlarmsAndTaskEvents", "Effect": "Allow", "Action": "sns:Publish", "Resource": a[0],
                    "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
                    "Condition": {"StringEquals": {"aws:SourceAccount": a[1]}},
                }],
            })),  # fmt: skip
            opts=child,
        )
        if cfg.operations.alarm_email:
            aws.sns.TopicSubscription(
                f"{name}-email", topic=self.topic.arn, protocol="email", endpoint=cfg.operations.alarm_email, opts=child
            )

    def watch(self, targets: pulumi.Output, cluster_arn: pulumi.Input[str]) -> None:
        """The dashboard, the alarms and the task events, once the services they watch are declared;
        ``targets``: Output[monitoring.Targets]."""
        name, cfg, t = self._name, self._config, targets
        child = pulumi.ResourceOptions(parent=self)
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=naming.fit(aws.cloudwatch.Dashboard, name), dashboard_body=t.apply(monitoring.dashboard_body), opts=child
        )

        def alarm(suffix: str, arguments: pulumi.Output) -> None:
            # Alarm arguments are built from resolved names; each key becomes one MetricAlarm input.
            keys = ("alarm_description", "comparison_operator", "threshold", "evaluation_periods",
                    "datapoints_to_alarm", "treat_missing_data", "metric_queries", "namespace", "metric_name",
                    "statistic", "period", "dimensions")  # fmt: skip
            aws.cloudwatch.MetricAlarm(
                f"{name}-{suffix}",
                alarm_actions=[self.topic.arn],
                ok_actions=[self.topic.arn],
                **{k: arguments.apply(lambda a, k=k: a.get(k)) for k in keys},
                opts=child,
            )

        minutes = cfg.operations.no_consumer_minutes
        for q in cfg.queues:
            for suffix in ("stuck", "saturated"):
                alarm(f"{q.name.replace('.', '-')}-{suffix}", t.apply(lambda t, q=q, s=suffix: monitoring.queue_alarms(q, t, minutes)[s]))
        # Which there are does not depend on the names (webserver-unhealthy only behind a load balancer).
        for suffix in monitoring.stack_alarms(monitoring.Targets.placeholder(cfg.ui.access.load_balanced), ""):
            alarm(suffix, t.apply(lambda t, s=suffix: monitoring.stack_alarms(t, cfg.queues[0].name)[s]))
        events = {
            "task-failed": ("a task of the stack stopped with a container exiting non-zero",
                            pulumi.Output.from_input(cluster_arn).apply(monitoring.task_failure_pattern)),
            "db-storage": ("the database reached its storage ceiling (maxAllocatedStorageGb) or ran out of storage",
                           t.apply(lambda t: monitoring.database_storage_pattern(t.database))),
        }  # fmt: skip
        for suffix, (description, pattern) in events.items():
            rule = aws.cloudwatch.EventRule(
                naming.fit(aws.cloudwatch.EventRule, f"{name}-{suffix}"), description=description,
                event_pattern=pattern, opts=child,
            )  # fmt: skip
            aws.cloudwatch.EventTarget(f"{name}-{suffix}", rule=rule.name, arn=self.topic.arn, opts=child)
        self.register_outputs({"topic_arn": self.topic.arn, "dashboard": self.dashboard.dashboard_name})
