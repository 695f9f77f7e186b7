"""The Terraform AWS provider's plan-time checks (its CustomizeDiff functions) for the types the program declares,
and its Optional+Computed inputs, as tests/day2.py applies them to every day-2 change.

pulumi-aws bridges terraform-provider-aws: `pulumi preview` plans each changed resource with the provider's schema
and CustomizeDiff, which may refuse the plan (an error in the preview) or force a replacement the schema alone
does not, and its schema's validation functions refuse values before any call. Each PLAN_CHECKS row reproduces
one such function from its source, over the old and new inputs of a resource that exists (CustomizeDiff with
``d.Id() != ""``) or, for a validation, over the new inputs of every resource the change leaves. Add a row per
function as types are declared.

An input that is Optional and Computed keeps its last value when the config no longer sets it: removing it is no
diff (OPTIONAL_COMPUTED).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from infra.tools.testing import reveal

PROVIDER = "hashicorp/terraform-provider-aws"


@dataclass(frozen=True)
class Verdict:
    refusal: str | None = None  # the provider's error: the preview fails
    force_new: frozenset[str] = field(default_factory=frozenset)  # inputs the function marks ForceNew


@dataclass(frozen=True)
class PlanCheck:
    typ: str
    source: str  # file and function in the provider
    run: Callable[[dict[str, Any], dict[str, Any]], Verdict]  # (old inputs, new inputs); old is {} for a new one
    existing_only: bool = True  # a CustomizeDiff that acts on updates only; False: a validation, on every plan


def _as_set(value: Any) -> set[str]:
    """A Terraform set (TypeSet) as comparable members: order does not matter, absent is empty."""
    return {json.dumps(v, sort_keys=True) for v in reveal(value) or []}


def ecs_service_capacity_strategy(old: dict, new: dict) -> Verdict:
    # Since PR #43533: an existing service whose capacity_provider_strategy changes -- a new mix, or one added or
    # removed -- needs force_new_deployment true in the new config, or the plan fails.
    if _as_set(old.get("capacityProviderStrategies")) != _as_set(new.get("capacityProviderStrategies")):
        if not new.get("forceNewDeployment"):
            return Verdict("force_new_deployment should be true when capacity_provider_strategy is being updated")
    return Verdict()


def alb_subnets_and_security_groups(old: dict, new: dict) -> Verdict:
    # An application load balancer keeps its subnets in place only when subnets are added; fewer or as many
    # (swapped) replace it. Security groups from none to some, or back, replace it too.
    if new.get("loadBalancerType", "application") != "application":
        return Verdict()
    forced = set()
    before, after = _as_set(old.get("subnets")), _as_set(new.get("subnets"))
    if before != after and len(after) <= len(before):
        forced.add("subnets")
    groups_before, groups_after = _as_set(old.get("securityGroups")), _as_set(new.get("securityGroups"))
    if groups_before != groups_after and not (groups_before and groups_after):
        forced.add("securityGroups")
    return Verdict(force_new=frozenset(forced))


def ecs_service_strategy_ranges(old: dict, new: dict) -> Verdict:
    # The schema's ValidateFunc: base IntBetween(0, 100000), weight IntBetween(0, 1000).
    bad = [i for i in reveal(new.get("capacityProviderStrategies")) or []
           if not (0 <= i.get("base", 0) <= 100000 and 0 <= i.get("weight", 0) <= 1000)]  # fmt: skip
    return Verdict(f"capacity_provider_strategy out of range (base 0-100000, weight 0-1000): {bad}") if bad else Verdict()


PLAN_CHECKS: tuple[PlanCheck, ...] = (
    PlanCheck("aws:ecs/service:Service", "internal/service/ecs/service.go, capacityProviderStrategyCustomizeDiff",
              ecs_service_capacity_strategy),
    PlanCheck("aws:ecs/service:Service", "internal/service/ecs/service.go, capacity_provider_strategy schema (ValidateFunc)",
              ecs_service_strategy_ranges, existing_only=False),
    PlanCheck("aws:lb/loadBalancer:LoadBalancer", "internal/service/elbv2/load_balancer.go, customizeDiffLoadBalancerALB",
              alb_subnets_and_security_groups),
)  # fmt: skip

# Type -> inputs the program sets that are Optional and Computed in the provider's schema (a removed one keeps
# its value in the state: no diff). internal/service/ecs/service.go: launch_type, cluster, platform_version,
# iam_role.
OPTIONAL_COMPUTED: dict[str, frozenset[str]] = {
    "aws:ecs/service:Service": frozenset({"launchType", "cluster", "platformVersion", "iamRole"}),
}


def verdicts(typ: str, old: dict[str, Any] | None, new: dict[str, Any]) -> list[tuple[PlanCheck, Verdict]]:
    """What the provider's plan-time checks say about a resource of ``typ`` going from ``old`` (None: it is new)
    to ``new``."""
    return [(c, c.run(old or {}, new)) for c in PLAN_CHECKS if c.typ == typ and (old is not None or not c.existing_only)]
