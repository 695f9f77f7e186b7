"""The Pulumi program under recording mocks: what `pulumi up` would create for the example stacks and for
generated configs."""

from __future__ import annotations

import json

import pytest

from infra.specs import contract, instance
from infra.stackfile.config import load_stack_file
from infra.tools.testing import MOCK_ECR_TOKEN, MOCK_PASSWORD, is_secret, run_stack

TASKDEF = "aws:ecs/taskDefinition:TaskDefinition"
SERVICE = "aws:ecs/service:Service"
TARGET = "aws:appautoscaling/target:Target"
POLICY = "aws:appautoscaling/policy:Policy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


@pytest.fixture(scope="module", params=["dev", "prod"])
def example(request, ):
    from tests.conftest import REPO_ROOT

    path = REPO_ROOT / f"Pulumi.{request.param}.yaml"
    return load_stack_file(path), run_stack(path, stack=request.param)


def containers(taskdef) -> list[dict]:
    return json.loads(taskdef.inputs["containerDefinitions"])


def main_container(taskdef) -> dict:
    return containers(taskdef)[-1]


def test_one_worker_service_per_queue_with_its_command_size_and_bounds(example):
    cfg, stack = example
    workers = [s for s in stack.of_type(SERVICE) if s.inputs["name"].startswith("worker-")]
    assert sorted(s.inputs["name"] for s in workers) == sorted(f"worker-{q.name}" for q in cfg.queues)
    for q in cfg.queues:
        taskdef = stack.one(TASKDEF, f"worker-{q.name}-task")
        command = main_container(taskdef)["command"]
        assert command[command.index("-Q") + 1] == q.name, taskdef.urn
        assert command[command.index("-c") + 1] == str(q.concurrency), taskdef.urn
        assert (taskdef.inputs["cpu"], taskdef.inputs["memory"]) == (str(q.cpu), str(q.memory)), taskdef.urn
        target = stack.one(TARGET, f"worker-{q.name}-scaling")
        assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (q.min_workers, q.max_workers), target.urn
        assert target.inputs["resourceId"].endswith(f"/worker-{q.name}"), target.urn
        service = stack.one(SERVICE, f"worker-{q.name}-service")
        assert service.inputs["desiredCount"] == q.min_workers, service.urn
    assert stack.outputs["worker_services"] == {q.name: f"worker-{q.name}" for q in cfg.queues}


# The daemon evaluates the alert sensors (stack config `alerts`, on by default).
ALERT_VARS = (contract.ALERT_TOPIC, contract.ALERT_LONG_RUN_SECONDS, contract.UI_URL, contract.WORKSPACE_FILE)


def test_every_task_runs_the_same_image_environment_and_secrets(example):
    cfg, stack = example
    taskdefs = stack.of_type(TASKDEF)
    # With ui.access 'ssm' the webserver is a container of the daemon's task, not a task of its own.
    families = {"daemon", "run", "dagster", "heavy", *(["webserver"] if cfg.ui.access.load_balanced else [])}
    assert {t.inputs["family"].rsplit("-", 1)[-1] for t in taskdefs} >= families
    assert "webserver" in {c["name"] for t in taskdefs for c in containers(t)}
    # Besides the shared contract, a process gets only what it alone uses, so that changing it rolls only that
    # process: the metrics sidecar its settings, the daemon (which launches runs) the run subnets, workers the
    # scale-in protection time; the daemon's task and the run task (which send steps) the stack's queues and
    # where their worker services are (pre-warming: dagster_celery_aws.prewarm).
    metrics = {contract.METRICS_STACK, contract.BROKER_MANAGEMENT_URL}
    sends = {contract.QUEUES, contract.CLUSTER, contract.WORKER_SERVICES}
    seen = set()
    for taskdef in taskdefs:
        process = taskdef.name.removesuffix("-task").split("-", 2)[2]
        for c in containers(taskdef):
            env = {e["name"] for e in c["environment"]}
            secrets = {s["name"] for s in c["secrets"]}
            extra = {"daemon": {contract.RUN_SUBNETS, contract.CODE_LOCATIONS, *sends, *ALERT_VARS},
                     "run": sends}.get(process, set()) | (metrics if c["name"] == "queue-metrics" else set())
            if process.startswith("worker-"):
                extra = {contract.PROTECTION_MINUTES, contract.MAX_DELIVERIES}
                values = {e["name"]: e["value"] for e in c["environment"]}
                assert values[contract.MAX_DELIVERIES] == str(cfg.broker.max_deliveries), taskdef.urn
            assert env == set(contract.PLAIN_VARS) | extra, taskdef.urn
            assert secrets == set(contract.SECRET_VARS), taskdef.urn
            assert c["user"] == "10001", taskdef.urn  # never root
            seen.add(c["image"])
    assert len(seen) == 1 and "@sha256:" in seen.pop()


