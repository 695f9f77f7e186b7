"""The Celery settings that docs/reliability.md credits, each shown doing its job on the real services (an own
vhost on RabbitMQ 127.0.0.1:5672, an own database on PostgreSQL 127.0.0.1:5432), with the app configured as
the workers are (``celery_config.celery_settings()`` from the packaged ``celery_config.yaml``)."""

from __future__ import annotations

import threading
import uuid

import pytest
from celery import Celery
from celery.app.task import Context

from dagster_celery_aws.celery_config import celery_settings, executor_config
from tests.conftest import postgres_database
from tests.fault_proxy import FaultProxy

CUT_SECONDS = 3.0
# Longer than kombu's connect timeout (4 s) and its reconnect attempt after it (0, 0, 1, 3, 6 s into the cut),
# past which it stopped reconnecting for a new channel.
PUBLISH_CUT_SECONDS = 8.0
NLB_IDLE_TIMEOUT_SECONDS = 350


@pytest.fixture
def database():
    with postgres_database("dca_settings") as name:
        yield name


def app_for(monkeypatch, vhost: str, backend_port: int, database: str) -> Celery:
    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", f"amqp://guest:guest@127.0.0.1:5672/{vhost}")
    monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", f"db+postgresql+psycopg2://postgres@127.0.0.1:{backend_port}/{database}")
    app = Celery("dca-settings")
    app.conf.update(celery_settings())
    return app


def test_result_writes_wait_out_a_database_outage(monkeypatch, vhost, database):
    """result_backend_always_retry: a result stored while every connection to the database is cut and new
    ones are refused (a restart, a Multi-AZ failover) is stored once the database is back, not lost with an
    error that would fail the step's delivery."""
    proxy = FaultProxy(5432)
    try:
        app = app_for(monkeypatch, vhost, proxy.port, database)
        app.backend.store_result("warm-up", 1, "SUCCESS")  # tables made, a pooled connection open
        task_id = uuid.uuid4().hex
        proxy.cut()
        back = threading.Timer(CUT_SECONDS, proxy.restore)  # the outage's length, not a synchronisation
        back.start()
        # as a worker stores a step's result: one statement (result_notices.NotifyingDatabaseBackend), retried
        app.backend.store_result(task_id, 42, "SUCCESS", request=Context(dca_run_id="run"))
        back.join()
        assert app.AsyncResult(task_id).get(timeout=10) == 42
        app.close()
    finally:
        proxy.close()


def test_a_step_sent_while_the_broker_restarts_is_sent_once_it_is_back(monkeypatch, vhost, database):
    """task_publish_retry_policy and broker_transport_options: the run worker's publish of a step waits out a
    broker restart (every connection cut, new ones refused) and the step reaches its queue once, instead of
    the run failing after about a second of retries (dagster-celery's defaults) -- on the connection it had
    (``pooled``) and on a new one (``fresh``: a run worker whose first step is sent during the outage, or one
    whose pooled connection was dropped), for which kombu stopped reconnecting after its 4 s connect timeout."""
    from kombu import Connection

    proxy = FaultProxy(5672)
    try:
        apps = {}
        for name in ("pooled", "fresh"):
            apps[name] = app_for(monkeypatch, vhost, 5432, database)
            apps[name].conf.broker_url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/{vhost}"
        queue = f"steps-{uuid.uuid4().hex[:8]}"
        apps["pooled"].send_task("warm_up", queue=queue)  # a pooled connection open, the queue declared
        proxy.cut()
        back = threading.Timer(PUBLISH_CUT_SECONDS, proxy.restore)  # the outage's length, not a synchronisation
        back.start()
        errors = []

        def send(name, app):
            try:
                app.send_task(f"during_the_cut_{name}", queue=queue)
            except Exception as err:  # noqa: BLE001 - reported below
                errors.append(f"{name}: {err!r}")

        sending = [threading.Thread(target=send, args=item) for item in apps.items()]
        for thread in sending:
            thread.start()
        for thread in sending:
            thread.join()
        back.join()
        assert not errors
        with Connection(f"amqp://guest:guest@127.0.0.1:5672/{vhost}") as direct:
            assert direct.default_channel.queue_declare(queue, passive=True).message_count == 3
        for app in apps.values():
            app.close()
    finally:
        proxy.close()


def test_a_publish_the_broker_refuses_is_an_error_not_a_lost_step(monkeypatch, vhost, database):
    """confirm_publish: a step counts as sent only once RabbitMQ has taken it. A queue that refuses the
    message (full, overflow reject-publish) makes the publish fail; without publisher confirms it would
    return as if sent and the step would be lost."""
    from amqp.exceptions import MessageNacked
    from kombu import Exchange, Queue

    app = app_for(monkeypatch, vhost, 5432, database)
    full = Queue("full", Exchange("full"), "full", queue_arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    with app.connection_for_write() as conn:
        full(conn.default_channel).declare()
        with app.producer_or_acquire() as producer:
            with pytest.raises(MessageNacked):
                producer.publish({"step": "x"}, exchange=full.exchange, routing_key="full", declare=[full], retry=False)
    app.close()


def test_heartbeat_notices_a_dead_broker_connection_well_within_load_balancer_idle_timeouts():
    """broker_heartbeat: a connection that died silently (the broker's host gone, no RST) is noticed within
    about two heartbeats, and heartbeats keep an idle connection open through the Network Load Balancer in
    front of a cluster broker, whose idle timeout is 350 s (docs/facts.md). Off (0), or Celery's default 120
    s with a missed beat, neither holds."""
    heartbeat = executor_config()["config_source"]["broker_heartbeat"]
    assert 0 < 2 * heartbeat < NLB_IDLE_TIMEOUT_SECONDS / 2
