"""Test a stack offline: run the Pulumi program under recording mocks and look at what it would create.

For our tests and for users' own tests of their ``Pulumi.<stack>.yaml``::

    from infra.tools.testing import run_stack

    def test_etl_never_below_two():
        stack = run_stack("Pulumi.prod.yaml")
        target = stack.one("aws:appautoscaling/target:Target", "worker-etl-scaling")
        assert target.inputs["minCapacity"] >= 2

No AWS credentials, Docker or Pulumi CLI are needed: nothing is built or deployed.
"""

from __future__ import annotations

import json
import pickle
import runpy
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

from infra.aws import naming

PROJECT = "dagster-celery-aws"
PROGRAM = Path(__file__).resolve().parents[1] / "__main__.py"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
# Known secret values, so tests can prove they never leak into task definitions or outputs.
MOCK_PASSWORD = "MockBrokerPassw0rd-never-leak"
MOCK_ECR_TOKEN = "MockEcrToken-never-leak"


@dataclass
class Options:
    """The resource options the engine would receive (what mocks alone do not show)."""

    urn: str = ""
    dependencies: tuple[str, ...] = ()  # URNs this resource waits for (depends_on and inputs' resources)
    ignore_changes: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] = ()
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    aliases: tuple[str, ...] = ()  # alias names (specs without a URN) and URNs


@dataclass
class Resource:
    typ: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    options: Options = field(default_factory=Options)

    @property
    def urn(self) -> str:
        return self.options.urn or f"urn:pulumi:test::{PROJECT}::{self.typ}::{self.name}"


@dataclass
class StackResult:
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name_suffix: str) -> Resource:
        found = [r for r in self.of_type(typ) if r.name.endswith(name_suffix)]
        if len(found) != 1:
            names = [r.name for r in self.of_type(typ)]
            raise LookupError(f"expected one {typ} named *{name_suffix}, found {len(found)} among {names}")
        return found[0]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.resources:
            counts[r.typ] = counts.get(r.typ, 0) + 1
        return dict(sorted(counts.items()))


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how the Pulumi SDK marks a secret value in mock inputs


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and SECRET_SIG in value


