"""The provider's plan-time checks as tests/provider_checks.py reproduces them: each refuses or forces what its
source does, and each is about a type the program declares (tests/day2.py applies them to every day-2 change)."""

from __future__ import annotations

import pytest

from tests.day2 import FORCE_NEW
from tests.provider_checks import OPTIONAL_COMPUTED, PLAN_CHECKS, verdicts

SERVICE, ALB = "aws:ecs/service:Service", "aws:lb/loadBalancer:LoadBalancer"
SPOT = [{"capacityProvider": "FARGATE_SPOT", "weight": 100}]
MIX = [{"capacityProvider": "FARGATE", "weight": 50, "base": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 50}]
REFUSAL = "force_new_deployment should be true when capacity_provider_strategy is being updated"


def refusals(typ, old, new):
    return [v.refusal for _, v in verdicts(typ, old, new) if v.refusal]


@pytest.mark.parametrize(("old", "new", "refused"), [
    ({"capacityProviderStrategies": MIX}, {"launchType": "FARGATE"}, True),  # off Spot, nothing forcing a deployment
    ({"capacityProviderStrategies": MIX}, {"launchType": "FARGATE", "forceNewDeployment": True}, False),
    ({"launchType": "FARGATE"}, {"capacityProviderStrategies": SPOT}, True),  # onto Spot
    ({"launchType": "FARGATE"}, {"capacityProviderStrategies": SPOT, "forceNewDeployment": True}, False),
    ({"capacityProviderStrategies": MIX}, {"capacityProviderStrategies": SPOT}, True),  # a new mix
    ({"capacityProviderStrategies": MIX}, {"capacityProviderStrategies": list(reversed(MIX))}, False),  # a set: same
    ({"launchType": "FARGATE"}, {"launchType": "FARGATE"}, False),
])  # fmt: skip
def test_an_existing_service_changes_its_strategy_only_with_a_forced_deployment(old, new, refused):
    assert refusals(SERVICE, old, new) == ([REFUSAL] if refused else [])


def test_a_new_service_is_not_held_to_it_but_to_the_schemas_ranges():
    assert refusals(SERVICE, None, {"capacityProviderStrategies": SPOT}) == []
    (refusal,) = refusals(SERVICE, None, {"capacityProviderStrategies": [{"capacityProvider": "FARGATE", "weight": 1001}]})
    assert "weight 0-1000" in refusal


@pytest.mark.parametrize(("old", "new", "forced"), [
    ({"subnets": ["a", "b"]}, {"subnets": ["c", "d"]}, {"subnets"}),  # swapped: as many
    ({"subnets": ["a", "b"]}, {"subnets": ["a"]}, {"subnets"}),
    ({"subnets": ["a", "b"]}, {"subnets": ["a", "b", "c"]}, set()),  # added: in place
    ({"securityGroups": []}, {"securityGroups": ["sg"]}, {"securityGroups"}),
    ({"securityGroups": ["sg1"]}, {"securityGroups": ["sg2"]}, set()),
])  # fmt: skip
def test_an_application_load_balancer_is_replaced_where_the_provider_says(old, new, forced):
    assert {k for _, v in verdicts(ALB, {"loadBalancerType": "application", **old}, new) for k in v.force_new} == forced


def test_every_check_is_about_a_declared_type():
    declared = set(FORCE_NEW)
    assert {c.typ for c in PLAN_CHECKS} <= declared and set(OPTIONAL_COMPUTED) <= declared