def test_secret_values_appear_only_in_secret_resources_and_never_in_outputs(example):
    _, stack = example
    holders = {"aws:secretsmanager/secretVersion:SecretVersion", "aws:mq/broker:Broker", "aws:rds/instance:Instance",
               "docker-build:index:Image"}  # fmt: skip
    for r in stack.resources:
        text = json.dumps(r.inputs, default=str)
        if r.typ not in holders:
            assert MOCK_PASSWORD not in text and MOCK_ECR_TOKEN not in text, r.urn
    secret_version = stack.one("aws:secretsmanager/secretVersion:SecretVersion", "-mq-url")
    secret_string = secret_version.inputs["secretString"]
    # Marked secret, so Pulumi encrypts it in the state: {<secret signature>: ..., "value": ...}.
    assert is_secret(secret_string), secret_version.urn
    assert secret_string["value"].startswith(f"amqps://dagster:{MOCK_PASSWORD}@b-")
    assert secret_string["value"].endswith(":5671//")
    assert MOCK_PASSWORD not in json.dumps(stack.outputs)
    for taskdef in stack.of_type(TASKDEF):
        for c in containers(taskdef):
            assert all(s["valueFrom"].startswith("arn:aws:secretsmanager:") for s in c["secrets"]), taskdef.urn


def test_backend_url_keeps_any_credentials_intact():
    """The one URL builder of the stack's secret and the local runner: whatever the user name, password and
    database name hold, SQLAlchemy reads back the same values (quoted, not mangled)."""
    from sqlalchemy.engine import make_url

    url = contract.backend_url("us@er", "p/w:%?#", "db.internal", 5433, "my db", sslmode="require")
    assert url.startswith("db+")
    parsed = make_url(url[3:])
    assert (parsed.drivername, parsed.username, parsed.password) == ("postgresql+psycopg2", "us@er", "p/w:%?#")
    assert (parsed.host, parsed.port, parsed.database, parsed.query) == ("db.internal", 5433, "my db", {"sslmode": "require"})
    assert "?" not in contract.backend_url("u", "p", "h", 5432, "d")