def reveal(value: Any) -> Any:
    """The plain value of a mock input, secret markers removed at every depth."""
    if is_secret(value):
        return reveal(value["value"])
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def _computed(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Fields AWS would compute, filled by type so that dependent resources get realistic values."""
    service = typ.split(":")[1].split("/")[0]
    state: dict[str, Any] = {"arn": _arn(service, name)}
    rule = naming.RULES.get(typ)
    if rule and rule.prop not in inputs:
        state[rule.prop] = name  # the name Pulumi gives it (its random suffix left out), which others refer to
    if typ == "aws:mq/broker:Broker":
        host = f"b-{name}.mq.{REGION}.amazonaws.com"
        state |= {"instances": [{"endpoints": [f"amqps://{host}:5671"], "consoleUrl": f"https://{host}"}],
                  "brokerName": inputs.get("brokerName", name)}
    elif typ == "aws:mq/configuration:Configuration":
        state["latestRevision"] = 1
    elif typ == "aws:rds/instance:Instance":
        state |= {"identifier": name, "address": f"{name}.rds.amazonaws.com", "port": 5432,
                  "endpoint": f"{name}.rds.amazonaws.com:5432"}  # fmt: skip
    elif typ == "aws:s3/bucket:Bucket":
        state |= {"bucket": name, "arn": f"arn:aws:s3:::{name}"}
    elif typ == "aws:ecr/repository:Repository":
        state |= {"repositoryUrl": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}", "registryId": ACCOUNT}
    elif typ == "docker-build:index:Image":
        state["digest"] = f"sha256:{'0' * 64}"
    elif typ == "aws:ecs/cluster:Cluster":
        state |= {"name": name, "arn": _arn("ecs", f"cluster/{name}")}
    elif typ == "aws:ecs/taskDefinition:TaskDefinition":
        state |= {"arn": _arn("ecs", f"task-definition/{inputs.get('family', name)}:1"), "revision": 1}
    elif typ == "aws:ecs/service:Service":
        state["name"] = inputs.get("name", name)
    elif typ == "aws:lb/loadBalancer:LoadBalancer":
        state |= {"dnsName": f"{name}.{REGION}.elb.amazonaws.com", "arnSuffix": f"app/{name}/0123456789abcdef"}
    elif typ == "aws:lb/targetGroup:TargetGroup":
        state["arnSuffix"] = f"targetgroup/{name}/0123456789abcdef"
    elif typ == "aws:cloudwatch/logGroup:LogGroup":
        state |= {"name": name, "arn": _arn("logs", f"log-group:{name}")}
    elif typ == "aws:secretsmanager/secretVersion:SecretVersion":
        state["versionId"] = f"{name}-version-1"
    elif typ == "aws:secretsmanager/secret:Secret":
        state["arn"] = _arn("secretsmanager", f"secret:{name}")
    elif typ == "aws:iam/role:Role":
        state |= {"name": name, "arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"}
    elif typ == "random:index/randomPassword:RandomPassword":
        state["result"] = MOCK_PASSWORD
    elif typ == "random:index/randomString:RandomString":
        state["result"] = "k3x9q2m7"
    elif typ == "aws:ec2/securityGroup:SecurityGroup":
        state["id"] = f"sg-{abs(hash(name)) % 10**8:08d}"
    elif typ == "aws:kms/key:Key":
        key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
        state |= {"keyId": key_id, "arn": _arn("kms", f"key/{key_id}")}
    elif typ == "aws:wafv2/webAcl:WebAcl":
        state["arn"] = _arn("wafv2", f"regional/webacl/{name}/{uuid.uuid5(uuid.NAMESPACE_URL, name)}")
    return state


class RecordingMocks(pulumi.runtime.Mocks):
    """Keeps every resource the program declares; answers the invokes the program makes."""

    def __init__(self) -> None:
        self.resources: list[Resource] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = {**args.inputs, **_computed(args.typ, args.name, args.inputs)}
        self.resources.append(Resource(args.typ, args.name, dict(args.inputs), state, self._pending.pop((args.typ, args.name))))
        return state.get("id", f"{args.name}-id"), state

    _pending: dict[tuple[str, str], Options]

    def monitor(self) -> pulumi.runtime.mocks.MockMonitor:
        """A mock monitor that also records each registration's options (dependencies, protect, ...)."""
        mocks = self
        mocks._pending = {}

        class RecordingMonitor(pulumi.runtime.mocks.MockMonitor):
            def RegisterResource(self, request):
                if request.type != "pulumi:pulumi:Stack":
                    mocks._pending[(request.type, request.name)] = Options(
                        urn=self.make_urn(request.parent, request.type, request.name),
                        dependencies=tuple(request.dependencies),
                        ignore_changes=tuple(request.ignoreChanges),
                        replace_on_changes=tuple(request.replaceOnChanges),
                        protect=bool(request.protect),
                        retain_on_delete=bool(request.retainOnDelete),
                        delete_before_replace=bool(request.deleteBeforeReplace),
                        aliases=tuple(a.urn or a.spec.name for a in request.aliases),
                    )  # fmt: skip
                return super().RegisterResource(request)

        return RecordingMonitor(mocks)

    def call(self, args: pulumi.runtime.MockCallArgs):
        token = args.token
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": [f"{REGION}a", f"{REGION}b", f"{REGION}c"], "zoneIds": ["euw1-az1", "euw1-az2", "euw1-az3"]}
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/test", "userId": "test"}
        if token == "aws:index/getRegion:getRegion":
            return {"region": REGION, "name": REGION, "id": REGION}
        if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {"userName": "AWS", "password": MOCK_ECR_TOKEN, "authorizationToken": MOCK_ECR_TOKEN}
        if token == "aws:ec2/getVpc:getVpc":
            return {"id": args.args.get("id"), "cidrBlock": "10.20.0.0/16"}
        raise NotImplementedError(f"RecordingMocks has no answer for invoke {token}")


def stack_file_config(path: str | Path) -> dict[str, Any]:
    """The ``config:`` mapping of a stack file, as ``pulumi up`` would pass it to the program."""
    document = yaml.safe_load(Path(path).read_text()) or {}
    return document.get("config") or {}


def run_stack(stack_file: str | Path | None = None, config: dict[str, Any] | None = None, stack: str = "test",
              preview: bool = False) -> StackResult:
    """Run ``infra/__main__.py`` under recording mocks with a stack file's config (or ``config``, keys
    without the namespace) and return every resource and the resolved outputs.

    Invalid config raises ``pulumi.RunError`` naming the key, exactly as ``pulumi up`` would report it.
    """
    raw = stack_file_config(stack_file) if stack_file else {}
    raw |= {f"{PROJECT}:{k}": v for k, v in (config or {}).items()}
    mocks = RecordingMocks()
    # A fresh root stack: the last run's would keep its exports (an output this config no longer has).
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=mocks.monitor())
    # Pulumi hands structured values to the program as JSON text.
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()})
    result = StackResult(resources=mocks.resources)

    @pulumi.runtime.test
    def program():
        runpy.run_path(str(PROGRAM), run_name="__main__")
        root = pulumi.runtime.get_root_resource()
        return pulumi.Output.all(**root.outputs).apply(result.outputs.update)

    # Pulumi's serialize_provider wraps pickle's _batch_setitems in a sorting wrapper on every dynamic resource it
    # pickles and never unwraps it (pulumi/dynamic/dynamic.py): a process that runs many stacks nests the wrappers
    # until pickling recurses past Python's limit. `pulumi up` is one program in one process; a test run is many.
    batch_setitems = pickle._Pickler._batch_setitems
    try:
        program()
    finally:
        pickle._Pickler._batch_setitems = batch_setitems
    return result
