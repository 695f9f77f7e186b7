"""A notice from the workers that a step's result is stored, so the run worker does not wait for its next poll.

dagster-celery's loop (dagster_celery.core_execution_loop) learns that a step ended only by polling its
result, with ``time.sleep(TICK_SECONDS)`` between polls: each step that waits for another one starts on
average half a poll interval late, and the run ends half a poll interval after its last step (a chain of 10
had a step-to-step gap of ~90 ms at a 0.1 s poll; benchmarks/README.md). Polling faster costs a query per
poll and per run worker.

With results in PostgreSQL (celery_config.yaml) the database can carry the notice: the workers' result backend
(``NotifyingDatabaseBackend``: Celery's, which the workers' settings name in place of ``db``) sends
``pg_notify(<run's channel>, <task id>)`` in the very statement that stores a step's result (a success or a
failure; one statement in autocommit, one round trip), and PostgreSQL delivers it when that statement commits,
never before and never if it fails.
The run worker LISTENs on its run's channel (``ResultNotices``) and its loop's sleep between polls
(``waiting_for_notices``) ends as soon as a notice arrives; the task ids it names are known finished, so the
batched backend (dagster_celery_aws.executor) reads them without asking first.

The notice only shortens a wait. Nothing depends on it arriving: the loop still polls every
``TICK_SECONDS`` (a notice is lost when the run worker's connection drops, and then the listener reconnects),
the result is still read from the result backend, and acknowledgement and redelivery of the step's message
are unchanged (the notice goes out with the result's commit, before the message is acknowledged; a worker that
dies before the commit leaves the message to be redelivered as before). ``pg_notify`` fails only when
PostgreSQL's notification queue is full, and Dagster's own event writes, each of which sends a NOTIFY, would
fail with it.
"""

from __future__ import annotations

import contextlib
import logging
import select
import threading
import time

from celery import states
from celery.backends.database import DatabaseBackend, session_cleanup
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from dagster_celery_aws.storage import check_on_checkout

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "dca_results_"
RECONNECT_SECONDS = 1.0  # after a lost or refused listening connection, the next attempt is this much later


def channel(run_id: str) -> str:
    """The run's PostgreSQL notification channel: lower-case letters, digits and ``_`` only (a plain
    identifier for LISTEN), 44 characters for a UUID run id (PostgreSQL's limit is 63)."""
    return CHANNEL_PREFIX + "".join(c for c in run_id.lower() if c.isalnum() or c == "_")[:48]


def _postgres_url(backend_url: str | None) -> str | None:
    """The SQLAlchemy URL of a PostgreSQL result backend URL (``db+postgresql...``, or with a backend class
    ``module:Class`` in place of ``db``), else None."""
    scheme, sep, rest = (backend_url or "").partition("://")
    parts = scheme.split("+")
    if parts[0] == "db" or ":" in parts[0]:
        parts = parts[1:]
    if not sep or not parts or parts[0] != "postgresql":
        return None
    return "+".join(parts) + "://" + rest


def with_backend_class(url: str | None, backend_class: type) -> str | None:
    """A ``db+...`` result backend URL (Celery's database backend) read by ``backend_class`` instead (a subclass
    of Celery's); any other URL as it is. Celery takes the part of a backend URL before ``+`` as a backend name
    or class path (celery/app/backends.py ``by_url``)."""
    if not (url or "").startswith("db+"):
        return url
    return f"{backend_class.__module__}:{backend_class.__qualname__}+{url[len('db+'):]}"