def test_broker_and_database_are_private_encrypted_and_backed_up(example):
    cfg, stack = example
    broker = stack.of_type("aws:mq/broker:Broker")[0]
    assert broker.inputs["publiclyAccessible"] is False and broker.inputs["autoMinorVersionUpgrade"] is True
    assert broker.inputs["engineVersion"] == cfg.broker.engine_version
    assert len(broker.inputs["subnetIds"]) == (1 if cfg.broker.deployment_mode == "SINGLE_INSTANCE" else 2)
    mq_conf = stack.of_type("aws:mq/configuration:Configuration")[0]
    assert f"consumer_timeout = {cfg.broker.consumer_timeout_minutes * 60_000}" in mq_conf.inputs["data"]
    db = stack.of_type("aws:rds/instance:Instance")[0]
    assert db.inputs["publiclyAccessible"] is False and db.inputs["storageEncrypted"] is True
    assert is_secret(db.inputs["password"])  # generated, encrypted in state, only in the database secret
    credentials = json.loads(stack.one("aws:secretsmanager/secretVersion:SecretVersion", "-db-credentials").inputs["secretString"]["value"])
    assert credentials["celery_backend_url"].startswith(f"db+postgresql+psycopg2://dagster:{MOCK_PASSWORD}@")
    assert credentials["celery_backend_url"].endswith(":5432/dagster?sslmode=require")
    assert db.inputs["backupRetentionPeriod"] == cfg.database.backup_retention_days >= 7
    assert db.inputs["multiAz"] == cfg.database.multi_az
    assert db.inputs["deletionProtection"] == cfg.protection.deletion_protection
    assert db.inputs["skipFinalSnapshot"] is False  # a final snapshot, even after protection is turned off
    assert db.inputs["finalSnapshotIdentifier"].endswith("-db-final-k3x9q2m7")


def _rules(stack, sg_suffix):
    sg = stack.one("aws:ec2/securityGroup:SecurityGroup", sg_suffix)
    return [r for r in stack.of_type(INGRESS) if r.inputs["securityGroupId"] == sg.state["id"]]


def test_only_tasks_reach_broker_and_database_and_only_the_lb_reaches_the_webserver(example):
    cfg, stack = example
    tasks_sg = stack.one("aws:ec2/securityGroup:SecurityGroup", "-tasks").state["id"]
    # ui.access 'ssm': no load balancer and nothing admitted to the tasks (the SSM session starts from the task).
    lb_sg = stack.one("aws:ec2/securityGroup:SecurityGroup", "-lb").state["id"] if cfg.ui.access.load_balanced else None
    # The broker: AMQPS, and HTTPS for the management API the queue-metrics publisher reads.
    for suffix, ports, source in (("-broker", {5671, 443}, tasks_sg), ("-database", {5432}, tasks_sg),
                                  ("-tasks", {3000} if lb_sg else set(), lb_sg)):
        rules = _rules(stack, suffix)
        assert {(r.inputs["fromPort"], r.inputs["toPort"], r.inputs.get("referencedSecurityGroupId")) for r in rules} == {
            (port, port, source) for port in ports
        }, [r.urn for r in rules]
        assert all("cidrIpv4" not in r.inputs for r in rules)


@pytest.mark.parametrize(
    "ui, expected_cidrs, internal",
    [
        ({"access": "private"}, {"10.0.0.0/16"}, True),
        ({"access": "cidr", "allowedCidrs": ["203.0.113.0/24", "198.51.100.7/32"], "allowPlainHttp": True},
         {"203.0.113.0/24", "198.51.100.7/32"}, False),
        ({"access": "public", "allowPlainHttp": True}, {"0.0.0.0/0"}, False),
    ],
)
def test_ui_is_open_to_the_world_only_when_config_says_public(ui, expected_cidrs, internal):
    stack = run_stack(config={"queues": [{"name": "dagster"}], "ui": ui})
    lb_rules = _rules(stack, "-lb")
    assert {r.inputs["cidrIpv4"] for r in lb_rules} == expected_cidrs
    assert stack.of_type("aws:lb/loadBalancer:LoadBalancer")[0].inputs["internal"] is internal
    world = [r for r in stack.of_type(INGRESS) if r.inputs.get("cidrIpv4") == "0.0.0.0/0"]
    assert bool(world) == (ui["access"] == "public")


