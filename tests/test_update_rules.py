"""What AWS requires of a deploy or an update that mocks alone accept: ordering, update settings, values AWS
refuses, and changes it refuses from what is deployed (infra/stackfile/transitions.py). Each test stands for a finding
that made a real `pulumi up` fail or break what runs."""

from __future__ import annotations

import json

import pytest

from infra.stackfile import transitions
from infra.stackfile.config import ConfigError, load_stack_file, parse
from infra.tools.testing import reveal, run_stack
from tests.conftest import REPO_ROOT

PROD = REPO_ROOT / "Pulumi.prod.yaml"
DEV = REPO_ROOT / "Pulumi.dev.yaml"
TASKDEF = "aws:ecs/taskDefinition:TaskDefinition"


@pytest.fixture(scope="module")
def prod():
    return run_stack(PROD, stack="prod")


def waits_for(stack, resource) -> set[str]:
    by_urn = {r.urn: r.name for r in stack.resources}
    return {by_urn[u] for u in resource.options.dependencies if u in by_urn}


def test_nat_gateways_and_their_addresses_wait_for_the_internet_gateway(prod):
    # Otherwise EC2 may answer Gateway.NotAttached, depending on which of them is created first.
    nat_parts = prod.of_type("aws:ec2/natGateway:NatGateway") + prod.of_type("aws:ec2/eip:Eip")
    assert len(nat_parts) == 4
    for r in nat_parts:
        assert "dagster-prod-igw" in waits_for(prod, r), r.urn


def test_the_image_is_pushed_by_digest_never_to_a_tag(prod):
    # An immutable repository refuses a second push to a tag; a rebuild of the same tree from another checkout,
    # or a return to an earlier tree, would push one. Pushed by digest, nothing is ever overwritten.
    (image,) = prod.of_type("docker-build:index:Image")
    assert image.inputs["push"] is False and not image.inputs.get("tags")
    (export,) = image.inputs["exports"]
    assert export["image"]["pushByDigest"] is True and export["image"]["push"] is True
    repo = prod.one("aws:ecr/repository:Repository", "-code-repo")
    assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
    images = {c["image"] for t in prod.of_type(TASKDEF) for c in json.loads(t.inputs["containerDefinitions"])}
    assert images == {f"{repo.state['repositoryUrl']}@{image.state['digest']}"}


def test_listeners_make_way_for_a_replaced_load_balancer():
    # A target group serves one load balancer: when ui.access changes the scheme, the old listener must be
    # deleted before the new one forwards to the same target group.
    stack = run_stack(DEV, config={"operations": {"flower": True, "ecsExec": True}, "ui": {"access": "private"}}, stack="dev")
    routes = stack.of_type("aws:lb/listener:Listener") + stack.of_type("aws:lb/listenerRule:ListenerRule")
    assert len(routes) == 2
    assert all(r.options.delete_before_replace for r in routes)


def test_database_upgrades_are_applied_and_major_versions_allowed(prod):
    db = prod.one("aws:rds/instance:Instance", "-db-postgres")
    assert db.inputs["allowMajorVersionUpgrade"] is True and db.inputs["applyImmediately"] is True
    assert prod.one("aws:rds/parameterGroup:ParameterGroup", "-db-params").inputs["family"] == "postgres16"
    later = run_stack(PROD, config={"database": {"instanceClass": "db.m7g.large", "engineVersion": "17",
                                                 "applyImmediately": False}}, stack="prod")  # fmt: skip
    assert later.one("aws:rds/instance:Instance", "-db-postgres").inputs["applyImmediately"] is False
    assert later.one("aws:rds/parameterGroup:ParameterGroup", "-db-params").inputs["family"] == "postgres17"


def test_a_storage_ceiling_rds_would_refuse_is_refused_first():
    with pytest.raises(ConfigError) as err:
        parse({"queues": [{"name": "dagster"}], "database": {"allocatedStorageGb": 100, "maxAllocatedStorageGb": 105}})
    assert "database: maxAllocatedStorageGb 105 is less than 10 % above allocatedStorageGb 100" in str(err.value)
    assert "use at least 110" in str(err.value)
    parse({"queues": [{"name": "dagster"}], "database": {"allocatedStorageGb": 100, "maxAllocatedStorageGb": 110}})


