"""Dagster's storage calls wait out a database outage (dagster_celery_aws.storage, the one dagster.yaml's
``storage: custom:``): every connection to PostgreSQL cut and new ones refused (tests/fault_proxy.py), as in a
restart or an RDS Multi-AZ failover, on an instance of its own database (127.0.0.1:5432).

- A run written, an event stored and read, the schedule storage read while the database is away longer than
  dagster-postgres's own retries (~6 s) succeed once it is back, with NullPool engines (the daemon, code
  servers) and with pooled ones (the webserver's ``optimize_for_webserver``; the run worker and the workers').
- Right after the database restarted, a pooled engine's first call succeeds: its pooled connection, closed by
  the database, is replaced (issue 26 item 7: the webserver's first request after a failover failed).
"""

from __future__ import annotations

import threading
import uuid

import pytest
import yaml
from dagster import DagsterInstance, DagsterRun
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData
from dagster._core.events.log import EventLogEntry

from dagster_celery_aws.storage import EventLogStorage, RunStorage, ScheduleStorage
from tests.conftest import postgres_database
from tests.fault_proxy import FaultProxy

# Longer than dagster-postgres's own retries: 5, after 0.2, 0.6, 1.4, 3.0, 6.2 s (+-0.2 s each), ~11.4 s in all.
OUTAGE_SECONDS = 14.0


@pytest.fixture
def instance(tmp_path):
    """(instance on PostgresStorage through a fault proxy to a database of its own, the proxy)."""
    with postgres_database("dca_storage") as db:
        proxy = FaultProxy(5432)
        storage = {"custom": {"module": "dagster_celery_aws.storage", "class": "PostgresStorage",
                              "config": {"postgres_url": f"postgresql+psycopg2://postgres@127.0.0.1:{proxy.port}/{db}"}}}
        (tmp_path / "dagster.yaml").write_text(yaml.safe_dump({"storage": storage, "telemetry": {"enabled": False}}))
        inst = DagsterInstance.from_config(str(tmp_path))
        try:
            yield inst, proxy, str(tmp_path)
        finally:
            inst.dispose()
            proxy.close()


def _event(run_id: str, message: str) -> EventLogEntry:
    return EventLogEntry(error_info=None, level="INFO", user_message=message, run_id=run_id, timestamp=0.0,
                         dagster_event=DagsterEvent(DagsterEventType.ENGINE_EVENT.value, "job", message=message,
                                                    event_specific_data=EngineEventData()))  # fmt: skip


def _calls(inst: DagsterInstance, run_id: str) -> dict[str, object]:
    """One call of each kind a process makes, run during the outage; returns each call's result or error."""
    results: dict[str, object] = {}

    def call(name, fn):
        try:
            results[name] = fn()
        except Exception as err:  # noqa: BLE001 - reported by the test
            results[name] = err

    calls = {
        "add run": lambda: inst.add_run(DagsterRun(job_name="job", run_id=run_id)).run_id,
        "store event": lambda: inst.event_log_storage.store_event(_event(run_id, "during the outage")),
        "read schedules": lambda: inst.all_instigator_state(),
    }
    threads = [threading.Thread(target=call, args=item) for item in calls.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_storage_calls_wait_out_a_database_outage(instance):
    """Both kinds of engine in one outage: ``nullpool`` (the daemon's, code servers') and ``pooled``."""
    nullpool, proxy, home = instance
    pooled = DagsterInstance.from_config(home)
    pooled.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=20)
    instances = {"nullpool": nullpool, "pooled": pooled}
    for inst in instances.values():
        assert isinstance(inst.run_storage, RunStorage) and isinstance(inst.event_log_storage, EventLogStorage)
        assert isinstance(inst.schedule_storage, ScheduleStorage)  # the dagster.yaml form reaches every storage
        inst.add_run(DagsterRun(job_name="job", run_id=str(uuid.uuid4())))  # a pooled connection open
    run_ids = {name: str(uuid.uuid4()) for name in instances}
    results = {}
    proxy.cut()
    back = threading.Timer(OUTAGE_SECONDS, proxy.restore)  # the outage's length, not a synchronisation
    back.start()
    during = [threading.Thread(target=lambda n: results.update({n: _calls(instances[n], run_ids[n])}), args=(n,))
              for n in instances]  # fmt: skip
    for t in during:
        t.start()
    for t in during:
        t.join()
    back.join()
    try:
        assert set(results) == set(instances)
        failed = [f"{n} {k}: {v!r}" for n, r in results.items() for k, v in r.items() if isinstance(v, Exception)]
        assert not failed
        for name, run_id in run_ids.items():
            assert nullpool.get_run_by_id(run_id) is not None, name
            assert [e.user_message for e in nullpool.all_logs(run_id)] == ["during the outage"], name
    finally:
        pooled.dispose()


def test_a_pooled_connection_the_database_closed_is_replaced(instance):
    inst, proxy, _ = instance
    inst.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=20)
    run_id = str(uuid.uuid4())
    inst.add_run(DagsterRun(job_name="job", run_id=run_id))  # each storage's pooled connection open
    inst.all_instigator_state()
    inst.all_logs(run_id)
    proxy.cut()  # what a restart does to open connections ...
    proxy.restore()  # ... and the database is back
    assert inst.get_run_by_id(run_id).run_id == run_id
    assert inst.all_logs(run_id) == []
    assert inst.all_instigator_state() == []