def test_https_listener_and_redirect_when_a_certificate_is_given():
    cert = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
    stack = run_stack(config={"queues": [{"name": "dagster"}], "ui": {"access": "public", "certificateArn": cert}})
    listeners = {l.inputs["port"]: l.inputs for l in stack.of_type("aws:lb/listener:Listener")}
    assert listeners[443]["certificateArn"] == cert and listeners[443]["sslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    assert listeners[80]["defaultActions"][0]["type"] == "redirect"
    assert stack.outputs["ui_url"].startswith("https://")
    # infra/tools/verify.py reads the UI's targets' health from it
    assert stack.outputs["target_group"] == stack.one("aws:lb/targetGroup:TargetGroup", "").state["arn"]


def test_changing_one_queue_changes_only_that_queues_resources():
    base = {"queues": [{"name": "dagster"}, {"name": "etl", "minWorkers": 1, "maxWorkers": 3}]}
    changed = {"queues": [{"name": "dagster"}, {"name": "etl", "minWorkers": 2, "maxWorkers": 8}]}
    before = {(r.typ, r.name): r.inputs for r in run_stack(config=base).resources}
    after = {(r.typ, r.name): r.inputs for r in run_stack(config=changed).resources}
    assert before.keys() == after.keys()
    differ = sorted(name for key, name in before if before[(key, name)] != after[(key, name)])
    assert all("-etl-" in name for name in differ), differ
    assert {
        "dagster-test-worker-etl-scaling",  # the new bounds
        "dagster-test-worker-etl-service",  # the new initial count (ignored by later updates)
        "dagster-test-worker-etl-autoscaling-idle",  # the idle policy scales to the new minWorkers
        "dagster-test-ops-etl-saturated",  # the saturation alarm knows the new maxWorkers
    } == set(differ)


def test_a_new_queue_adds_exactly_one_service_task_definition_and_scaling_target():
    one = run_stack(config={"queues": [{"name": "dagster"}]})
    two = run_stack(config={"queues": [{"name": "dagster"}, {"name": "gpu.small", "cpu": 2048, "memory": 8192}]})
    added = {(r.typ, r.name) for r in two.resources} - {(r.typ, r.name) for r in one.resources}
    assert {typ for typ, _ in added} == {SERVICE, TASKDEF, TARGET, "dagster-celery-aws:service:Service", POLICY, ALARM,
                                         "dagster-celery-aws:autoscaling:QueueScaling"}
    assert all("gpu-small" in name for _, name in added), added
    assert two.outputs["worker_services"]["gpu.small"] == "worker-gpu-small"


def test_prebuilt_image_builds_nothing():
    uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/dagster:v1"
    stack = run_stack(config={"queues": [{"name": "dagster"}], "image": {"uri": uri}})
    assert not stack.of_type("docker-build:index:Image") and not stack.of_type("aws:ecr/repository:Repository")
    assert {main_container(t)["image"] for t in stack.of_type(TASKDEF)} == {uri}


def test_daemon_migrates_the_schema_before_it_starts(example):
    cfg, stack = example
    by_name = {c["name"]: c for c in containers(stack.one(TASKDEF, "-daemon-task"))}
    check, migrate, pools, daemon, metrics, retention = (
        by_name.pop(n) for n in ("check-image", "migrate", "pools", "daemon", "queue-metrics", "retention"))
    if not cfg.ui.access.load_balanced:
        # ui.access 'ssm': the webserver serves from the daemon's task, after the migration, watched by its own
        # health check (no load balancer checks it), and its failure replaces the task.
        web = by_name.pop("webserver")
        assert web["essential"] is True and web["dependsOn"] == [{"containerName": "pools", "condition": "SUCCESS"}]
        assert web["portMappings"] == [{"containerPort": 3000, "protocol": "tcp"}]
        assert "/server_info" in " ".join(web["healthCheck"]["command"])
    assert not by_name
    assert metrics["command"] == ["python", "-m", "dagster_celery_aws.queue_metrics"] and metrics["essential"] is False
    assert check["command"] == ["python", "-m", "dagster_celery_aws.image_check"] and check["essential"] is False
    assert migrate["command"] == ["dagster", "instance", "migrate"] and migrate["essential"] is False
    assert migrate["dependsOn"] == [{"containerName": "check-image", "condition": "SUCCESS"}]
    # The stack's pool limits (runs.pools.limits) are set on the migrated instance, before the daemon starts.
    assert pools["command"] == ["python", "-m", "dagster_celery_aws.pool_limits"] and pools["essential"] is False
    assert pools["dependsOn"] == [{"containerName": "migrate", "condition": "SUCCESS"}]
    assert daemon["dependsOn"] == [{"containerName": "pools", "condition": "SUCCESS"}]
    # Every container starts through the entry point that writes the stack's instance settings into dagster.yaml.
    # The run purge (retention.runDays) beside the daemon; its compute logs expire in the bucket after as long.
    assert retention["command"] == ["python", "-m", "dagster_celery_aws.retention"] and retention["essential"] is False
    lifecycle = stack.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "-bucket-lifecycle")
    (expiry,) = [rule for rule in lifecycle.inputs["rules"] if rule["id"] == "expire-compute-logs"]
    assert expiry["expiration"]["days"] == cfg.retention.run_days
    for c in (check, migrate, pools, daemon, metrics, retention):
        assert c["entryPoint"] == ["python", "-m", "dagster_celery_aws.instance_settings"], c["name"]
    env = {e["name"]: e["value"] for e in daemon["environment"]}
    assert json.loads(env[contract.INSTANCE_SETTINGS]) == instance.settings(cfg)
    assert env[contract.CODE_LOCATIONS] == "dagster_project"  # what the image check expects to load
    service = stack.one(SERVICE, "-daemon-service")
    assert service.inputs["waitForSteadyState"] is True
    assert (service.inputs["deploymentMaximumPercent"], service.inputs["deploymentMinimumHealthyPercent"]) == (100, 0)