def test_broker_changes_are_applied_with_a_reboot_not_left_pending(prod):
    assert prod.one("aws:mq/broker:Broker", "-mq-broker").inputs["applyImmediately"] is True


def test_containers_read_secrets_pinned_to_their_current_version(prod):
    # A replaced broker rewrites its URL secret; pinned to the version, every task reading it is replaced too,
    # instead of running on with the old URL until something restarts it.
    version_by_id = {v.inputs["secretId"]: v.state["versionId"] for v in prod.of_type("aws:secretsmanager/secretVersion:SecretVersion")}
    version_by_arn = {s.state["arn"]: version_by_id[f"{s.name}-id"] for s in prod.of_type("aws:secretsmanager/secret:Secret")}
    refs = 0
    for taskdef in prod.of_type(TASKDEF):
        for container in json.loads(taskdef.inputs["containerDefinitions"]):
            for secret in container["secrets"]:
                arn, _json_key, stage, version = secret["valueFrom"].rsplit(":", 3)
                assert stage == "" and version == version_by_arn[arn], (taskdef.urn, secret)
                refs += 1
    assert refs > 0


def test_generated_passwords_are_never_regenerated(prod):
    passwords = prod.of_type("random:index/randomPassword:RandomPassword")
    assert len(passwords) == 2
    for p in passwords:
        assert set(p.options.ignore_changes) >= {"length", "special", "overrideSpecial", "minSpecial"}, p.urn


def test_only_a_signing_in_load_balancer_may_call_out_on_443():
    cognito = {"userPoolArn": "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_abc",
               "userPoolClientId": "client", "userPoolDomain": "dagster-login"}  # fmt: skip
    ui = {"access": "cognito", "certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc", "cognito": cognito}
    for config, expected in (({"ui": ui}, 1), ({"ui": {"access": "private"}}, 0)):
        stack = run_stack(DEV, config=config, stack="dev")
        lb_sg = stack.one("aws:ec2/securityGroup:SecurityGroup", "-lb").name
        out = [r for r in stack.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
               if r.inputs.get("cidrIpv4") == "0.0.0.0/0" and "-lb-" in r.name]  # fmt: skip
        assert len(out) == expected, (lb_sg, [r.name for r in out])
        assert all(r.inputs["fromPort"] == r.inputs["toPort"] == 443 for r in out)


@pytest.mark.parametrize("stack_file", [DEV, PROD], ids=["dev", "prod"])
def test_each_example_stack_has_a_way_to_its_ui(stack_file):
    cfg = load_stack_file(stack_file)
    # A private UI is reached through an SSM session to the webserver task, which needs ECS Exec.
    assert cfg.ui.access.internet_facing or cfg.operations.ecs_exec


def test_lifecycle_rules_name_what_they_apply_to(prod):
    lifecycles = prod.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    assert len(lifecycles) == 2  # the data bucket, the log bucket
    for lifecycle in lifecycles:
        for rule in lifecycle.inputs["rules"]:
            assert rule["filter"], rule["id"]  # an empty filter block is deprecated (warning now, error later)


def test_the_control_role_may_read_run_logs_from_the_stack_log_group_only(prod):
    policy = json.loads(reveal(prod.one("aws:iam/rolePolicy:RolePolicy", "-ecs-control").inputs["policy"]))
    (read,) = [s for s in policy["Statement"] if s.get("Sid") == "ReadRunLogs"]
    log_group = prod.one("aws:cloudwatch/logGroup:LogGroup", "-ecs-logs").state["arn"]
    assert read["Action"] == "logs:GetLogEvents" and read["Resource"] == f"{log_group}:*"


