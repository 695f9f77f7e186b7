"""The transition guard's own life in Pulumi's state (infra/aws/components/guard.py): its values are recorded only
once every other resource is deployed, and the provider the state keeps unpickles without this project's modules
(what `pulumi refresh` and `pulumi destroy` do with it after a module is renamed)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import dill
import pytest
from pulumi.dynamic.dynamic import serialize_provider

from infra.stackfile import transitions
from infra.aws.components import image, service_logs
from infra.aws.components.guard import _Provider
from infra.stackfile.config import parse
from infra.tools.testing import run_stack
from tests.conftest import REPO_ROOT
from tests.test_aws_models import STACKS, declared

GUARD = "pulumi-python:dynamic:Resource"
# A state written before the providers were stored by value: dill's pickle of a reference to a module that is gone
# (recorded from that version's serialize_provider of the guard).
LEGACY_PROVIDER = base64.b64encode(
    b"\x80\x04\x95+\x00\x00\x00\x00\x00\x00\x00\x8c\x16infra.components.guard\x94\x8c\t_Provider\x94\x93\x94)\x81\x94."
).decode()
DYNAMIC = {"-transitions": _Provider, "-code-deployed-tag": image._TagProvider, "-logs": service_logs._Provider}


@pytest.mark.parametrize("name", ["dev", "prod", "maximal-oidc"])
def test_the_values_are_recorded_only_after_every_other_resource(name):
    # Pulumi updates a resource only once everything it depends on succeeded: a `pulumi up` that fails halfway
    # leaves the guard with the last complete deployment's values.
    stack = declared(name) if name in STACKS else run_stack(REPO_ROOT / f"Pulumi.{name}.yaml", stack=name)
    guard = stack.one(GUARD, "-transitions")
    others = {r.urn for r in stack.resources if r is not guard and not r.typ.startswith("dagster-celery-aws:")}
    assert len(others) > 80
    assert others <= set(guard.options.dependencies), sorted(others - set(guard.options.dependencies))


def _in_a_process_without_this_project(pickled: str, calls: str) -> subprocess.CompletedProcess:
    """Run ``calls`` on ``p``, the provider unpickled from ``pickled`` as Pulumi does, with ``infra`` unimportable;
    AWS calls go to a dead endpoint, once."""
    env = {**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1",
           "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}  # fmt: skip
    code = (
        "import base64, sys, dill\n"
        "sys.modules['infra'] = None  # the project's modules renamed or moved away\n"
        f"p = dill.loads(base64.b64decode({pickled!r}))\n" + calls
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=120, env=env)


def test_the_stored_provider_serves_refresh_and_destroy_without_this_projects_modules():
    done = _in_a_process_without_this_project(serialize_provider(_Provider()), (
        "assert p.read('transitions', {'a': 1}).outs == {'a': 1}\n"  # pulumi refresh
        "p.delete('transitions', {'a': 1})\n"  # pulumi destroy
        "assert p.update('transitions', {}, {'a': 2}).outs == {'a': 2}\n"
        "print('ok')\n"))  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_the_stored_provider_checks_with_the_current_rules():
    # The preview checks with the provider of the current program, which imports the rules when it runs.
    provider = dill.loads(base64.b64decode(serialize_provider(_Provider())))
    old = transitions.deployed_values(parse({"queues": [{"name": "dagster"}], "broker": {"engineVersion": "4.2", "instanceType": "mq.m7g.medium"}}))
    new = {**old, "brokerEngineVersion": "3.13"}
    (failure,) = provider.check(old, new).failures
    assert failure.property == "broker.engineVersion" and "cannot be downgraded" in failure.reason
    assert not provider.check(old, old).failures


def test_a_state_from_before_the_stored_providers_is_rewritten_by_the_next_up():
    # `pulumi up` checks, diffs and updates with the new inputs' provider; each dynamic resource must then update
    # (not replace, which would delete with the old provider): its state stores the by-value provider from then on.
    stack = run_stack(REPO_ROOT / "Pulumi.prod.yaml", stack="prod")
    seen = set()
    for resource in stack.of_type(GUARD):
        suffix, provider_class = next((k, v) for k, v in DYNAMIC.items() if k in resource.name)
        seen.add(suffix)
        news = {**resource.inputs, "__provider": serialize_provider(provider_class())}
        diff = provider_class().diff("id", {**resource.inputs, "__provider": LEGACY_PROVIDER}, news)
        # None: the engine compares the inputs, "__provider" among them
        assert diff.changes in (True, None) and not diff.replaces, resource.name
        assert diff.changes or news["__provider"] != LEGACY_PROVIDER
    assert seen == set(DYNAMIC)