def waits_for(stack, resource) -> set[str]:
    """Names of the resources ``resource`` is created or updated after (explicit and through its inputs)."""
    by_urn = {r.urn: r.name for r in stack.resources}
    return {by_urn[u] for u in resource.options.dependencies if u in by_urn}


def test_rollout_order_and_autoscaled_counts_survive_pulumi_up():
    stack = run_stack(config={"queues": [{"name": "dagster"}, {"name": "etl"}]})
    grants = {r.name for r in stack.resources if r.typ.startswith("aws:iam/rolePolicy") and "-ecs-" in r.name}
    # The execution role's two policies, the worker's, the run tasks', the control role's, and its alerts'.
    assert len(grants) == 6
    for service in stack.of_type(SERVICE):
        after = waits_for(stack, service)
        # No task starts before its roles may pull, read secrets and do their work (IAM propagation).
        assert grants <= after, service.urn
        # Everything but the daemon rolls out after the daemon (and its migration) is steady.
        assert ("dagster-test-daemon-service" in after) == (service.name != "dagster-test-daemon-service"), service.urn
        is_worker = service.inputs["name"].startswith("worker-")
        assert service.options.ignore_changes == (("desiredCount",) if is_worker else ()), service.urn
    webserver = stack.one(SERVICE, "-webserver-service")
    assert "dagster-test-ui-http" in waits_for(stack, webserver)  # the target group is behind a listener first


def test_runs_launch_the_run_revision_deployed_with_the_daemon_and_old_revisions_stay_active():
    stack = run_stack(config={"queues": [{"name": "dagster"}]})
    run = stack.one(TASKDEF, "-run-task")
    assert run.inputs["skipDestroy"] is True, run.urn  # RunTask on a deregistered (INACTIVE) revision fails
    daemon = stack.one(TASKDEF, "-daemon-task")
    assert run.name in waits_for(stack, daemon)  # registered before the daemon that launches it
    env = {e["name"]: e["value"] for e in main_container(daemon)["environment"]}
    assert env[contract.RUN_TASK_DEFINITION] == run.state["arn"]  # the exact revision, not the family
    assert env[contract.RUN_SUBNETS].split(",") == ["dagster-test-public-0-id", "dagster-test-public-1-id"]
    for other in stack.of_type(TASKDEF):
        if other is not daemon:  # elsewhere the family: a task definition cannot hold its own ARN
            values = {e["name"]: e["value"] for e in main_container(other)["environment"]}
            assert values[contract.RUN_TASK_DEFINITION] == run.inputs["family"], other.urn
    for taskdef in stack.of_type(TASKDEF):
        assert taskdef.inputs.get("skipDestroy", False) == (taskdef is run), taskdef.urn


