"""A notice from the workers that a step's result is stored, so the run worker does not wait for its next poll.

dagster-celery's loop (dagster_celery.core_execution_loop) learns that a step ended only by polling its
result, with ``time.sleep(TICK_SECONDS)`` between polls: each step that waits for another one starts on
average half a poll interval late, and the run ends half a poll interval after its last step (a chain of 10
had a step-to-step gap of ~90 ms at a 0.1 s poll; benchmarks/README.md). Polling faster costs a query per
poll and per run worker.

With results in PostgreSQL (celery_config.yaml) the database can carry the notice: when the workers'
``execute_plan`` task has stored its result (Celery's ``after_return``, called after the result is committed,
for a success and for a failure), it sends ``pg_notify(<run's channel>, <task id>)`` on the result backend's
own connection (``notify_stored``). The run worker LISTENs on its run's channel (``ResultNotices``) and its
loop's sleep between polls (``waiting_for_notices``) ends as soon as a notice arrives; the task ids it names
are known finished, so the batched backend (dagster_celery_aws.executor) reads them without asking first.

The notice only shortens a wait. Nothing depends on it arriving: the loop still polls every
``TICK_SECONDS`` (a notice is lost when the run worker's connection drops, and then the listener reconnects),
the result is still read from the result backend, and acknowledgement and redelivery of the step's message
are unchanged (the notice is sent after the result is stored, before the message is acknowledged; a worker
that dies before sending it leaves the message to be redelivered as before).
"""

from __future__ import annotations

import contextlib
import logging
import select
import threading
import time

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


def notify_stored(backend, run_id: str, task_id: str) -> bool:
    """Worker side: tell the run's run worker that ``task_id``'s result is stored. False (nothing sent) unless
    the result backend is Celery's database backend on PostgreSQL; a failure is logged, never raised (the run
    worker's poll finds the result anyway)."""
    from celery.backends.database import DatabaseBackend, session_cleanup
    from sqlalchemy import text

    if not isinstance(backend, DatabaseBackend) or not str(backend.url).startswith("postgresql"):
        return False
    try:
        session = backend.ResultSession()
        with session_cleanup(session):
            session.execute(text("SELECT pg_notify(:channel, :task_id)"), {"channel": channel(run_id), "task_id": task_id})
            session.commit()
        return True
    except Exception as err:  # noqa: BLE001 - the notice is an optimisation: the poll still finds the result
        log.warning("result notice for task %s not sent (%s: %s); the run worker's poll will find it", task_id,
                    type(err).__name__, err)  # fmt: skip
        return False


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
