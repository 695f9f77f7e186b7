"""Retention (stack config ``retention``): the run purge (dagster_celery_aws.retention) on a PostgreSQL database with
old and new runs keeps the new ones and the unfinished ones and removes the old runs with their events, in batches;
the ticks' purge goes to Dagster's own instance ``retention``; compute logs expire in the bucket after as long."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg2
import pytest
from dagster import DagsterRunStatus
from dagster._core.test_utils import create_run_for_test, instance_for_test

from conftest import postgres_database
from dagster_celery_aws.retention import purge
from infra.specs import instance
from infra.stackfile.config import ConfigError, parse


@pytest.fixture
def pg_instance():
    with postgres_database("retention") as db:
        url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db}"
        with instance_for_test(overrides={"storage": {"postgres": {"postgres_url": url}}}) as inst:
            with psycopg2.connect(host="127.0.0.1", user="postgres", dbname=db) as sql:
                yield inst, sql


def run(inst, status: DagsterRunStatus) -> str:
    """A run with ``status`` and an event of its own."""
    dagster_run = create_run_for_test(inst, job_name="history", status=status)
    inst.report_engine_event("something happened", dagster_run)
    return dagster_run.run_id


def events(sql, run_id: str) -> int:
    with sql.cursor() as cur:
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (run_id,))
        return cur.fetchone()[0]


def test_a_purge_keeps_new_and_unfinished_runs_and_removes_old_runs_with_their_events(pg_instance):
    inst, sql = pg_instance
    old = [run(inst, s) for s in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)]
    old_but_running = run(inst, DagsterRunStatus.STARTED)
    new = run(inst, DagsterRunStatus.SUCCESS)
    long_ago = datetime.now(timezone.utc) - timedelta(days=100)
    with sql.cursor() as cur:
        cur.execute("UPDATE runs SET update_timestamp = %s WHERE run_id = ANY(%s)",
                    (long_ago.replace(tzinfo=None), [*old, old_but_running]))  # fmt: skip
    sql.commit()
    assert all(events(sql, r) > 0 for r in [*old, new])

    batches = purge(inst, datetime.now(timezone.utc) - timedelta(days=90), batch=2, pause=0)

    assert batches == [2, 1]  # two batches of at most two runs
    for run_id in old:
        assert inst.get_run_by_id(run_id) is None and events(sql, run_id) == 0, run_id
    assert inst.get_run_by_id(old_but_running).status == DagsterRunStatus.STARTED  # in progress: never deleted
    assert inst.get_run_by_id(new) is not None and events(sql, new) > 0
    assert purge(inst, datetime.now(timezone.utc) - timedelta(days=90), pause=0) == []  # nothing left to delete


def test_tick_retention_is_dagsters_own_with_skipped_sensor_ticks_at_most_a_week():
    from dagster._core.definitions.run_request import InstigatorType
    from dagster._core.scheduler.instigation import TickStatus

    settings = instance.settings(parse({"queues": [{"name": "dagster"}], "retention": {"runDays": 60, "tickDays": 30}}))
    assert settings["run_retention_days"] == 60
    with instance_for_test(overrides={"retention": settings["retention"]}) as inst:
        assert set(inst.get_tick_retention_settings(InstigatorType.SCHEDULE).values()) == {30}
        sensor = inst.get_tick_retention_settings(InstigatorType.SENSOR)
        assert sensor[TickStatus.SKIPPED] == 7 and sensor[TickStatus.FAILURE] == 30


@pytest.mark.parametrize("retention, key", [({"runDays": 0}, "retention.runDays"), ({"tickDays": 3651}, "retention.tickDays"),
                                            ({"days": 5}, "retention.days")])  # fmt: skip
def test_bad_retention_names_the_key(retention, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse({"queues": [{"name": "dagster"}], "retention": retention})