class CheckedPoolDatabaseBackend(DatabaseBackend):
    """Celery's database result backend whose pooled connections are checked as the deployment's Dagster
    storage checks its own (``storage.check_on_checkout``: only a connection with something to read, i.e. one
    the server closed, is pinged), not with Celery's default ``pool_pre_ping`` (``database_engine_options``,
    celery/app/defaults.py), a ``SELECT 1`` round trip before every store and every read. A dead connection is
    still replaced before use, and a statement that fails on one is retried on a new engine (Celery's
    ``on_backend_retryable_error``). On PostgreSQL; other databases keep Celery's ping."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if sa.make_url(self.url).get_backend_name() != "postgresql":
            return  # the check polls the connection's socket (psycopg2's fileno)
        self.engine_options["pool_pre_ping"] = False
        callback = self.session_manager.engine_callback  # Celery's database_engine_callback, if any

        def on_new_engine(engine) -> None:
            sa.event.listen(engine, "checkout", check_on_checkout)
            if callback is not None:
                callback(engine)

        self.session_manager.engine_callback = on_new_engine


class NotifyingDatabaseBackend(CheckedPoolDatabaseBackend):
    """The workers' result backend: Celery's, which on PostgreSQL stores a finished ``execute_plan`` task (one
    whose request names its run: ``dca_run_id``, set by dagster_celery_aws.fast_task) and notifies the run's
    channel in one statement, i.e. one round trip.

    Celery's ``_store_result`` (celery/backends/database/__init__.py) is a transaction of six round trips:
    BEGIN, a SELECT of the row (and a SELECT ... FOR UPDATE of an existing one), the INSERT (its id's
    sequence is rendered inline, ``nextval``: no round trip of its own), an UPDATE of the columns, a second
    UPDATE of ``status`` (``flag_modified``), COMMIT; plus the ``pg_notify`` and the pool's ping. Here it is
    ``WITH stored AS (INSERT ... ON CONFLICT (task_id) DO UPDATE ... WHERE status IS DISTINCT FROM 'SUCCESS'
    RETURNING task_id) SELECT pg_notify(channel, task_id) FROM stored`` in autocommit: the row's values are the
    ones Celery's ``_update_result`` sets (the same encoding, read back by the stock backend), a row already
    SUCCESS is left as it is and notifies nothing (Celery ignores a write after a SUCCESS), and the notice is
    delivered when the statement commits, never if it fails. The base backend's ``store_result`` still retries
    it (``result_backend_always_retry``). Other states, tasks without a run and other databases are stored by
    Celery's code, without a notice."""

    def _store_result(self, task_id, result, state, traceback=None, request=None, **kwargs):
        run_id = getattr(request, "dca_run_id", None)
        session = self.ResultSession()
        with session_cleanup(session):
            engine = session.get_bind()
        if run_id is None or state not in states.READY_STATES or engine.dialect.name != "postgresql":
            return super()._store_result(task_id, result, state, traceback=traceback, request=request, **kwargs)
        task = self.task_cls(task_id)
        self._update_result(task, result, state, traceback=traceback, request=request)
        table = self.task_cls.__table__
        # the model's columns, as Celery's flush writes them (TaskExtended adds its columns to the shared table)
        values = {key: getattr(task, key) for key in sa.inspect(self.task_cls).columns.keys() if key != "id"}
        insert = postgresql.insert(table).values(id=table.c.id.default.next_value(), **values)
        # Celery keeps a row's stamps when a store brings none (_update_result leaves them as they are)
        kept = {"task_id"} | ({"stamps"} if values.get("stamps") is None else set())
        stored = (
            insert.on_conflict_do_update(
                index_elements=[table.c.task_id],
                set_={name: insert.excluded[name] for name in values if name not in kept},
                where=table.c.status.is_distinct_from(states.SUCCESS),
            )
            .returning(table.c.task_id)
            .cte("stored")
        )
        with engine.connect() as conn:
            # psycopg2's autocommit is a switch in the client (the statement goes without BEGIN and COMMIT). Not
            # SQLAlchemy's isolation_level option: putting the connection back, it sets an explicit READ COMMITTED,
            # which psycopg2 sends as a SET (a round trip) once the connection has been in autocommit.
            dbapi = conn.connection.dbapi_connection
            dbapi.autocommit = True
            try:
                conn.execute(sa.select(sa.func.pg_notify(channel(run_id), stored.c.task_id)))
            finally:
                if not dbapi.closed:
                    dbapi.autocommit = False


class ResultNotices:
    """Run worker side: a PostgreSQL connection that LISTENs on one run's channel. ``wait(seconds)`` returns
    the task ids notified since the last call, as soon as there is one, or an empty set after ``seconds``.
    Without a connection (refused, dropped) it sleeps ``seconds``, and tries to connect again at most every
    ``RECONNECT_SECONDS``."""

    def __init__(self, backend_url: str | None, run_id: str):
        self.url = _postgres_url(backend_url)
        self.channel = channel(run_id)
        self._conn = None
        self._next_attempt = 0.0

    @property
    def enabled(self) -> bool:
        return self.url is not None

    def _connect(self):
        import psycopg2
        from sqlalchemy.engine import make_url

        u = make_url(self.url)
        params = {"host": u.host, "port": u.port, "user": u.username, "password": u.password, "dbname": u.database}
        conn = psycopg2.connect(**{k: v for k, v in params.items() if v is not None}, **dict(u.query))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"LISTEN {self.channel}")
        return conn

    def _connection(self):
        if self._conn is None and self.enabled and time.monotonic() >= self._next_attempt:
            try:
                self._conn = self._connect()
            except Exception as err:  # noqa: BLE001 - e.g. the database restarting: poll meanwhile
                self._next_attempt = time.monotonic() + RECONNECT_SECONDS
                log.debug("result notices: cannot listen (%s: %s)", type(err).__name__, err)
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._next_attempt = time.monotonic() + RECONNECT_SECONDS
        with contextlib.suppress(Exception):
            conn.close()

    def listen(self) -> bool:
        """Connect and LISTEN now (before the first step is sent, so that no notice is missed); True if listening."""
        return self._connection() is not None

    def wait(self, seconds: float) -> set[str]:
        conn = self._connection()
        if conn is None:
            time.sleep(seconds)
            return set()
        try:
            if not conn.notifies:
                select.select([conn], [], [], seconds)
            conn.poll()
            ids = {n.payload for n in conn.notifies}
            conn.notifies.clear()
            return ids
        except Exception as err:  # noqa: BLE001 - connection lost: the caller polls anyway
            log.debug("result notices: connection lost (%s: %s)", type(err).__name__, err)
            self._drop()
            return set()

    def close(self) -> None:
        if self._conn is not None:
            self._drop()


class _LoopClock:
    """Stands in for the ``time`` module in dagster-celery's loop module, whose only use of it is
    ``time.sleep(TICK_SECONDS)`` between polls: in a thread inside ``waiting_for_notices`` that sleep is a
    wait for result notices; anywhere else it is ``time.sleep``."""

    def __init__(self):
        self._local = threading.local()

    def sleep(self, seconds: float) -> None:
        waiter = getattr(self._local, "waiter", None)
        if waiter is None:
            time.sleep(seconds)
        else:
            waiter(seconds)

    def __getattr__(self, name):
        return getattr(time, name)


_clock = _LoopClock()


def install_loop_clock() -> None:
    import dagster_celery.core_execution_loop as loop

    loop.time = _clock


@contextlib.contextmanager
def waiting_for_notices(waiter):
    """In this block, and in this thread, dagster-celery's loop sleeps between polls with ``waiter(seconds)``."""
    install_loop_clock()
    previous = getattr(_clock._local, "waiter", None)
    _clock._local.waiter = waiter
    try:
        yield
    finally:
        _clock._local.waiter = previous
