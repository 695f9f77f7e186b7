"""The deployer's policy over the whole lifecycle: for every type the example and maximal stacks declare, each
action its create, refresh, update, replace and delete call -- and what AWS authorises on the caller's behalf
(final snapshots, their tags, key grants, passed roles) on the resource it acts on -- is allowed by the generated
policy. The table (tests/deployer_lifecycle.py) is written from the Terraform provider, not from
infra/tools/deployer_policy.py, so the policy is checked against something it was not generated from."""

from __future__ import annotations

import fnmatch
from functools import cache

import pytest

from infra.tools import deployer_policy as dp
from infra.tools.testing import ACCOUNT, REGION, Resource, StackResult
from tests.conftest import REPO_ROOT
from tests.deployer_lifecycle import DYNAMIC, FORCE_DESTROY, LIFECYCLE, OPERATIONS, Calls
from tests.test_aws_models import MAXIMAL_COGNITO, MAXIMAL_OIDC

STACKS = {
    "dev": (REPO_ROOT / "Pulumi.dev.yaml", "dev", None),
    "prod": (REPO_ROOT / "Pulumi.prod.yaml", "prod", None),
    "prod-30-char-stack-name": (REPO_ROOT / "Pulumi.prod.yaml", "customer-analytics-production1", None),
    "maximal-oidc": (None, "dev", MAXIMAL_OIDC),
    "maximal-cognito-existing-vpc": (None, "dev", MAXIMAL_COGNITO),
}


@cache
def recorded(name: str) -> tuple[StackResult, list[dict]]:
    stack_file, stack, config = STACKS[name]
    result, invokes = dp.record(stack_file, stack, config=config)
    statements = [s for d in dp.documents(dp.statements(result, invokes, stack, ACCOUNT, REGION)) for s in d["Statement"]]
    return result, statements


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def allowed(statements: list[dict], action: str, arn: str = "*") -> bool:
    """Whether an Allow statement names ``action`` on ``arn`` (IAM's * and ? wildcards); "*": on anything."""
    for s in statements:
        if s["Effect"] == "Allow" and action in _listed(s["Action"]):
            if arn == "*" or any(fnmatch.fnmatchcase(arn, pattern) for pattern in _listed(s["Resource"])):
                return True
    return False


def aws_types(result: StackResult) -> set[str]:
    return {r.typ for r in result.resources if not r.typ.startswith(dp.COMPONENT_PREFIX)}


def rows(result: StackResult) -> list[tuple[str, Calls, Resource]]:
    """(what, its row, the resource) for every resource: by type, and our dynamic resources by their inputs."""
    found = []
    for r in result.resources:
        if r.typ.startswith(dp.COMPONENT_PREFIX):
            continue
        found.append((r.typ, LIFECYCLE[r.typ], r))
        found += [(f"{r.typ} with {key}", calls, r) for key, calls in DYNAMIC.items()
                  if r.typ == "pulumi-python:dynamic:Resource" and key in r.inputs]  # fmt: skip
    return found


@pytest.fixture(scope="module", params=list(STACKS))
def stack(request):
    return recorded(request.param)


def test_every_declared_type_has_a_lifecycle_row(stack):
    result, _ = stack
    missing = aws_types(result) - set(LIFECYCLE)
    assert not missing, f"no row in tests/deployer_lifecycle.py LIFECYCLE (from the Terraform provider) for {sorted(missing)}"


@pytest.mark.parametrize("operation", OPERATIONS)
def test_the_policy_allows_every_call_of_every_operation(stack, operation):
    result, statements = stack
    checked = 0
    for what, calls, r in rows(result):
        needed = calls.actions(operation)
        if r.typ == "aws:s3/bucket:Bucket" and operation in ("delete", "replace") and r.inputs.get("forceDestroy"):
            needed |= set(FORCE_DESTROY.split())
        missing = sorted(a for a in needed if not allowed(statements, a))
        assert not missing, f"{what} {operation} ({calls.source}): the deployer may not {missing}"
        checked += len(needed)
    assert checked  # not an empty stack


def test_what_aws_checks_on_the_callers_behalf_is_allowed_on_its_resource(stack):
    """Final snapshot (and its tags) on delete and replace, key grants, passed roles: on the ARN AWS checks."""
    result, statements = stack
    checked = set()
    for _, calls, r in rows(result):
        for operation, action, arns in calls.behalf:
            for arn in arns(r):
                assert allowed(statements, action, arn), f"{r.urn} {operation}: the deployer may not {action} on {arn}"
                checked.add(action)
    assert {"rds:CreateDBSnapshot", "rds:AddTagsToResource", "iam:PassRole", "logs:AssociateKmsKey"} <= checked


def test_a_new_type_without_a_row_fails():
    result, _ = recorded("dev")
    extra = StackResult([*result.resources, dp.testing.Resource("aws:sqs/queue:Queue", "dagster-dev-q", {}, {})])
    assert aws_types(extra) - set(LIFECYCLE) == {"aws:sqs/queue:Queue"}


def test_the_check_refuses_a_policy_without_the_final_snapshot():
    """The instance's deletion leaves a final snapshot: without rds:CreateDBSnapshot (as before August 2024's
    change to DeleteDBInstance) the check names it."""
    result, statements = recorded("prod")
    stripped = [{**s, "Action": [a for a in _listed(s["Action"]) if a != "rds:CreateDBSnapshot"]} for s in statements]
    instance = result.one("aws:rds/instance:Instance", "-postgres")
    snapshot = f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:{instance.inputs['finalSnapshotIdentifier']}"
    assert allowed(statements, "rds:CreateDBSnapshot", snapshot.lower())
    assert not allowed(stripped, "rds:CreateDBSnapshot", snapshot.lower())


def test_every_dynamic_resource_is_the_guard_or_has_a_row_of_its_own(stack):
    """A dynamic resource runs our own code: the guard calls nothing; any other must say what it calls (DYNAMIC)."""
    from infra.stackfile import transitions
    from infra.stackfile.config import load_stack_file

    result, _ = stack
    guard_keys = set(transitions.deployed_values(load_stack_file(REPO_ROOT / "Pulumi.dev.yaml")))
    dynamic = result.of_type("pulumi-python:dynamic:Resource")
    assert len(dynamic) > 1
    for r in dynamic:
        keys = set(r.inputs) - {"__provider"}
        assert keys <= guard_keys or keys & set(DYNAMIC), f"{r.urn}: no row in tests/deployer_lifecycle.py DYNAMIC"
