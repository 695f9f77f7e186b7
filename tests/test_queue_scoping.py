"""Steps and their queues, checked where it matters: the run worker's executor refuses a step for a queue the
deployment lacks and an asset routed by asset tags before it sends anything; a queue-scoped variable is a
placeholder where it is not granted, which config resolution accepts and a step that uses it is refused for,
naming the variable and the queues that hold it (dagster_celery_aws.queues, scoped_env; infra/specs/topology.py)."""

from __future__ import annotations

import pytest
from dagster import ConfigurableResource, Definitions, EnvVar, asset
from dagster._core.execution.api import create_execution_plan
from dagster._core.system_config.objects import ResolvedRunConfig
from dagster_celery_aws import celery_executor, scoped_env
from dagster_celery_aws.executor import QueueRoutingError, check_routing

from infra.specs import topology
from infra.stackfile.config import StackConfig

QUEUE = "dagster-celery/queue"


class Model(ConfigurableResource):
    token: str


@asset(op_tags={QUEUE: "ml"})
def trained(model: Model) -> int:
    return len(model.token)


@asset(op_tags={QUEUE: "dagster"})
def report(model: Model, trained: int) -> int:  # uses the ml-only resource on the dagster queue
    return trained


@asset(op_tags={QUEUE: "dagster"})
def cheap() -> int:
    return 1


@asset(tags={QUEUE: "ml"})
def mistagged() -> int:
    return 1


@pytest.fixture(autouse=True)
def celery_env(monkeypatch):  # what the deployment's executor config reads
    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "amqp://broker//")
    monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", "db+postgresql+psycopg2://u@db/d")


def _defs(*assets):
    return Definitions(assets=list(assets), resources={"model": Model(token=EnvVar("ML_TOKEN"))}, executor=celery_executor)


def _plan(job_def):
    class Context:  # what check_routing reads of the run worker's plan context
        class job:  # noqa: N801
            get_definition = staticmethod(lambda: job_def)

    return Context, create_execution_plan(job_def)


def test_a_step_for_a_queue_the_deployment_lacks_fails_the_run_before_any_step_is_sent(monkeypatch):
    monkeypatch.setenv("ML_TOKEN", "x")
    job_def = _defs(trained, cheap).resolve_implicit_global_asset_job_def()
    context, plan = _plan(job_def)
    check_routing(context, plan, "dagster", frozenset({"dagster", "ml"}))  # every queue served: nothing raised
    check_routing(context, plan, "dagster", None)  # no stack (dagster dev): not checked
    with pytest.raises(QueueRoutingError) as err:
        check_routing(context, plan, "dagster", frozenset({"dagster"}))
    assert f"job {job_def.name!r} sends step 'trained' -> queue 'ml', but the stack has no such queue" in str(err.value)
    assert "its queues: dagster" in str(err.value)


def test_an_asset_routed_by_asset_tags_is_refused_with_the_op_tags_to_write(monkeypatch):
    job_def = _defs(mistagged).resolve_implicit_global_asset_job_def()
    context, plan = _plan(job_def)
    with pytest.raises(QueueRoutingError) as err:
        check_routing(context, plan, "dagster", frozenset({"dagster", "ml"}))
    assert "asset 'mistagged' has tags={'dagster-celery/queue': 'ml'}" in str(err.value)
    assert "the step would go to queue 'dagster'" in str(err.value)
    assert "@asset(op_tags={'dagster-celery/queue': 'ml'})" in str(err.value)


def test_placeholders_go_to_every_process_but_the_granted_queues_workers():
    cfg = StackConfig.model_validate({"queues": [
        {"name": "dagster"},
        {"name": "ml", "access": {"environment": {"ML_HOST": "h"}, "secrets": {"ML_TOKEN": "arn:aws:ssm:eu-west-1:123456789012:parameter/t"}}},
        {"name": "gpu", "access": {"environment": {"ML_HOST": "g"}}},
    ]})  # fmt: skip
    assert topology.scoped_placeholders(cfg) == {
        "ML_HOST": "[not granted here: ML_HOST is for queue(s) gpu,ml only]",
        "ML_TOKEN": "[not granted here: ML_TOKEN is for queue(s) ml only]",
    }
    assert topology.scoped_placeholders(cfg, "dagster") == topology.scoped_placeholders(cfg)
    assert topology.scoped_placeholders(cfg, "ml") == {}
    assert topology.scoped_placeholders(cfg, "gpu") == {"ML_TOKEN": "[not granted here: ML_TOKEN is for queue(s) ml only]"}
    assert scoped_env.parse(topology.scoped_placeholders(cfg)["ML_HOST"]) == ("ML_HOST", ("gpu", "ml"))


def _problems(monkeypatch, value: str, step_key: str, queue: str):
    monkeypatch.setenv("ML_TOKEN", value)
    job_def = _defs(trained, report).resolve_implicit_global_asset_job_def()
    resolved = ResolvedRunConfig.build(job_def, {})  # a placeholder resolves as any string does
    plan = create_execution_plan(job_def)
    return scoped_env.step_problems(job_def, plan.get_step_by_key(step_key), resolved, plan, queue)


def test_a_step_using_a_value_its_queue_was_not_granted_is_refused_naming_variable_and_queues(monkeypatch):
    placeholder = scoped_env.placeholder("ML_TOKEN", ["ml"])
    (problem,) = _problems(monkeypatch, placeholder, "report", "dagster")
    assert problem == (
        "step 'report' runs on queue 'dagster' and uses resource 'model' (config token), which reads ML_TOKEN: the "
        "stack grants ML_TOKEN only to queue(s) ml (queues[].access). Send the step there "
        "(op_tags={'dagster-celery/queue': 'ml'}) or grant ML_TOKEN to queue 'dagster' as well"
    )
    # The granted queue's worker has the value: nothing to refuse.
    assert _problems(monkeypatch, "s3cr3t", "trained", "ml") == []
    # Granted, but the value did not reach the worker (locally: not set in the runner's shell).
    (unset,) = _problems(monkeypatch, placeholder, "trained", "ml")
    assert "grants ML_TOKEN to queue 'ml', but this worker did not get its value" in unset
