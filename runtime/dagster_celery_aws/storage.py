"""Dagster's PostgreSQL storage (dagster-postgres), riding through a database outage of up to a bound.

A restart of the database, an RDS Multi-AZ failover or a maintenance reboot resets every connection and refuses
new ones for a while (docs/reliability.md, "Outage bounds"). dagster-postgres retries a refused connection 5
times with exponential backoff from 0.2 s (``retry_pg_connection_fn``: about 11 s in all), then the storage call
raises: an event write fails the step or the run that writes it, a daemon tick errors, a UI request fails.
And a process that pools its connections (the webserver, through ``optimize_for_webserver``; the run worker
and the Celery workers, ``fast_task.pool_connections``) took a pooled connection that the database had closed
and failed the first call after the outage (dagster-webserver pools without a check).

``PostgresStorage`` is dagster-postgres's ``DagsterPostgresStorage`` (same config, same tables, same engines),
named in the deployment's one ``dagster.yaml`` as ``storage: custom:``, so every process that loads the
instance -- webserver, daemon, code servers, run workers, Celery workers (which get it through the instance ref
in each message) -- uses it. Its run, event log and schedule storages differ from dagster-postgres's in two
things:
- a connection that cannot be opened is retried (after 0.1, 0.2, 0.4, 0.8 s, then every ``RETRY_SECONDS``)
  until ``outage_seconds`` (config; default ``OUTAGE_SECONDS``, 5 minutes) have passed since the first failure,
  then the call raises the last error. The wait between attempts is capped so that a database back is used
  within a second (dagster-postgres's backoff doubles: its sixth attempt would come 12 s after the fifth);
- a pooled engine checks each connection as it is taken from the pool (``check_on_checkout``), and replaces one
  the database closed.
A statement that was running when the connection was cut still fails (it may have been committed: running it
again could write twice); the outage is then not waited out for that one call.
"""

from __future__ import annotations

import logging
import select
import time
from contextlib import contextmanager

import sqlalchemy.exc
from dagster import Field, IntSource
from dagster._core.storage.base_storage import DagsterStorage
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_config, pg_url_from_config
from sqlalchemy import event

log = logging.getLogger(__name__)

OUTAGE_SECONDS = 300  # docs/reliability.md, "Outage bounds": 2.5 x an RDS Multi-AZ failover's usual upper end
RETRY_SECONDS = 1.0  # the longest wait between two attempts: a database back is used within about this
FIRST_RETRY_SECONDS = 0.1
CONNECT_ERRORS = (sqlalchemy.exc.DBAPIError, sqlalchemy.exc.TimeoutError)  # refused, reset, pool exhausted


def check_on_checkout(dbapi_connection, connection_record, connection_proxy) -> None:
    """SQLAlchemy pool ``checkout`` hook: a dead pooled connection raises DisconnectionError, and the pool
    retries with a fresh one (SQLAlchemy docs, "Dealing with Disconnects").

    A live connection that sits in the pool has nothing to read; one that PostgreSQL closed meanwhile (backend
    terminated, server restarted, idle timeout) has its FATAL message or end-of-file waiting. So only a
    connection with something to read is pinged with ``SELECT 1``: a ping on every checkout was a round trip
    per event write, 15% of the event writes' time in the worker (benchmarks/README.md)."""
    waiting = select.poll()
    waiting.register(dbapi_connection.fileno(), select.POLLIN)  # hang-ups and errors are always reported
    if not waiting.poll(0):
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT 1")
    except Exception as err:  # noqa: BLE001 - any failure means: do not use this connection
        raise sqlalchemy.exc.DisconnectionError() from err
    finally:
        try:
            cursor.close()
        except Exception:  # noqa: BLE001
            pass


def connect_within(engine, outage_seconds: float):
    """``engine.connect()``, retried while the database refuses or drops the attempt, for up to
    ``outage_seconds`` after the first failure; then the last error is raised."""
    deadline, delay, failures = None, FIRST_RETRY_SECONDS, 0
    while True:
        try:
            conn = engine.connect()
        except CONNECT_ERRORS as err:
            now = time.monotonic()
            deadline = deadline if deadline is not None else now + outage_seconds
            if now >= deadline:
                raise
            if failures == 0:
                log.warning("PostgreSQL unreachable (%s); retrying for up to %d s", err, outage_seconds)
            failures += 1
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, RETRY_SECONDS)
            continue
        if failures:
            log.warning("PostgreSQL reachable again after %d failed attempts", failures)
        return conn


class _RidesThroughOutages:
    """What the three storages share: connections opened by ``connect_within``; pooled engines checked."""

    outage_seconds: float = OUTAGE_SECONDS

    @contextmanager
    def _within_outage(self):
        conn = connect_within(self._engine, self.outage_seconds)
        try:
            yield conn
        finally:
            conn.close()

    def optimize_for_webserver(self, statement_timeout: int, pool_recycle: int, max_overflow: int) -> None:
        super().optimize_for_webserver(statement_timeout, pool_recycle, max_overflow)
        event.listen(self._engine, "checkout", check_on_checkout)


class RunStorage(_RidesThroughOutages, PostgresRunStorage):
    def connect(self):
        return self._within_outage()


class EventLogStorage(_RidesThroughOutages, PostgresEventLogStorage):
    def _connect(self):
        return self._within_outage()


class ScheduleStorage(_RidesThroughOutages, PostgresScheduleStorage):
    def connect(self, run_id: str | None = None):
        return self._within_outage()


class PostgresStorage(DagsterPostgresStorage):
    """dagster-postgres's storage whose storages wait out a database outage (module docstring). Config:
    dagster-postgres's (``postgres_db``/``postgres_url``, ``should_autocreate_tables``) and
    ``outage_seconds``."""

    def __init__(self, postgres_url, should_autocreate_tables=True, inst_data=None, token_provider=None,
                 outage_seconds: float = OUTAGE_SECONDS):  # fmt: skip
        # DagsterPostgresStorage.__init__ with these storage classes (its own would connect three more times)
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        storages = [cls(postgres_url, should_autocreate_tables, token_provider=token_provider)
                    for cls in (RunStorage, EventLogStorage, ScheduleStorage)]  # fmt: skip
        for storage in storages:
            storage.outage_seconds = outage_seconds
        self._run_storage, self._event_log_storage, self._schedule_storage = storages
        DagsterStorage.__init__(self)

    @classmethod
    def config_type(cls):
        return {**pg_config(), "outage_seconds": Field(IntSource, is_required=False, default_value=OUTAGE_SECONDS)}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            inst_data=inst_data,
            token_provider=get_token_provider_from_config(config_value),
            outage_seconds=config_value.get("outage_seconds", OUTAGE_SECONDS),
        )
