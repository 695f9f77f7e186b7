"""Stack config validation: every rule refuses bad input with the key path, the value and what is valid."""

from __future__ import annotations

import pytest

from dagster_celery_aws import fargate

from infra.stackfile import limits
from infra.stackfile.config import ConfigError, load_stack_file, parse
from infra.specs.topology import process_specs

Q = {"name": "dagster"}
CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
OIDC = {"issuer": "https://idp.example.com", "authorizationEndpoint": "https://idp.example.com/a",
        "tokenEndpoint": "https://idp.example.com/t", "userInfoEndpoint": "https://idp.example.com/u", "clientId": "c"}
COGNITO = {"userPoolArn": "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_x",
           "userPoolClientId": "c", "userPoolDomain": "d"}


def config(**groups):
    return {"queues": [Q], **groups}


# (config values, words the error must contain)
SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:api-AbCdEf"
SECRET_KEY = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
INVALID = [
    pytest.param({"queues": [Q], "queus": []}, ["queus", "unknown key"], id="unknown-top-level-key"),
    pytest.param(config(broker={"engineVerson": "3.13"}), ["broker.engineVerson", "unknown key"], id="unknown-nested-key"),
    pytest.param({"queues": [{"name": "dagster", "maxworkers": 3}]}, ["queues[0].maxworkers", "unknown key"], id="typo-in-queue-key"),
    pytest.param({}, ["queues", "required"], id="no-queues"),
    pytest.param(config(alerts={"longRunMinutes": 0}), ["alerts.longRunMinutes", "0", "greater than or equal to 1"], id="alerts-long-run-zero"),
    pytest.param(config(alerts={"runFailures": False}), ["alerts.runFailures", "unknown key"], id="alerts-typo"),
    pytest.param({"queues": []}, ["no queue named 'dagster'"], id="empty-queues"),
    pytest.param({"queues": [{"name": "etl"}]}, ["no queue named 'dagster'", "etl", "wait forever"], id="missing-dagster-queue"),
    pytest.param({"queues": [Q, {"name": "etl"}, {"name": "etl"}]}, ["queues[2].name", "'etl'", "duplicate"], id="duplicate-queue"),
    pytest.param({"queues": [Q, {"name": "a.b"}, {"name": "a-b"}]}, ["queues[2].name", "duplicate"], id="duplicate-after-ecs-naming"),
    pytest.param({"queues": [Q, {"name": "bad queue!"}]}, ["queues[1]", "'bad queue!'", "letters, digits"], id="invalid-queue-name"),
    pytest.param({"queues": [{"name": "dagster", "minWorkers": -1}]}, ["queues[0].minWorkers", "-1", "greater than or equal to 0"], id="negative-min"),
    pytest.param({"queues": [{"name": "dagster", "maxWorkers": 2.5}]}, ["queues[0].maxWorkers", "2.5", "whole number"], id="fractional-max"),
    pytest.param({"queues": [{"name": "dagster", "maxWorkers": True}]}, ["queues[0].maxWorkers", "whole number"], id="bool-max"),
    pytest.param({"queues": [{"name": "dagster", "maxWorkers": "many"}]}, ["queues[0].maxWorkers", "'many'", "integer"], id="text-max"),
    pytest.param({"queues": [{"name": "dagster", "minWorkers": 3, "maxWorkers": 2}]}, ["queues[0]", "maxWorkers 2", "minWorkers 3"], id="min-above-max"),
    pytest.param({"queues": [{"name": "dagster", "minWorkers": 0, "maxWorkers": 0}]}, ["queues[0].maxWorkers", "0", "greater than or equal to 1"], id="max-zero"),
    pytest.param({"queues": [{"name": "dagster", "concurrency": 0}]}, ["queues[0].concurrency", "0", "greater than or equal to 1"], id="concurrency-zero"),
    pytest.param({"queues": [{"name": "dagster", "cpu": 300}]}, ["queues[0]", "cpu 300", "valid: 256, 512"], id="bad-cpu"),
    pytest.param({"queues": [{"name": "dagster", "cpu": 256, "memory": 4096}]}, ["queues[0]", "memory 4096", "512, 1024, 2048"], id="bad-memory-for-cpu"),
    pytest.param(config(webserver={"cpu": 1024, "memory": 1024}), ["webserver", "memory 1024", "2048-8192"], id="bad-webserver-size"),
    pytest.param(config(broker={"engineVersion": "4.2"}), ["broker", "4.2", "mq.m7g"], id="broker-4.2-on-t3"),
    pytest.param(config(broker={"engineVersion": "4.2", "instanceType": "mq.m5.large"}), ["4.2", "mq.m5.large"], id="broker-4.2-on-m5"),
    pytest.param(config(broker={"engineVersion": "3.8"}), ["broker.engineVersion", "'3.8'", "'3.13'"], id="broker-old-engine"),
    pytest.param(config(broker={"instanceType": "mq.t2.micro"}), ["instanceType 'mq.t2.micro'", "valid:"], id="broker-unknown-host"),
    pytest.param(config(broker={"deploymentMode": "CLUSTER_MULTI_AZ"}), ["mq.t3.micro", "SINGLE_INSTANCE"], id="cluster-on-micro"),
    pytest.param(config(broker={"consumerTimeoutMinutes": 0}), ["broker.consumerTimeoutMinutes", "0"], id="consumer-timeout-zero"),
    pytest.param(config(broker={"maxDeliveries": 0}), ["broker.maxDeliveries", "0"], id="max-deliveries-zero"),
    pytest.param(config(database={"instanceClass": "db.x9.huge"}), ["instanceClass 'db.x9.huge'", "maxConnections"], id="unknown-db-class"),
    pytest.param(config(database={"backupRetentionDays": 0}), ["database.backupRetentionDays", "0"], id="no-backups"),
    pytest.param(config(database={"allocatedStorageGb": 100, "maxAllocatedStorageGb": 50}), ["maxAllocatedStorageGb 50", "allocatedStorageGb"], id="storage-max-below"),
    pytest.param(config(network={"vpcCidr": "10.0.0.0/33"}), ["network.vpcCidr", "10.0.0.0/33", "CIDR"], id="bad-vpc-cidr"),
    pytest.param(config(network={"vpcCidr": "10.0.0.1/16"}), ["network.vpcCidr", "host bits"], id="cidr-host-bits"),
    pytest.param(config(network={"natGateways": 3}), ["network.natGateways", "3"], id="too-many-nats"),
    pytest.param(config(network={"vpcId": "vpc-123"}), ["network", "privateSubnetIds", "two"], id="vpc-without-subnets"),
    pytest.param(config(network={"privateSubnetIds": ["subnet-1", "subnet-2"]}), ["vpcId"], id="subnets-without-vpc"),
    pytest.param(config(ui={"access": "cidr"}), ["ui", "allowedCidrs"], id="cidr-access-without-cidrs"),
    pytest.param(config(ui={"access": "cidr", "allowedCidrs": ["office"]}), ["ui.allowedCidrs[0]", "'office'", "CIDR"], id="cidr-not-parsing"),
    pytest.param(config(ui={"access": "cidr", "allowedCidrs": ["203.0.113.0/24", "2001:db8::/32"]}), ["ui.allowedCidrs[1]", "'2001:db8::/32'", "IPv6", "IPv4 only"], id="cidr-ipv6"),
    pytest.param(config(network={"vpcCidr": "fd00::/56"}), ["network.vpcCidr", "IPv6", "IPv4 block"], id="vpc-cidr-ipv6"),
    pytest.param(config(ui={"access": "private", "allowedCidrs": ["10.0.0.0/8"]}), ["allowedCidrs", "only used with access 'cidr'"], id="cidrs-on-private"),
    pytest.param(config(ui={"access": "cidr", "allowedCidrs": ["203.0.113.0/24"]}), ["ui", "'cidr'", "HTTPS", "certificateArn", "allowPlainHttp"], id="internet-facing-without-https"),
    pytest.param(config(ui={"access": "public"}), ["ui", "'public'", "certificateArn", "allowPlainHttp"], id="public-without-https"),
    pytest.param(config(ui={"access": "public", "certificateArn": CERT, "allowPlainHttp": True}), ["allowPlainHttp is only used"], id="plain-http-with-certificate"),
    pytest.param(config(ui={"allowPlainHttp": True}), ["allowPlainHttp is only used", "private UI"], id="plain-http-on-private"),
    pytest.param(config(security={"waf": True}), ["security.waf", "internet-facing", "'private'"], id="waf-on-private-ui"),
    pytest.param(config(security={"kmsKeyArn": "alias/dagster"}), ["security.kmsKeyArn", "'alias/dagster'"], id="kms-key-not-an-arn"),
    pytest.param(config(security={"accessLog": False}), ["security.accessLog", "unknown key"], id="unknown-security-key"),
    pytest.param(config(database={"monitoringIntervalSeconds": 45}), ["monitoringIntervalSeconds 45", "0, 1, 5, 10, 15, 30, 60"], id="bad-monitoring-interval"),
    pytest.param(config(ui={"access": "open"}), ["ui.access", "'open'", "'private'"], id="unknown-access"),
    pytest.param(config(ui={"access": "oidc", "oidc": OIDC}, oidcClientSecret="s"), ["ui", "certificateArn", "HTTPS"], id="oidc-without-certificate"),
    pytest.param(config(ui={"access": "oidc", "certificateArn": CERT}, oidcClientSecret="s"), ["ui", "ui.oidc block"], id="oidc-without-block"),
    pytest.param(config(ui={"access": "oidc", "certificateArn": CERT, "oidc": OIDC}), ["oidcClientSecret", "--secret"], id="oidc-without-client-secret"),
    pytest.param(config(ui={"access": "oidc", "certificateArn": CERT, "oidc": {**OIDC, "issuer": "http://idp"}}, oidcClientSecret="s"), ["ui.oidc.issuer", "'http://idp'"], id="oidc-plain-http-issuer"),
    pytest.param(config(ui={"access": "private", "cognito": COGNITO}), ["ui.cognito is only used with access 'cognito'"], id="cognito-block-on-private"),
    pytest.param(config(ui={"access": "cognito", "certificateArn": "arn:aws:acm:eu-west-1:1:certificate/x", "cognito": COGNITO}), ["ui.certificateArn"], id="malformed-certificate-arn"),
    pytest.param(config(image={"uri": "123.dkr.ecr.eu-west-1.amazonaws.com/dagster"}), ["image", "not pinned", ":TAG or @sha256"], id="image-without-tag"),
    pytest.param(config(image={"uri": "registry:5000/dagster"}), ["image", "'registry:5000/dagster'", "not pinned"], id="image-port-no-tag"),
    pytest.param(config(operations={"alarmEmail": "oncall"}), ["operations.alarmEmail", "'oncall'"], id="bad-alarm-email"),
    pytest.param(config(operations={"noConsumerMinutes": 0}), ["operations.noConsumerMinutes", "0"], id="no-consumer-zero"),
    pytest.param({"queues": [{"name": "dagster", "scaling": {"targetMessagesPerSlot": 0}}]}, ["queues[0].scaling.targetMessagesPerSlot", "greater than 0"], id="zero-scaling-target"),
    pytest.param({"queues": [{"name": "dagster", "scaling": {"idleMinutes": 2000}}]}, ["queues[0].scaling.idleMinutes", "2000"], id="idle-over-a-day"),
    pytest.param({"queues": [{"name": "dagster", "scaling": {"cooldown": 5}}]}, ["queues[0].scaling.cooldown", "unknown key"], id="unknown-scaling-key"),
    pytest.param(config(logs={"retentionDays": 10}), ["retentionDays 10", "14"], id="bad-log-retention"),
    pytest.param(config(webserver={"desiredCount": 3, "maxCount": 2}), ["webserver", "maxCount 2 is below desiredCount 3"], id="ui-max-below-desired"),
    pytest.param(config(webserver={"maxCount": 11}), ["webserver.maxCount", "10"], id="ui-max-over-ten"),
    pytest.param(config(webserver={"targetCpuPercent": 95}), ["webserver.targetCpuPercent", "90"], id="ui-cpu-target-too-high"),
    pytest.param(config(webserver={"maxCount": 3}, ui={"access": "ssm"}, operations={"ecsExec": True}), ["webserver.maxCount is not used with ui.access 'ssm'"], id="ui-scaling-without-service"),
    pytest.param(config(ui={"viewers": {}}), ["ui.viewers.allowedCidrs", "required"], id="viewers-without-cidrs"),
    pytest.param(config(ui={"viewers": {"allowedCidrs": []}}), ["ui.viewers.allowedCidrs", "at least 1"], id="viewers-empty-cidrs"),
    pytest.param(config(ui={"viewers": {"allowedCidrs": ["10.0.0.1/8"]}}), ["ui.viewers.allowedCidrs[0]", "'10.0.0.1/8'", "10.0.0.0/16"], id="viewers-bad-cidr"),
    pytest.param(config(ui={"viewers": {"allowedCidrs": ["10.0.0.0/8"], "port": 443}}), ["ui.viewers", "port 443", "8443"], id="viewers-on-the-ui-port"),
    pytest.param(config(ui={"viewers": {"allowedCidrs": ["10.0.0.0/8"], "desiredCount": 0}}), ["ui.viewers.desiredCount", "1"], id="viewers-zero-tasks"),
    pytest.param(config(ui={"access": "ssm", "viewers": {"allowedCidrs": ["10.0.0.0/8"]}}, operations={"ecsExec": True}), ["ui.viewers", "'ssm'", "load balancer"], id="viewers-with-ssm"),
    pytest.param(config(ui={"readOnly": True, "viewers": {"allowedCidrs": ["10.0.0.0/8"]}}), ["ui.viewers", "ui.readOnly"], id="viewers-with-read-only-ui"),
    pytest.param(config(runs={"mode": "lambda"}), ["runs.mode", "'lambda'", "'task'", "'daemon'"], id="unknown-runs-mode"),
    pytest.param(config(runs={"mode": "daemon", "memory": 2048}), ["runs", "runs.memory", "daemon's task", "daemon.memory"], id="runs-size-in-daemon-mode"),
    pytest.param(config(runs={"mode": "daemon", "cpu": 512}), ["runs.cpu", "leave runs.cpu out", "daemon.cpu"], id="runs-cpu-in-daemon-mode"),
    pytest.param(config(runs={"mode": "daemon", "maxConcurrentRuns": 12}), ["daemon.memory 2048", "runs.maxConcurrentRuns 12", "2300 MiB", "135 per run worker"], id="daemon-too-small-for-its-runs"),
    pytest.param(config(runs={"mode": "daemon", "maxConcurrentRuns": 8}, ui={"access": "ssm"}, operations={"ecsExec": True}), ["daemon.memory 2048", "2200 MiB", "webserver"], id="daemon-with-webserver-too-small"),
    pytest.param(config(access={"secrets": {"API": SECRET}, "secretKmsKeys": ["alias/api"]}),
                 ["access.secretKmsKeys[0]", "'alias/api'", "arn:aws:kms:REGION:ACCOUNT:key/KEY-ID"], id="secret-key-not-a-key-arn"),
    pytest.param(config(access={"secretKmsKeys": [SECRET_KEY]}), ["access", "secretKmsKeys[0]", "no Region", "(none)"],
                 id="secret-key-without-secrets"),
    pytest.param({"queues": [{"name": "dagster", "access": {"secrets": {"API": SECRET},
                                                            "secretKmsKeys": [SECRET_KEY.replace("eu-west-1", "us-east-1")]}}]},
                 ["queues[0].access", "secretKmsKeys[0]", "us-east-1", "(eu-west-1)"], id="secret-key-in-another-region"),
    # A partial Secrets Manager ARN (no '-' + 6 characters after the name) is refused: the grant and ECS's read
    # both need the full one (config.SECRET_ARN).
    pytest.param(config(access={"secrets": {"TOKEN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/registry"}}),
                 ["access.secrets.TOKEN", "'arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/registry'", "full Secrets Manager secret ARN", "describe-secret"], id="partial-secret-arn"),
    pytest.param({"queues": [Q, {"name": "ml", "access": {"secrets": {"TOKEN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ml:password::"}}}]},
                 ["queues[1].access.secrets.TOKEN", "full Secrets Manager secret ARN"], id="partial-secret-arn-with-json-key"),
    # User code's access (README, "Bring your own code"): guardrails before anything is granted.
    pytest.param(config(access={"iamStatements": [{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/*"}]}),
                 ["access.iamStatements[0]", "Action '*'", "name the actions"], id="iam-action-star"),
    pytest.param(config(access={"iamStatements": [{"Effect": "Allow", "Action": ["s3:GetObject", "*:*"], "Resource": "arn:aws:s3:::b"}]}),
                 ["access.iamStatements[0]", "Action '*'"], id="iam-action-star-colon-star"),
    pytest.param(config(access={"iamStatements": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}),
                 ["access.iamStatements[0]", "['s3:*']", "Resource '*'", "name the resources"], id="iam-whole-service-everywhere"),
    pytest.param({"queues": [Q, {"name": "ml", "access": {"iamStatements": [{"Effect": "Allow", "Action": "s3:GetObject"}]}}]},
                 ["queues[1].access.iamStatements[0]", "needs Effect, Action and Resource", "['Action', 'Effect']"], id="iam-statement-without-resource"),
    pytest.param(config(access={"iamStatements": [{"Effect": "Permit", "Action": "s3:GetObject", "Resource": "*"}]}),
                 ["access.iamStatements[0]", "'Permit'", "Allow or Deny"], id="iam-bad-effect"),
    pytest.param(config(access={"managedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]}),
                 ["access.managedPolicyArns[0]", "AdministratorAccess", "scoped to what it uses"], id="admin-managed-policy"),
    pytest.param({"queues": [Q, {"name": "ml", "access": {"managedPolicyArns": ["arn:aws:iam::aws:policy/PowerUserAccess"]}}]},
                 ["queues[1].access.managedPolicyArns[0]", "PowerUserAccess", "far more than code needs"], id="power-user-managed-policy"),
    pytest.param(config(access={"managedPolicyArns": ["arn:aws:iam::aws:policy/IAMFullAccess"]}),
                 ["access.managedPolicyArns[0]", "IAMFullAccess"], id="iam-full-access-managed-policy"),
    pytest.param(config(access={"managedPolicyArns": ["ReadOnlyAccess"]}),
                 ["access.managedPolicyArns[0]", "'ReadOnlyAccess'", "not an IAM managed policy ARN"], id="managed-policy-not-an-arn"),
    pytest.param(config(access={"environment": {"DAGSTER_HOME": "/tmp"}}),
                 ["access.environment", "'DAGSTER_HOME'", "DAGSTER_, DCA_, AWS_, ECS_", "names the stack sets itself"], id="reserved-dagster-env"),
    pytest.param({"queues": [Q, {"name": "ml", "access": {"environment": {"AWS_REGION": "us-east-1"}}}]},
                 ["queues[1].access.environment", "'AWS_REGION'", "names the stack sets itself"], id="reserved-aws-env-on-a-queue"),
    pytest.param(config(access={"environment": {"1TOKEN": "x"}}),
                 ["access.environment", "'1TOKEN'", "not an environment variable name"], id="env-name-not-a-name"),
    pytest.param(config(access={"environment": {"WAREHOUSE_PASSWORD": "x"},
                                "secrets": {"WAREHOUSE_PASSWORD": "arn:aws:ssm:eu-west-1:123456789012:parameter/wh"}}),
                 ["access", "WAREHOUSE_PASSWORD is both in environment and in secrets", "keep one"], id="env-and-secret-overlap"),
    pytest.param(
        {"queues": [{"name": "dagster", "maxWorkers": 30, "concurrency": 4}]},
        ["database connections", "workers 600", "allows 99", "database.instanceClass"],
        id="too-many-connections",
    ),
]


@pytest.mark.parametrize("values, words", INVALID)
def test_invalid_config_is_refused_with_key_value_and_fix(values, words):
    with pytest.raises(ConfigError) as err:
        parse(values)
    for word in words:
        assert word in str(err.value), f"{word!r} missing from: {err.value}"


def test_defaults_make_a_working_stack_and_keep_a_configured_zero():
    cfg = parse({"queues": [{"name": "dagster", "minWorkers": 0}]})
    assert cfg.queues[0].min_workers == 0  # a configured 0 stays 0 (scale to zero)
    assert cfg.broker.engine_version == "3.13" and cfg.ui.access == "private"
    assert cfg.database.backup_retention_days >= 7


def test_counts_from_pulumi_config_set_path_may_arrive_as_text():
    cfg = parse({"queues": [{"name": "dagster", "maxWorkers": "8"}]})
    assert cfg.queues[0].max_workers == 8


def test_bigger_database_admits_the_same_workers():
    big = {"queues": [{"name": "dagster", "maxWorkers": 30, "concurrency": 4}], "database": {"instanceClass": "db.m7g.large"}}
    assert parse(big).database.instance_class == "db.m7g.large"


def test_connection_budget_matches_the_rds_formula():
    # LEAST(DBInstanceClassMemory/9531392, 5000), with DBInstanceClassMemory ~88 % of nominal memory.
    assert limits.max_connections("db.t4g.micro") == 99
    assert limits.max_connections("db.r7g.8xlarge") == 5000


@pytest.mark.parametrize("cpu, memory, ok", [(256, 512, True), (256, 4096, False), (1024, 8192, True),
                                             (1024, 9216, False), (8192, 20480, True), (8192, 18432, False),
                                             (16384, 122880, True), (333, 1024, False)])  # fmt: skip
def test_fargate_sizes(cpu, memory, ok):
    assert (fargate.size_error(cpu, memory) is None) == ok


def test_both_example_stacks_are_valid(repo_root):
    for stack in ("dev", "prod"):
        cfg = load_stack_file(repo_root / f"Pulumi.{stack}.yaml")
        assert [s.queue for s in process_specs(cfg) if s.role == "worker"] == [q.name for q in cfg.queues]


@pytest.mark.parametrize(
    "text, words",
    [("", ["config:"]), ("config: [\n", ["not valid YAML"]), ("config:\n  dagster-celery-aws:queues: 3\n", ["queues", "tuple"])],
    ids=["empty-file", "broken-yaml", "queues-not-a-list"],
)
def test_bad_stack_files_are_refused(tmp_path, text, words):
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_stack_file(path)
    assert str(path) in str(err.value)
    for word in words:
        assert word in str(err.value)


def test_missing_stack_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_stack_file(tmp_path / "nope.yaml")


def test_runs_mode_daemon_fits_when_the_daemon_is_sized_for_its_runs():
    cfg = parse(config(runs={"mode": "daemon"}))  # the defaults fit: 680 + 5 x 135 = 1355 <= daemon.memory 2048
    assert cfg.runs.mode == "daemon" and limits.daemon_memory_floor(cfg.runs.max_concurrent_runs, not cfg.ui.access.load_balanced) == 1355
    assert "run" not in {s.name for s in process_specs(cfg)}  # no run task to define
    assert "run" in {s.name for s in process_specs(parse(config()))}  # the default, task: one per run
