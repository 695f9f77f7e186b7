"""Security policy over the whole resource graph of both example stacks.

Each rule carries the ids of the checks it stands for (AWS Security Hub FSBP, checkov, Pulumi AWSGuard) and
runs against every recorded resource of the dev and the prod profile. Profile differences are explicit:
a rule that only production must meet says so, and a rule that does not apply to this stack says why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import parliament
import pytest

from infra import iam
from infra.config import load_stack_file
from infra.testing import MOCK_ECR_TOKEN, MOCK_PASSWORD, StackResult, is_secret, reveal, run_stack
from tests.conftest import REPO_ROOT

RULES: dict[str, Callable] = {}
NOT_APPLICABLE: dict[str, str] = {}


def rule(rule_id: str):
    def register(fn):
        RULES[rule_id] = fn
        return fn

    return register


@pytest.fixture(scope="module", params=["dev", "prod"])
def profile(request):
    path = REPO_ROOT / f"Pulumi.{request.param}.yaml"
    return request.param, load_stack_file(path), run_stack(path, stack=request.param)


def one(stack: StackResult, typ: str):
    found = stack.of_type(typ)
    assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
    return found[0]


def containers(stack: StackResult):
    for t in stack.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        for c in json.loads(t.inputs["containerDefinitions"]):
            yield t, c


def policies(stack: StackResult):
    for p in stack.of_type("aws:iam/rolePolicy:RolePolicy"):
        yield p, json.loads(p.inputs["policy"])


def statements(document: dict):
    for s in document["Statement"]:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        yield s, actions, resources


# --- S3 ---------------------------------------------------------------------------------------------------
@rule("FSBP-S3.8_CKV2_AWS_6-block-public-access")
def _(name, cfg, stack):
    pab = one(stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(pab[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))


@rule("CKV_AWS_145-default-encryption-kms-bucket-key")
def _(name, cfg, stack):
    (r,) = one(stack, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs["rules"]
    assert r["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms" and r["bucketKeyEnabled"] is True


@rule("FSBP-S3.5-tls-only-bucket-policy")
def _(name, cfg, stack):
    (s,) = json.loads(one(stack, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])["Statement"]
    assert s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert s["Action"] == "s3:*" and len(s["Resource"]) == 2


@rule("CKV_AWS_21-versioning")
def _(name, cfg, stack):
    assert one(stack, "aws:s3/bucketVersioning:BucketVersioning").inputs["versioningConfiguration"]["status"] == "Enabled"


@rule("CKV2_AWS_61_CKV_AWS_300-lifecycle-and-abort-uploads")
def _(name, cfg, stack):
    rules = {r["id"]: r for r in one(stack, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]}
    assert rules["abort-incomplete-uploads"]["abortIncompleteMultipartUpload"]["daysAfterInitiation"] <= 7
    assert rules["expire-compute-logs"]["expiration"]["days"] > 0
    assert rules["expire-old-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] > 0


@rule("FSBP-S3.12_CKV2_AWS_65-acls-disabled")
def _(name, cfg, stack):
    ownership = one(stack, "aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs["rule"]
    assert ownership["objectOwnership"] == "BucketOwnerEnforced"


@rule("AWSGuard-s3-bucket-kept-in-production")
def _(name, cfg, stack):
    assert one(stack, "aws:s3/bucket:Bucket").inputs["forceDestroy"] is (name == "dev")


# --- RDS --------------------------------------------------------------------------------------------------
def db(stack):
    return one(stack, "aws:rds/instance:Instance").inputs


@rule("FSBP-RDS.2_CKV_AWS_17-not-public")
def _(name, cfg, stack):
    assert db(stack)["publiclyAccessible"] is False


@rule("FSBP-RDS.3_CKV_AWS_16-storage-encrypted")
def _(name, cfg, stack):
    assert db(stack)["storageEncrypted"] is True


@rule("FSBP-RDS.11_CKV_AWS_133-backups-7-days")
def _(name, cfg, stack):
    assert db(stack)["backupRetentionPeriod"] >= 7


@rule("FSBP-RDS.8_CKV_AWS_293-deletion-protection-prod")
def _(name, cfg, stack):
    assert db(stack)["deletionProtection"] is (name == "prod")


@rule("FSBP-RDS.5_CKV_AWS_157-multi-az-prod")
def _(name, cfg, stack):
    assert db(stack)["multiAz"] is (name == "prod")


@rule("FSBP-RDS.13_CKV_AWS_226-auto-minor-upgrades")
def _(name, cfg, stack):
    assert db(stack)["autoMinorVersionUpgrade"] is True


@rule("FSBP-RDS.9_CKV_AWS_129-log-exports")
def _(name, cfg, stack):
    assert set(db(stack)["enabledCloudwatchLogsExports"]) == {"postgresql", "upgrade"}


@rule("CKV2_AWS_69-force-ssl")
def _(name, cfg, stack):
    params = one(stack, "aws:rds/parameterGroup:ParameterGroup").inputs["parameters"]
    assert {"name": "rds.force_ssl", "value": "1"} in params


@rule("AWSGuard-rds-final-snapshot-prod")
def _(name, cfg, stack):
    d = db(stack)  # every stack: a teardown of prod begins by turning protection off
    assert d["skipFinalSnapshot"] is False and d["finalSnapshotIdentifier"]


@rule("AWSGuard-rds-password-in-secrets-manager")
def _(name, cfg, stack):
    assert is_secret(db(stack)["password"])  # generated, encrypted in Pulumi's state
    version = stack.one("aws:secretsmanager/secretVersion:SecretVersion", "-db-credentials").inputs["secretString"]
    assert is_secret(version) and set(json.loads(reveal(version))) == {"username", "password", "celery_backend_url"}


@rule("RDS-copy-tags-to-snapshots-gp3")
def _(name, cfg, stack):
    d = db(stack)
    assert d["copyTagsToSnapshot"] is True and d["storageType"] == "gp3"


# --- Amazon MQ --------------------------------------------------------------------------------------------
def mq(stack):
    return one(stack, "aws:mq/broker:Broker").inputs


@rule("CKV_AWS_69-broker-not-public")
def _(name, cfg, stack):
    assert mq(stack)["publiclyAccessible"] is False


@rule("FSBP-MQ.3_CKV_AWS_207-auto-minor-upgrades")
def _(name, cfg, stack):
    assert mq(stack)["autoMinorVersionUpgrade"] is True


@rule("CKV_AWS_48-broker-general-logs")
def _(name, cfg, stack):
    assert mq(stack)["logs"]["general"] is True


@rule("FSBP-MQ.6-cluster-mode-prod")
def _(name, cfg, stack):
    assert (mq(stack)["deploymentMode"] == "CLUSTER_MULTI_AZ") is (name == "prod")


@rule("MQ-private-subnets-and-own-sg")
def _(name, cfg, stack):
    broker = mq(stack)
    private = {s.state["id"] if "id" in s.state else f"{s.name}-id" for s in stack.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name}
    assert set(broker["subnetIds"]) <= private
    assert broker["securityGroups"] == [next(g.state["id"] for g in stack.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("-broker"))]


NOT_APPLICABLE["CKV_AWS_209-mq-customer-kms-key"] = "RabbitMQ brokers ignore customer KMS keys (docs/facts.md); AWS encrypts at rest"


# --- ECS --------------------------------------------------------------------------------------------------
@rule("FSBP-ECS.2-no-public-ip-behind-nat")
def _(name, cfg, stack):
    for s in stack.of_type("aws:ecs/service:Service"):
        # Dev has no NAT gateway (cheap): tasks need a public IP to pull the image; no rule admits inbound.
        assert s.inputs["networkConfiguration"]["assignPublicIp"] is (cfg.network.nat_gateways == 0), s.urn
    assert (cfg.network.nat_gateways > 0) is (name == "prod")


@rule("FSBP-ECS.4-no-privileged-containers")
def _(name, cfg, stack):
    for t, c in containers(stack):
        assert not c.get("privileged") and "linuxParameters" not in c, t.urn


@rule("FSBP-ECS.8-secrets-not-in-environment")
def _(name, cfg, stack):
    for t, c in containers(stack):
        for e in c["environment"]:
            assert not any(w in e["name"] for w in ("PASSWORD", "SECRET", "BROKER_URL", "TOKEN")), (t.urn, e)
        assert {s["name"] for s in c["secrets"]} >= {"DAGSTER_PG_PASSWORD", "DAGSTER_CELERY_BROKER_URL"}


@rule("FSBP-ECS.9-awslogs-for-every-container")
def _(name, cfg, stack):
    for t, c in containers(stack):
        assert c["logConfiguration"]["logDriver"] == "awslogs", t.urn


@rule("FSBP-ECS.12_CKV_AWS_65-container-insights")
def _(name, cfg, stack):
    assert {"name": "containerInsights", "value": "enabled"} in one(stack, "aws:ecs/cluster:Cluster").inputs["settings"]


@rule("ECS-non-root-user")
def _(name, cfg, stack):
    for t, c in containers(stack):
        assert c["user"] not in ("root", "0") and c["user"].split(":")[0] != "0", t.urn


@rule("FSBP-ECS.3-awsvpc-no-host-namespaces")
def _(name, cfg, stack):
    for t in stack.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        assert t.inputs["networkMode"] == "awsvpc" and "pidMode" not in t.inputs and "ipcMode" not in t.inputs, t.urn


@rule("AWSGuard-separate-execution-and-task-roles")
def _(name, cfg, stack):
    for t in stack.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        assert t.inputs["executionRoleArn"] != t.inputs["taskRoleArn"], t.urn


@rule("ECS-workers-cannot-launch-runs")
def _(name, cfg, stack):
    roles = {t.inputs["family"]: t.inputs["taskRoleArn"] for t in stack.of_type("aws:ecs/taskDefinition:TaskDefinition")}
    workers = {arn for fam, arn in roles.items() if "-worker-" in fam or fam.endswith("-run")}
    control = {arn for fam, arn in roles.items() if fam.endswith(("-webserver", "-daemon"))}
    assert len(workers) == 1 and len(control) == 1 and workers != control


@rule("ECS-circuit-breaker-rollback")
def _(name, cfg, stack):
    for s in stack.of_type("aws:ecs/service:Service"):
        assert s.inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}, s.urn


NOT_APPLICABLE["FSBP-ECS.5-read-only-root-filesystem"] = (
    "Dagster writes under DAGSTER_HOME (which also holds the image's dagster.yaml) and the system temp dir; "
    "making the root read-only needs writable volumes whose behaviour over image content cannot be proven "
    "without a Docker engine here"
)


# --- Load balancer ----------------------------------------------------------------------------------------
def alb(stack):
    return one(stack, "aws:lb/loadBalancer:LoadBalancer").inputs


@rule("FSBP-ELB.4_CKV_AWS_131-drop-invalid-headers")
def _(name, cfg, stack):
    assert alb(stack)["dropInvalidHeaderFields"] is True


@rule("FSBP-ELB.6_CKV_AWS_150-deletion-protection-prod")
def _(name, cfg, stack):
    assert alb(stack)["enableDeletionProtection"] is (name == "prod")


@rule("UI-never-open-without-choice")
def _(name, cfg, stack):
    # dev: private (internal ALB); prod: an allow-list. Neither opens anything to 0.0.0.0/0.
    assert alb(stack)["internal"] is (cfg.ui.access == "private")
    for r in stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        assert r.inputs.get("cidrIpv4") != "0.0.0.0/0", r.urn


@rule("FSBP-ELB.1_CKV_AWS_103-https-tls12-redirect-when-certificate")
def _(name, cfg, stack):
    listeners = {l.inputs["port"]: l.inputs for l in stack.of_type("aws:lb/listener:Listener")}
    if cfg.ui.certificate_arn:
        assert listeners[443]["sslPolicy"].startswith("ELBSecurityPolicy-TLS13-1-2")
        assert listeners[80]["defaultActions"][0]["type"] == "redirect"
    else:
        assert set(listeners) == {80}  # no certificate: UI is internal or allow-listed (see README)


NOT_APPLICABLE["FSBP-ELB.5-access-logs"] = (
    "ALB access logs need an SSE-S3 bucket with an ELB delivery policy; the data bucket is SSE-KMS. "
    "Flow logs (prod) and the webserver's own logs cover access for now"
)


# --- Network and security groups --------------------------------------------------------------------------
@rule("FSBP-EC2.19_EC2.18_CKV_AWS_24_CKV_AWS_260-no-open-ingress")
def _(name, cfg, stack):
    for r in stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        if r.inputs.get("cidrIpv4") == "0.0.0.0/0":
            assert r.name.split("-lb-")[-1].split("-")[0] in ("80", "443"), r.urn


@rule("CKV_AWS_23-rule-descriptions")
def _(name, cfg, stack):
    for typ in ("Ingress", "Egress"):
        for r in stack.of_type(f"aws:vpc/securityGroup{typ}Rule:SecurityGroup{typ}Rule"):
            assert r.inputs.get("description"), r.urn
    for g in stack.of_type("aws:ec2/securityGroup:SecurityGroup"):
        assert g.inputs.get("description") and "ingress" not in g.inputs and "egress" not in g.inputs, g.urn


@rule("FSBP-EC2.2_CKV2_AWS_12-default-sg-closed")
def _(name, cfg, stack):
    sg = one(stack, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup").inputs
    assert sg.get("ingress", []) == [] and sg.get("egress", []) == []


@rule("FSBP-EC2.6_CKV2_AWS_11-flow-logs-prod")
def _(name, cfg, stack):
    assert bool(stack.of_type("aws:ec2/flowLog:FlowLog")) is (name == "prod")


@rule("FSBP-EC2.15-subnets-no-auto-public-ip")
def _(name, cfg, stack):
    for s in stack.of_type("aws:ec2/subnet:Subnet"):
        assert not s.inputs.get("mapPublicIpOnLaunch"), s.urn


# --- IAM --------------------------------------------------------------------------------------------------
@rule("FSBP-IAM.1-no-wildcard-actions")
def _(name, cfg, stack):
    for p, doc in policies(stack):
        for _s, actions, _r in statements(doc):
            assert all("*" not in a for a in actions), p.urn


@rule("CKV_AWS_355-star-resource-only-where-aws-allows-nothing-narrower")
def _(name, cfg, stack):
    unscopable = {"ecs:DescribeTaskDefinition", "ec2:DescribeNetworkInterfaces", *iam.ECS_EXEC_ACTIONS}
    for p, doc in policies(stack):
        for _s, actions, resources in statements(doc):
            if "*" in resources:
                assert set(actions) <= unscopable or (
                    actions == ["cloudwatch:PutMetricData"] and "cloudwatch:namespace" in str(_s["Condition"])
                ), p.urn


@rule("IAM-passrole-scoped-to-stack-roles-and-ecs")
def _(name, cfg, stack):
    for p, doc in policies(stack):
        for s, actions, resources in statements(doc):
            if "iam:PassRole" in actions:
                assert all(r.startswith("arn:aws:iam::") and ":role/" in r for r in resources), p.urn
                assert s["Condition"]["StringEquals"]["iam:PassedToService"] == "ecs-tasks.amazonaws.com"


@rule("IAM-s3-scoped-to-the-stack-bucket")
def _(name, cfg, stack):
    bucket_arn = one(stack, "aws:s3/bucket:Bucket").state["arn"]
    for p, doc in policies(stack):
        for _s, actions, resources in statements(doc):
            if any(a.startswith("s3:") for a in actions):
                assert all(r in (bucket_arn, f"{bucket_arn}/*") for r in resources), p.urn


@rule("IAM-secrets-scoped-to-the-stack-secrets")
def _(name, cfg, stack):
    for p, doc in policies(stack):
        for _s, actions, resources in statements(doc):
            if "secretsmanager:GetSecretValue" in actions:
                secrets = {r.state["arn"] for r in stack.of_type("aws:secretsmanager/secret:Secret")}
                assert set(resources) == secrets, p.urn


@rule("IAM-task-protection-only-for-own-cluster-tasks")
def _(name, cfg, stack):
    cluster = one(stack, "aws:ecs/cluster:Cluster").state["arn"]
    worker = next(doc for p, doc in policies(stack) if p.name.endswith("-worker"))
    (s,) = [s for s in worker["Statement"] if "ecs:UpdateTaskProtection" in s["Action"]]
    assert set(s["Action"]) == {"ecs:UpdateTaskProtection", "ecs:GetTaskProtection"}
    assert s["Resource"] == cluster.replace(":cluster/", ":task/") + "/*"


@rule("IAM-parliament-no-findings")
def _(name, cfg, stack):
    for p, doc in policies(stack):
        findings = parliament.analyze_policy_string(json.dumps(doc)).findings
        assert not findings, (p.urn, [(f.issue, f.detail) for f in findings])


# --- ECR, logs, secrets -----------------------------------------------------------------------------------
@rule("FSBP-ECR.1_CKV_AWS_163-scan-on-push")
def _(name, cfg, stack):
    assert one(stack, "aws:ecr/repository:Repository").inputs["imageScanningConfiguration"]["scanOnPush"] is True


@rule("FSBP-ECR.2_CKV_AWS_51-immutable-tags")
def _(name, cfg, stack):
    assert one(stack, "aws:ecr/repository:Repository").inputs["imageTagMutability"] == "IMMUTABLE"


@rule("FSBP-ECR.3-lifecycle-policy")
def _(name, cfg, stack):
    (r,) = json.loads(one(stack, "aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs["policy"])["rules"]
    assert r["action"]["type"] == "expire" and r["selection"]["countNumber"] > 0


@rule("CKV_AWS_66-log-retention")
def _(name, cfg, stack):
    for g in stack.of_type("aws:cloudwatch/logGroup:LogGroup"):
        assert g.inputs["retentionInDays"] >= (90 if name == "prod" else 7), g.urn


@rule("SECRETS-no-value-outside-secret-resources")
def _(name, cfg, stack):
    holders = {"aws:secretsmanager/secretVersion:SecretVersion", "aws:mq/broker:Broker", "aws:rds/instance:Instance",
               "docker-build:index:Image"}  # fmt: skip
    for r in stack.resources:
        if r.typ not in holders:
            text = json.dumps(r.inputs, default=str)
            assert MOCK_PASSWORD not in text and MOCK_ECR_TOKEN not in text, r.urn
    assert MOCK_PASSWORD not in json.dumps(stack.outputs)


@rule("SECRETS-generated-password-rules")
def _(name, cfg, stack):
    passwords = stack.of_type("random:index/randomPassword:RandomPassword")
    assert len(passwords) == 2  # broker, database
    for p in passwords:
        # Amazon MQ refuses commas; RDS refuses '/', '@', '"' and spaces (docs/facts.md; RDS CreateDBInstance).
        assert p.inputs["length"] >= 32 and not set(p.inputs["overrideSpecial"]) & set(',/@" '), p.urn


NOT_APPLICABLE["FSBP-SecretsManager.1-rotation"] = (
    "the broker secret cannot rotate on its own because changing Amazon MQ users recreates the broker "
    "(docs/facts.md); the database secret also holds the Celery backend URL, so a rotation must rewrite both "
    "together: rotate by replacing the generated password (pulumi up --replace on its RandomPassword)"
)
NOT_APPLICABLE["FSBP-SNS.1-topic-encryption"] = (
    "the alarm topic carries alarm texts only, and a topic encrypted with the AWS-managed aws/sns key cannot "
    "receive CloudWatch alarms or EventBridge events (its key policy cannot admit them)"
)
NOT_APPLICABLE["CKV_AWS_149_CKV_AWS_158-customer-kms-keys"] = (
    "secrets and log groups use AWS-managed encryption; a customer key adds cost and a key policy to run "
    "for no control the stack uses"
)


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_rule(rule_id, profile):
    name, cfg, stack = profile
    RULES[rule_id](name, cfg, stack)


def test_at_least_thirty_rules_are_enforced():
    assert len(RULES) >= 30, len(RULES)


@pytest.mark.parametrize("rule_id", sorted(NOT_APPLICABLE))
def test_rules_that_do_not_apply_say_why(rule_id):
    assert len(NOT_APPLICABLE[rule_id]) > 40


def test_authenticated_ui_signs_users_in_before_forwarding():
    cert = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
    oidc = {"issuer": "https://idp.example.com", "authorizationEndpoint": "https://idp.example.com/auth",
            "tokenEndpoint": "https://idp.example.com/token", "userInfoEndpoint": "https://idp.example.com/userinfo",
            "clientId": "dagster"}  # fmt: skip
    stack = run_stack(config={"queues": [{"name": "dagster"}], "oidcClientSecret": "idp-secret-never-leak",
                              "ui": {"access": "oidc", "certificateArn": cert, "oidc": oidc}})  # fmt: skip
    https = next(l for l in stack.of_type("aws:lb/listener:Listener") if l.inputs["port"] == 443).inputs
    assert is_secret(https["defaultActions"])  # the client secret is encrypted in Pulumi's state
    assert [a["type"] for a in reveal(https["defaultActions"])] == ["authenticate-oidc", "forward"]
    for r in stack.resources:
        if r.typ != "aws:lb/listener:Listener":
            assert "idp-secret-never-leak" not in json.dumps(r.inputs, default=str), r.urn
    cognito = {"userPoolArn": "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_abc",
               "userPoolClientId": "client", "userPoolDomain": "dagster-login"}  # fmt: skip
    stack = run_stack(config={"queues": [{"name": "dagster"}], "ui": {"access": "cognito", "certificateArn": cert, "cognito": cognito}})
    https = next(l for l in stack.of_type("aws:lb/listener:Listener") if l.inputs["port"] == 443).inputs
    assert [a["type"] for a in https["defaultActions"]] == ["authenticate-cognito", "forward"]


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    result = subprocess.run([hadolint, str(REPO_ROOT / "worker_image" / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_container_user_is_the_image_user():
    dockerfile = (REPO_ROOT / "worker_image" / "Dockerfile").read_text()
    assert "USER 10001:10001" in dockerfile