def test_broker_figures_are_per_node_on_a_cluster(prod):
    body = json.loads(prod.one("aws:cloudwatch/dashboard:Dashboard", "-dashboard").inputs["dashboardBody"])
    broker = next(w for w in body["widgets"] if w["properties"]["title"].startswith("broker"))
    expressions = [m[0]["expression"] for m in broker["properties"]["metrics"] if isinstance(m[0], dict)]
    assert "cpu / 3" in expressions and "100 * used / limit" in expressions


def test_database_storage_is_watched_by_rds_events_not_a_stale_threshold(prod):
    rule = prod.one("aws:cloudwatch/eventRule:EventRule", "-db-storage")
    pattern = json.loads(rule.inputs["eventPattern"])
    db = prod.one("aws:rds/instance:Instance", "-db-postgres").state["identifier"]
    assert pattern["detail"] == {"SourceIdentifier": [db], "EventID": ["RDS-EVENT-0225", "RDS-EVENT-0007"]}
    target = prod.one("aws:cloudwatch/eventTarget:EventTarget", "-db-storage")
    assert target.inputs["arn"] == prod.one("aws:sns/topic:Topic", "-alarms").state["arn"]
    assert not [a for a in prod.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if "FreeStorageSpace" in json.dumps(a.inputs)]


# --- changes from what is deployed (the guard's check, run by the preview before every `pulumi up`) ---------


KEY = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"


def values(**changes) -> dict:
    cfg = load_stack_file(PROD)
    return {**transitions.deployed_values(cfg), **changes}


@pytest.mark.parametrize(
    "old, new, key",
    [
        (values(brokerInstanceType="mq.m5.large"), values(brokerInstanceType="mq.t3.micro"), "broker.instanceType"),
        (values(brokerEngineVersion="4.2"), values(brokerEngineVersion="3.13"), "broker.engineVersion"),
        (values(databaseEngineVersion="17"), values(databaseEngineVersion="16"), "database.engineVersion"),
        (values(internetFacingUi=False, deletionProtection=True), values(internetFacingUi=True), "ui.access"),
        (values(internetFacingUi=False, deletionProtection=True), values(internetFacingUi=False, loadBalancedUi=False), "ui.access"),
        # A stack deployed before the key existed had a load balancer.
        ({k: v for k, v in values(deletionProtection=True).items() if k != "loadBalancedUi"},
         values(internetFacingUi=False, loadBalancedUi=False), "ui.access"),  # one problem: the load balancer goes
        # The stack's key: RDS cannot change the Performance Insights key, and data stays under the old key (a dev
        # stack's own key, which `pulumi up` would schedule for deletion).
        (values(kmsKeyArn=""), values(kmsKeyArn=KEY), "security.kmsKeyArn"),
        (values(kmsKeyArn=KEY), values(kmsKeyArn=""), "security.kmsKeyArn"),
        (values(kmsKeyArn=KEY), values(kmsKeyArn=KEY.replace("0a1b", "9f8e")), "security.kmsKeyArn"),
    ],
    ids=["broker-to-micro", "rabbitmq-downgrade", "postgres-downgrade", "protected-lb-scheme", "protected-lb-to-ssm",
         "protected-lb-to-ssm-from-an-older-deployment", "own-key-to-external", "external-key-to-own",
         "external-key-to-another"],
)
def test_changes_aws_refuses_from_what_is_deployed_are_named(old, new, key):
    (found,) = transitions.problems(old, new)
    assert found[0] == key and len(found[1]) > 40


