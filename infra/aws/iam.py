"""IAM policy documents (pure): what each role of the stack may do, scoped to the stack's own resources."""

from __future__ import annotations


VERSION = "2012-10-17"

def trust(service: str) -> dict:
    """A role that only ``service`` may assume."""
    return {
        "Version": VERSION,
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


ECS_TASKS_TRUST = trust("ecs-tasks.amazonaws.com")


def flow_logs_policy(log_group_arn: str) -> dict:
    """VPC flow logs: write into the stack's flow-log group only."""
    return {
        "Version": VERSION,
        "Statement": [
            {"Sid": "WriteFlowLogs", "Effect": "Allow",
             "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
             "Resource": [log_group_arn, f"{log_group_arn}:*"]},
        ],
    }  # fmt: skip


def secret_resources(value_froms: list[str]) -> tuple[list[str], list[str]]:
    """(Secrets Manager secret ARNs, SSM parameter ARNs) that containers read, from ECS ``valueFrom``s.

    A Secrets Manager ``valueFrom`` may carry ``:json-key:stage:version`` after the ARN; the ARN is a full one
    (``config.SECRET_ARN``), so the grant is that ARN and nothing that matches other secrets' names."""
    secrets, parameters = set(), set()
    for value in value_froms:
        if ":ssm:" in value:
            parameters.add(value)
            continue
        secrets.add(":".join(value.split(":")[:7]))
    return sorted(secrets), sorted(parameters)


def _key_statement(kms_key_arn: str | None, write: bool) -> list[dict]:
    """Use of the stack's KMS key: decrypt what it encrypted (secrets, bucket objects), and data keys for
    objects written to the bucket (S3 User Guide, "Using server-side encryption with AWS KMS keys": PutObject
    needs kms:GenerateDataKey, GetObject kms:Decrypt). Nothing else, and no other key."""
    if not kms_key_arn:
        return []
    actions = ["kms:Decrypt", "kms:GenerateDataKey"] if write else "kms:Decrypt"
    return [{"Sid": "UseStackKey", "Effect": "Allow", "Action": actions, "Resource": kms_key_arn}]


def execution_policy(
    secret_arns: list[str], log_group_arn: str, parameter_arns: list[str] = (), kms_key_arn: str | None = None,
    secret_kms_keys: tuple[str, ...] = (), region: str = "",
) -> dict:
    """The ECS agent: read the stack's secrets into containers (decrypting them with the stack's key: ECS guide,
    "Amazon ECS task execution IAM role", Secrets Manager) and write their logs (the image pull is the
    AWS-managed AmazonECSTaskExecutionRolePolicy; ECR decrypts images through its own grant on the key).
    User secrets encrypted with keys of their own (``access.secretKmsKeys``): kms:Decrypt on those keys, only when
    Secrets Manager in ``region`` asks (kms:ViaService; AWS KMS Developer Guide, "kms:ViaService")."""
    parameters = [{"Sid": "ReadUserParameters", "Effect": "Allow", "Action": "ssm:GetParameters",
                   "Resource": list(parameter_arns)}] if parameter_arns else []  # fmt: skip
    parameters += [{"Sid": "DecryptUserSecrets", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": sorted(secret_kms_keys),
                    "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}}
                   ] if secret_kms_keys else []  # fmt: skip
    return {
        "Version": VERSION,
        "Statement": [
            {"Sid": "ReadStackSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret_arns},
            *parameters,
            *_key_statement(kms_key_arn, write=False),
            {"Sid": "WriteLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": f"{log_group_arn}:*"},
        ],
    }  # fmt: skip


def _bucket_statements(bucket_arn: str) -> list[dict]:
    return [
        {"Sid": "ListBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn},
        {"Sid": "ReadWriteObjects", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": f"{bucket_arn}/*"},
    ]  # fmt: skip


# ECS Exec: the SSM agent in the task opens its channels; these actions have no resource-level
# permissions (ECS guide, "ECS Exec", IAM permissions required).
ECS_EXEC_ACTIONS = [
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
]


def _exec_statements(ecs_exec: bool) -> list[dict]:
    return [{"Sid": "EcsExec", "Effect": "Allow", "Action": ECS_EXEC_ACTIONS, "Resource": "*"}] if ecs_exec else []


def cluster_task_arns(cluster_arn: str) -> str:
    """``arn:aws:ecs:<region>:<account>:task/<cluster>/*`` for ``arn:aws:ecs:<region>:<account>:cluster/<cluster>``."""
    return cluster_arn.replace(":cluster/", ":task/", 1) + "/*"


def worker_policy(bucket_arn: str, cluster_arn: str, ecs_exec: bool = False, kms_key_arn: str | None = None) -> dict:
    """Workers and run tasks (each under a role of its own): step outputs and compute logs in the stack's bucket
    (encrypted with the stack's key), and scale-in protection of their own tasks while a step runs (the ECS agent
    calls it with the task role; docs/facts.md)."""
    return {
        "Version": VERSION,
        "Statement": [
            *_bucket_statements(bucket_arn),
            *_key_statement(kms_key_arn, write=True),
            {"Sid": "ProtectRunningSteps", "Effect": "Allow",
             "Action": ["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"], "Resource": cluster_task_arns(cluster_arn)},
            *_exec_statements(ecs_exec),
        ],
    }  # fmt: skip


def prewarm_policy(cluster_arn: str, services: dict[str, str]) -> dict:
    """The run workers: a cold queue's worker service scaled out of zero as a run starts
    (dagster_celery_aws.prewarm), on exactly the stack's worker services (``services``: service name -> its task
    definition family). UpdateService may not put another task definition on a service: where the request carries
    ``ecs:task-definition`` (a condition key of ecs:UpdateService, Service Authorization Reference: ECS;
    docs/facts.md), it must be a revision of the worker families (``ArnLikeIfExists``: whether ECS sets the key only
    when the request names a task definition or also from the service's own, the pre-warming call, which names
    none, passes, and a run cannot put another role's task definition on a worker service). No condition key covers
    desiredCount alone."""
    arns = [cluster_arn.replace(":cluster/", ":service/", 1) + f"/{name}" for name in sorted(services)]
    families = [cluster_arn.split(":cluster/", 1)[0] + f":task-definition/{services[name]}:*" for name in sorted(services)]
    return {
        "Version": VERSION,
        "Statement": [
            {"Sid": "SeeWorkerServices", "Effect": "Allow", "Action": "ecs:DescribeServices", "Resource": arns},
            {"Sid": "WakeColdQueues", "Effect": "Allow", "Action": "ecs:UpdateService", "Resource": arns,
             "Condition": {"ArnLikeIfExists": {"ecs:task-definition": families}}},
        ],
    }  # fmt: skip


def control_policy(
    bucket_arn: str,
    cluster_arn: str,
    run_family_arn: str | None,
    pass_role_arns: list[str],
    log_group_arn: str,
    metrics_namespace: str,
    ecs_exec: bool = False,
    kms_key_arn: str | None = None,
) -> dict:
    """Webserver and daemon: the bucket (and the stack's key that encrypts it), what EcsRunLauncher calls to
    start, watch and stop run tasks (runs mode "task"; ``run_family_arn`` None: mode "daemon", no run tasks, and
    the run workers in the daemon's task use this role), and the queue metrics."""
    return {
        "Version": VERSION,
        "Statement": [
            *_bucket_statements(bucket_arn),
            *_key_statement(kms_key_arn, write=True),
            *(_launch_statements(cluster_arn, run_family_arn, pass_role_arns, log_group_arn) if run_family_arn else ()),
            # PutMetricData has no resource-level permissions; the condition pins the namespace
            # (queue-metrics publisher, a sidecar of the daemon).
            {"Sid": "PublishQueueMetrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
             "Condition": {"StringEquals": {"cloudwatch:namespace": metrics_namespace}}},
            *_exec_statements(ecs_exec),
        ],
    }  # fmt: skip


def _launch_statements(cluster_arn: str, run_family_arn: str, pass_role_arns: list[str], log_group_arn: str) -> list[dict]:
    """What EcsRunLauncher calls to start, watch and stop run tasks."""
    task_arns = cluster_task_arns(cluster_arn)
    return [
        {"Sid": "RunTasks", "Effect": "Allow", "Action": "ecs:RunTask", "Resource": f"{run_family_arn}:*",
         "Condition": {"ArnEquals": {"ecs:cluster": cluster_arn}}},
        {"Sid": "WatchAndStopRuns", "Effect": "Allow",
         "Action": ["ecs:DescribeTasks", "ecs:StopTask", "ecs:TagResource"], "Resource": task_arns},
        # The launcher reads a failed run task's last log lines into the run's events (dagster-aws
        # ecs/utils.py get_task_logs: logs:GetLogEvents), from the stack's log group only.
        {"Sid": "ReadRunLogs", "Effect": "Allow", "Action": "logs:GetLogEvents", "Resource": f"{log_group_arn}:*"},
        # DescribeTaskDefinition and DescribeNetworkInterfaces support no resource-level permissions
        # (Service Authorization Reference: ECS, EC2); the launcher reads the run task definition and
        # copies its own task's network settings to each run.
        {"Sid": "DescribeUnscopable", "Effect": "Allow",
         "Action": ["ecs:DescribeTaskDefinition", "ec2:DescribeNetworkInterfaces"], "Resource": "*"},
        {"Sid": "PassRunRoles", "Effect": "Allow", "Action": "iam:PassRole", "Resource": pass_role_arns,
         "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
    ]  # fmt: skip


def alerts_policy(topic_arn: str) -> dict:
    """The control role's pipeline alerts (stack config ``alerts``; dagster_celery_aws.alerts): publish to the alarm
    topic and nothing else. The topic is encrypted with the stack's key, whose kms:GenerateDataKey and kms:Decrypt
    the role already has (SNS Developer Guide, "Encryption at rest": a publisher to an encrypted topic needs both)."""
    return {"Version": VERSION, "Statement": [
        {"Sid": "PublishPipelineAlerts", "Effect": "Allow", "Action": "sns:Publish", "Resource": topic_arn},
    ]}  # fmt: skip


def user_policy(statements: tuple[dict, ...]) -> dict:
    """What user code needs beyond the stack (stack config ``access.iamStatements``), as given (validated by
    infra/stackfile/config.py: no '*' action, no whole service on every resource)."""
    return {"Version": VERSION, "Statement": [dict(s) for s in statements]}


def key_policy(account: str, region: str) -> dict:
    """The key policy of the stack's KMS key (AWS KMS Developer Guide, "Default key policy": the account
    administers the key and IAM policies grant its use -- the stack's roles get kms:Decrypt and
    kms:GenerateDataKey on it and nothing more).

    Services that use the key as themselves, not as a role of the stack, each only for this account's resources
    (the confused-deputy guard: IAM User Guide, "The confused deputy problem"):
    - CloudWatch Logs, for the log groups of this account and Region (CloudWatch Logs User Guide, "Encrypt log
      data in CloudWatch Logs using AWS KMS": the ``kms:EncryptionContext:aws:logs:arn`` condition);
    - CloudWatch alarms and EventBridge rules publishing to the encrypted alarm topic (SNS Developer Guide,
      "Configure AWS KMS permissions for AWS services": kms:Decrypt and kms:GenerateDataKey*), each for its own
      resources of this account and Region: ``aws:SourceAccount`` and ``aws:SourceArn`` (the alarm's ARN,
      CloudWatch User Guide, "Confused deputy prevention"; the rule's ARN, EventBridge User Guide, "Using IAM
      policy conditions in Amazon EventBridge" and "Authorizing EventBridge to use a customer managed key").
    S3, Secrets Manager, ECR and RDS Performance Insights use it on behalf of the caller (IAM) or through
    grants they create with the caller's permission."""

    def publisher(sid: str, service: str, source_arn: str) -> dict:
        return {"Sid": sid, "Effect": "Allow", "Principal": {"Service": service},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}, "ArnLike": {"aws:SourceArn": source_arn}}}  # fmt: skip

    return {
        "Version": VERSION,
        "Statement": [
            {"Sid": "AccountAdministersTheKey", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "CloudWatchLogsEncryptsLogGroups", "Effect": "Allow",
             "Principal": {"Service": f"logs.{region}.amazonaws.com"},
             "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
             "Resource": "*",
             "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{account}:log-group:*"}}},
            publisher("AlarmsPublishToTheTopic", "cloudwatch.amazonaws.com", f"arn:aws:cloudwatch:{region}:{account}:alarm:*"),
            publisher("EventRulesPublishToTheTopic", "events.amazonaws.com", f"arn:aws:events:{region}:{account}:rule/*"),
        ],
    }  # fmt: skip