def test_each_queue_scales_on_its_backlog_from_zero_only_where_min_is_zero():
    stack = run_stack(config={"queues": [
        {"name": "dagster", "minWorkers": 1, "maxWorkers": 4, "concurrency": 2},
        {"name": "etl", "minWorkers": 0, "maxWorkers": 6, "scaling": {"targetMessagesPerSlot": 3, "idleMinutes": 30}},
    ], "database": {"instanceClass": "db.t4g.small"}})  # fmt: skip
    for queue, concurrency, target, idle_minutes, from_zero in (("dagster", 2, 1.0, 15, False), ("etl", 1, 3.0, 30, True)):
        backlog = stack.one(POLICY, f"worker-{queue}-autoscaling-backlog").inputs
        tt = backlog["targetTrackingScalingPolicyConfiguration"]
        assert tt["targetValue"] == target and tt["disableScaleIn"] is True
        queries = {m["id"]: m for m in tt["customizedMetricSpecification"]["metrics"]}
        assert queries["backlog"]["expression"].endswith(f"/ {concurrency}")
        dims = queries["depth"]["metricStat"]["metric"]["dimensions"]
        assert {d["name"]: d["value"] for d in dims} == {"Stack": "dagster-test", "Queue": queue}
        assert backlog["resourceId"].endswith(f"/worker-{queue}")
        idle_alarm = stack.one(ALARM, f"worker-{queue}-autoscaling-idle").inputs
        assert idle_alarm["evaluationPeriods"] == idle_minutes and idle_alarm["threshold"] == 0
        assert idle_alarm["dimensions"] == {"Stack": "dagster-test", "Queue": queue}
        idle = stack.one(POLICY, f"worker-{queue}-autoscaling-idle").inputs["stepScalingPolicyConfiguration"]
        assert idle["adjustmentType"] == "ExactCapacity"
        assert idle["stepAdjustments"][0]["scalingAdjustment"] == (0 if from_zero else 1)
        wakes = [p for p in stack.of_type(POLICY) if p.name.endswith(f"worker-{queue}-autoscaling-wake")]
        assert bool(wakes) is from_zero
    wake_alarm = stack.one(ALARM, "worker-etl-autoscaling-wake").inputs
    assert "consumers == 0" in next(q for q in wake_alarm["metricQueries"] if q["id"] == "waiting")["expression"]
    assert wake_alarm["treatMissingData"] == "notBreaching"


def test_the_publisher_knows_every_queue_and_may_write_only_its_namespace(example):
    cfg, stack = example
    metrics = next(c for c in containers(stack.one(TASKDEF, "-daemon-task")) if c["name"] == "queue-metrics")
    env = {e["name"]: e["value"] for e in metrics["environment"]}
    assert env[contract.QUEUES].split(",") == [q.name for q in cfg.queues]
    assert env[contract.BROKER_MANAGEMENT_URL].startswith("https://")
    control = json.loads(stack.one("aws:iam/rolePolicy:RolePolicy", "-control").inputs["policy"])
    put = next(s for s in control["Statement"] if s["Action"] == "cloudwatch:PutMetricData")
    assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": "DagsterCeleryAws"}}


def test_workers_get_the_fargate_maximum_to_finish_a_step(example):
    cfg, stack = example
    for q in cfg.queues:
        assert main_container(stack.one(TASKDEF, f"worker-{q.name}-task"))["stopTimeout"] == 120


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["environment"]}