@pytest.mark.parametrize(
    "old, new",
    [
        ({}, values(brokerInstanceType="mq.t3.micro")),  # first deployment
        (values(brokerInstanceType="mq.t3.micro"), values(brokerInstanceType="mq.m5.large")),
        (values(brokerEngineVersion="3.13"), values(brokerEngineVersion="4.2", brokerInstanceType="mq.m7g.large")),
        (values(databaseEngineVersion="16"), values(databaseEngineVersion="17")),
        (values(internetFacingUi=False, deletionProtection=False), values(internetFacingUi=True)),
        (values(internetFacingUi=False, deletionProtection=False), values(internetFacingUi=False, loadBalancedUi=False)),
        (values(internetFacingUi=False, loadBalancedUi=False, deletionProtection=True), values(internetFacingUi=False)),
        # from 'ssm' to an internet-facing UI: a new load balancer, none replaced
        (values(internetFacingUi=False, loadBalancedUi=False, deletionProtection=True), values(internetFacingUi=True)),
        (values(), values()),
        (values(kmsKeyArn=KEY), values(kmsKeyArn=KEY)),
        # deployed before the guard held the key: unknown, not refused
        ({k: v for k, v in values().items() if k != "kmsKeyArn"}, values(kmsKeyArn=KEY)),
    ],
    ids=["first", "micro-to-m5", "rabbitmq-upgrade", "postgres-upgrade", "unprotected-lb-scheme", "unprotected-to-ssm",
         "protected-ssm-to-private", "protected-ssm-to-internet-facing", "unchanged",
         "same-external-key", "key-unknown-before"],
)
def test_changes_aws_accepts_pass(old, new):
    assert transitions.problems(old, new) == []


def test_the_guard_holds_the_values_the_next_update_is_checked_against(prod):
    guard = prod.one("pulumi-python:dynamic:Resource", "-transitions")
    assert {k: v for k, v in guard.inputs.items() if k != "__provider"} == values()


def test_the_guard_fails_the_check_with_the_key_and_the_fix():
    from infra.aws.components.guard import _Provider

    result = _Provider().check(values(brokerInstanceType="mq.m5.large"), values(brokerInstanceType="mq.t3.micro"))
    (failure,) = result.failures
    assert failure.property == "broker.instanceType" and "mq.m5.large" in failure.reason
    assert _Provider().check({}, values()).failures == []


def test_a_key_change_is_refused_before_anything_changes_with_the_steps():
    """The guard's check fails the preview, before the image repository or the database is touched; the message
    says what stays under the old key and how to move to another."""
    from infra.aws.components.guard import _Provider

    (failure,) = _Provider().check(values(kmsKeyArn=""), values(kmsKeyArn=KEY)).failures
    assert failure.property == "security.kmsKeyArn" and KEY in failure.reason
    assert "Performance Insights" in failure.reason and "new stack" in failure.reason and "Keep the stack's own key" in failure.reason
    dev = run_stack(DEV, stack="dev")
    guard = dev.one("pulumi-python:dynamic:Resource", "-transitions")
    assert guard.inputs["kmsKeyArn"] == "" and dev.of_type("aws:kms/key:Key")  # dev's own key, which the guard keeps


def test_runs_start_in_any_of_the_stack_subnets_not_only_the_daemons(monkeypatch):
    from dagster_celery_aws import run_launcher

    stock = {"cluster": "c", "networkConfiguration": {"awsvpcConfiguration": {
        "subnets": ["subnet-daemon"], "securityGroups": ["sg-tasks"], "assignPublicIp": "DISABLED"}}}  # fmt: skip
    monkeypatch.setattr(run_launcher.StockEcsRunLauncher, "_run_task_kwargs", lambda self, *a: json.loads(json.dumps(stock)))
    launcher = run_launcher.EcsRunLauncher.__new__(run_launcher.EcsRunLauncher)  # no AWS calls at construction
    monkeypatch.setenv(run_launcher.RUN_SUBNETS, "subnet-a,subnet-b")
    kwargs = launcher._run_task_kwargs(None, None, None)
    assert kwargs["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-tasks"], "assignPublicIp": "DISABLED"}  # fmt: skip
    monkeypatch.delenv(run_launcher.RUN_SUBNETS)
    assert launcher._run_task_kwargs(None, None, None) == stock  # unset (e.g. locally): the stock behaviour


def test_the_launcher_reads_the_contracts_variable():
    from infra.specs import contract
    from dagster_celery_aws import run_launcher

    assert run_launcher.RUN_SUBNETS == contract.RUN_SUBNETS
