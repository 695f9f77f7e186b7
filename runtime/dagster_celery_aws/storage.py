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

The event log storage also writes each event in one round trip instead of two, and can hold events back to
write them together (``EventLogStorage``).
"""

from __future__ import annotations

import functools
import logging
import os
import select
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager

import sqlalchemy as db
import sqlalchemy.exc
from dagster import Field, IntSource
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log import SqlEventLogStorageTable
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.event_log.event_log import CHANNEL_NAME
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


@functools.lru_cache(maxsize=64)
def _insert_statement(count: int, columns: tuple[str, ...]):
    """``count`` event rows inserted, each row's id selected and notified (``EventLogStorage._insert``), with a
    bound parameter ``row<n>_<column>`` per value. Textual SQL, one per row count: SQLAlchemy compiles it once.
    The same statement built as an expression (a multi-row insert in a CTE) has no cache key, and was compiled
    again for every event: ~3 ms of CPU each (benchmarks/profile_step.py)."""
    values = ", ".join("(" + ", ".join(f":row{i}_{c}" for c in columns) + ")" for i in range(count))
    return db.text(
        f"WITH inserted AS (INSERT INTO {SqlEventLogStorageTable.name} ({', '.join(columns)}) VALUES {values} "
        f"RETURNING run_id, id) "
        f"SELECT id, pg_notify('{CHANNEL_NAME}', run_id || '_' || CAST(id AS TEXT)) FROM inserted ORDER BY id"
    )


class EventLogStorage(_RidesThroughOutages, PostgresEventLogStorage):
    """dagster-postgres's event log storage; ``store_event`` in one round trip, and ``holding``.

    dagster-postgres's ``store_event`` (dagster_postgres/event_log/event_log.py) runs ``INSERT ... RETURNING``
    and then ``NOTIFY run_events, '<run id>_<event id>'`` (kept "to support version skew": no process of Dagster
    1.13 LISTENs on it, its event watcher polls): two sequential round trips per event on an AUTOCOMMIT
    connection. Here both are one statement, a data-modifying CTE whose rows are notified with ``pg_notify``:
    the same row, the same notification, sent when that statement commits. An asset or asset check event then
    writes the asset tables as dagster-postgres does (an ``@asset``'s materialization: BEGIN, its data version
    tag, the asset's row, COMMIT), except that whether the tags table exists is asked once (``has_table``).

    ``holding(rule)`` lets the calling thread write several events in that one statement (a Celery step's,
    dagster_celery_aws.fast_task)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._held = threading.local()  # .events (list), .rule, .pid: this thread's hold, while in holding()
        self._tables_found: set[str] = set()

    @contextmanager
    def holding(self, rule: Callable[[EventLogEntry], bool]):
        """While in this block, an event this thread stores for which ``rule(event)`` is true is held back,
        not written; the next event written (one the rule does not hold) is written in one statement after
        the held ones, in the order they were stored, and so are those still held when the block ends (also
        when it raises). An asset or asset check event is never held. Another thread, or a process forked
        meanwhile, writes as usual: nothing held here is written, or lost, there."""
        if self._hold() is not None:
            raise DagsterInvariantViolationError("EventLogStorage.holding is not re-entrant")
        self._held.events, self._held.rule, self._held.pid = [], rule, os.getpid()
        try:
            yield
        finally:
            try:
                self.write_held()
            finally:
                self._held.events = None

    def write_held(self) -> None:
        """Write the events this thread holds now, in one statement (nothing if it holds none)."""
        held = self._hold()
        if held:
            events = list(held)
            held.clear()  # before the write: a statement cut mid-way may have committed, so it is not repeated
            self._insert(events)

    def _hold(self) -> list[EventLogEntry] | None:
        """This thread's held events, if it is in ``holding`` (in this process)."""
        events = getattr(self._held, "events", None)
        return events if events is not None and self._held.pid == os.getpid() else None

    def store_event(self, event: EventLogEntry) -> None:
        # The asset tables are written as dagster_postgres/event_log/event_log.py ``store_event`` writes them.
        asset = event.dagster_event_type in ASSET_EVENTS and bool(event.get_dagster_event().asset_key)
        asset_check = event.dagster_event_type in ASSET_CHECK_EVENTS
        held = self._hold()
        if held is not None and not (asset or asset_check) and self._held.rule(event):
            held.append(event)
            return
        pending = [*held, event] if held else [event]
        if held:
            held.clear()  # before the write: a statement cut mid-way may have committed, so it is not repeated
        event_id = self._insert(pending)[-1]
        if asset:
            with self.index_transaction() as conn:
                self._store_asset_event_tags(conn, [event], [event_id])
                self._store_asset_event(conn, event, event_id)
        if asset_check:
            self.store_asset_check_event(event, event_id)

    def _insert(self, events: Sequence[EventLogEntry]) -> list[int]:
        """Insert the events (one statement, one transaction) and notify each as dagster-postgres does; their
        ids, in order. The rows are Dagster's (``_event_to_row``, what ``prepare_insert_event_batch`` inserts)."""
        rows = [self._event_to_row(event) for event in events]
        columns = tuple(rows[0])
        params = {f"row{i}_{c}": row[c] for i, row in enumerate(rows) for c in columns}
        with self._connect() as conn:
            return [row[0] for row in conn.execute(_insert_statement(len(rows), columns), params)]

    def has_table(self, table_name: str) -> bool:
        """dagster-postgres's, remembering a table found: storing an asset event with an indexed tag (every
        ``@asset`` output has its data version) asks for the asset tags table each time, on a connection of its
        own (dagster/_core/storage/event_log/sql_event_log.py ``_store_asset_event_tags``). A table missing is
        asked again: a migration may create it."""
        if table_name not in self._tables_found and super().has_table(table_name):
            self._tables_found.add(table_name)
        return table_name in self._tables_found

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