@pytest.mark.parametrize("mode", ["task", "daemon"])
def test_runs_mode_picks_each_tasks_launcher_and_what_exists_for_runs(mode):
    # runs.mode: every task gets DCA_RUNS_MODE (the image's launcher reads it); mode "task" has the run task
    # definition and the daemon may start it; mode "daemon" has neither, and the run workers share the daemon's
    # task and its control role.
    runs = {"mode": mode} if mode == "daemon" else {"mode": mode, "cpu": 1024, "memory": 2048}
    stack = run_stack(config={"queues": [{"name": "dagster"}], "runs": runs, "daemon": {"cpu": 1024, "memory": 4096}})
    taskdefs = stack.of_type(TASKDEF)
    for taskdef in taskdefs:
        for c in containers(taskdef):
            env = _env(c)
            assert env[contract.RUNS_MODE] == mode, (taskdef.urn, c["name"])
            assert (contract.RUN_TASK_DEFINITION in env) == (mode == "task"), (taskdef.urn, c["name"])
            assert set(contract.PLAIN_VARS) - {contract.RUN_TASK_DEFINITION} <= set(env), (taskdef.urn, c["name"])
    daemon_env = _env(main_container(stack.one(TASKDEF, "-daemon-task")))
    control = json.loads(stack.one("aws:iam/rolePolicy:RolePolicy", "-control").inputs["policy"])
    sids = {s.get("Sid") for s in control["Statement"]}
    launch = {"RunTasks", "WatchAndStopRuns", "ReadRunLogs", "DescribeUnscopable", "PassRunRoles"}
    if mode == "task":
        run = stack.one(TASKDEF, "-run-task")
        assert (run.inputs["cpu"], run.inputs["memory"]) == ("1024", "2048")
        assert daemon_env[contract.RUN_TASK_DEFINITION] == run.state["arn"] and contract.RUN_SUBNETS in daemon_env
        assert stack.outputs["run_task_definition"] == run.state["arn"]
        assert launch <= sids
    else:
        assert not [t for t in taskdefs if t.name.endswith("-run-task")], "mode daemon defines no run task"
        assert contract.RUN_SUBNETS not in daemon_env
        assert "run_task_definition" not in stack.outputs
        # The daemon's role may start no task and pass no role: its run workers run under it.
        assert not launch & sids, sids & launch
        assert not any("ecs:RunTask" in json.dumps(s) or "iam:PassRole" in json.dumps(s) for s in control["Statement"])
        assert (stack.one(TASKDEF, "-daemon-task").inputs["cpu"], stack.one(TASKDEF, "-daemon-task").inputs["memory"]) == ("1024", "4096")


def test_the_ui_scales_on_cpu_between_desired_and_max_count():
    """webserver.maxCount: the webserver service is autoscaled on its average CPU; without it, its count is fixed and
    every `pulumi up` keeps it at desiredCount."""
    fixed = run_stack(config={"queues": [{"name": "dagster"}], "webserver": {"desiredCount": 2}})
    assert not [r for r in fixed.of_type(TARGET) if "webserver" in r.name]
    assert not fixed.one(SERVICE, "-webserver-service").options.ignore_changes
    scaled = run_stack(config={"queues": [{"name": "dagster"}],
                               "webserver": {"desiredCount": 2, "maxCount": 5, "targetCpuPercent": 50}})  # fmt: skip
    target = scaled.one(TARGET, "-webserver-scaling")
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (2, 5)
    assert target.inputs["resourceId"].endswith("/webserver")
    policy = scaled.one(POLICY, "-webserver-autoscaling-cpu")
    tracking = policy.inputs["targetTrackingScalingPolicyConfiguration"]
    assert policy.inputs["policyType"] == "TargetTrackingScaling" and tracking["targetValue"] == 50
    assert tracking["predefinedMetricSpecification"] == {"predefinedMetricType": "ECSServiceAverageCPUUtilization"}
    assert scaled.one(SERVICE, "-webserver-service").options.ignore_changes == ("desiredCount",)
