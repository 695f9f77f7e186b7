"""Fargate Spot per service: the capacity mix in stack config, the strategy ECS gets, what the plan charges."""

import pytest

from infra.aws.components.service import capacity_strategy
from infra.stackfile.config import Capacity, ConfigError, parse
from infra.tools.plan import load_prices, plan
from infra.tools.testing import run_stack

SERVICE = "aws:ecs/service:Service"
PRICES = load_prices()


@pytest.mark.parametrize(
    ("capacity", "expected"),
    [
        (Capacity(spot_percent=100), [{"capacity_provider": "FARGATE_SPOT", "weight": 100}]),
        (Capacity(spot_percent=75), [{"capacity_provider": "FARGATE", "weight": 25},
                                     {"capacity_provider": "FARGATE_SPOT", "weight": 75}]),
        # The base is placed first, on on-demand; the rest by weight (all on Spot here).
        (Capacity(on_demand_base=1, spot_percent=100), [{"capacity_provider": "FARGATE", "weight": 0, "base": 1},
                                                        {"capacity_provider": "FARGATE_SPOT", "weight": 100}]),
    ],
)  # fmt: skip
def test_the_mix_becomes_a_capacity_provider_strategy(capacity, expected):
    assert capacity_strategy(capacity) == expected


@pytest.mark.parametrize(("capacity", "count", "on_demand"), [
    (Capacity(), 4, 4), (Capacity(spot_percent=100), 4, 0), (Capacity(on_demand_base=1, spot_percent=100), 4, 1),
    (Capacity(on_demand_base=2, spot_percent=50), 6, 4), (Capacity(on_demand_base=3, spot_percent=100), 2, 2),
])  # fmt: skip
def test_on_demand_tasks_follow_base_then_weight(capacity, count, on_demand):
    assert capacity.on_demand_tasks(count) == on_demand


def test_a_base_without_spot_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"queues\[0\]\.capacity: onDemandBase 1 is only used with spotPercent"):
        parse({"queues": [{"name": "dagster", "capacity": {"onDemandBase": 1}}]})


def test_a_spot_queue_uses_the_strategy_and_rolls_onto_a_changed_mix():
    stack = run_stack(config={"queues": [
        {"name": "dagster"}, {"name": "etl", "capacity": {"onDemandBase": 1, "spotPercent": 80}}]})  # fmt: skip
    services = {s.inputs["name"]: s for s in stack.of_type(SERVICE)}
    etl, dagster = services["worker-etl"], services["worker-dagster"]
    assert etl.inputs["capacityProviderStrategies"] == [
        {"capacityProvider": "FARGATE", "weight": 20, "base": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 80}]
    assert "launchType" not in etl.inputs and etl.inputs["forceNewDeployment"] is True
    # A queue without Spot keeps the launch type: moving a service between the two replaces it, so the default
    # never touches a deployed service.
    assert dagster.inputs["launchType"] == "FARGATE" and "capacityProviderStrategies" not in dagster.inputs
    assert all(s.options.delete_before_replace for s in services.values())  # fixed names: delete, then create
    (providers,) = stack.of_type("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")
    assert providers.inputs["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    # Services start only once the cluster has the providers their strategy names.
    assert providers.urn in etl.options.dependencies


def test_the_plan_charges_spot_at_spot_prices_and_says_what_it_saves():
    cfg = parse({"queues": [{"name": "dagster", "minWorkers": 1, "maxWorkers": 5, "cpu": 1024, "memory": 2048,
                             "capacity": {"onDemandBase": 1, "spotPercent": 100}}],
                 "network": {"natGateways": 1}})  # fmt: skip
    line = next(x for x in plan(cfg, PRICES) if x.component == "worker-dagster")
    hours, od, spot = PRICES["hours_per_month"], PRICES["prices"]["fargate"]["X86_64"], PRICES["prices"]["fargate_spot"]["X86_64"]
    task = (od["vcpu_hour"] + 2 * od["gb_hour"]) * hours
    spot_task = (spot["vcpu_hour"] + 2 * spot["gb_hour"]) * hours
    assert line.min_monthly == pytest.approx(task)  # the base task is on-demand
    assert line.max_monthly == pytest.approx(task + 4 * spot_task)
    assert f"Spot saves {4 * (task - spot_task):,.2f} at max" in line.detail
