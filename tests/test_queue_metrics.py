"""dagster_celery_aws.queue_metrics against the real RabbitMQ (127.0.0.1:5672, guest/guest) and its management API
(127.0.0.1:15672), publishing to a CloudWatch API server (moto) on 127.0.0.1.

The management plugin must be enabled (`rabbitmq-plugins enable rabbitmq_management`); the session fixture
does it when the API does not answer. Queue statistics in the API lag by up to the broker's
collect_statistics_interval (5 s by default), so tests poll with bounded timeouts.
"""

from __future__ import annotations

import http.server
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import boto3
import kombu
import pytest
import requests
from botocore.config import Config as BotoConfig

from tests.conftest import wait_for
from dagster_celery_aws import queue_metrics as qm

from tests.conftest import RABBIT_MANAGEMENT as MGMT  # noqa: E402




@pytest.fixture(scope="session")
def cloudwatch_endpoint():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def cloudwatch(cloudwatch_endpoint, monkeypatch):
    for var, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL_CLOUDWATCH": cloudwatch_endpoint}.items():
        monkeypatch.setenv(var, value)
    return boto3.client("cloudwatch", region_name="eu-west-1", endpoint_url=cloudwatch_endpoint)


def declare_and_fill(vhost: str, backlog: dict[str, int], queue_arguments=None):
    with kombu.Connection(f"amqp://guest:guest@127.0.0.1:5672/{vhost}") as conn:
        producer = conn.Producer()
        for name, count in backlog.items():
            queue = kombu.Queue(name, kombu.Exchange(name, type="direct"), routing_key=name,
                                queue_arguments=queue_arguments or {"x-max-priority": 10})
            queue(conn.channel()).declare()
            for i in range(count):
                producer.publish({"n": i}, exchange=queue.exchange, routing_key=name)


def cfg_for(vhost: str, queues, stack=None, url=MGMT, interval=60.0) -> qm.Config:
    return qm.Config(queues=tuple(queues), management_url=url, username="guest", password="guest",
                     vhost=vhost, stack=stack or f"stack-{uuid.uuid4().hex[:8]}", interval=interval)


def metric_value(client, cfg, metric: str, queue: str):
    now = datetime.now(timezone.utc)
    points = client.get_metric_statistics(
        Namespace=cfg.namespace, MetricName=metric, StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=5), Period=60, Statistics=["Maximum"],
        Dimensions=[{"Name": "Stack", "Value": cfg.stack}, {"Name": "Queue", "Value": queue}])["Datapoints"]
    return [p["Maximum"] for p in points]


def collect_until(cfg, expected: dict[str, tuple]):
    def ready():
        stats = qm.collect(requests.Session(), cfg)
        got = {q: (s.messages, s.messages_ready, s.messages_unacknowledged, s.consumers) for q, s in stats.items()}
        return stats if all(got.get(q) == v for q, v in expected.items()) else None
    return wait_for(f"management API to report {expected}", ready, 20)


def test_parse_broker_url():
    assert qm.parse_broker_url("amqps://admin:p%40ss%2Fw@b-1.mq.eu-west-1.amazonaws.com:5671//") == (
        "amqps", "b-1.mq.eu-west-1.amazonaws.com", "admin", "p@ss/w", "/")
    assert qm.parse_broker_url("amqp://guest:guest@127.0.0.1:5672/%2F")[4] == "/"
    assert qm.parse_broker_url("amqp://guest:guest@127.0.0.1:5672/dagster")[4] == "dagster"
    assert qm.parse_broker_url("amqp://guest:guest@127.0.0.1:5672")[4] == "/"
    env = {"DAGSTER_CELERY_BROKER_URL": "amqps://a:b@b-1.mq.eu-west-1.amazonaws.com:5671/",
           "DCA_QUEUES": "dagster, heavy", "DCA_STACK": "dev"}
    cfg = qm.config_from_env(env)
    assert (cfg.management_url, cfg.queues, cfg.interval, cfg.namespace) == (
        "https://b-1.mq.eu-west-1.amazonaws.com", ("dagster", "heavy"), 60.0, "DagsterCeleryAws")
    with pytest.raises(ValueError):
        qm.config_from_env({**env, "DCA_METRICS_INTERVAL": "300"})


def test_backlog_consumers_and_quorum_published(vhost, cloudwatch):
    """One cycle: 3 on `dagster`, 5 on `heavy` (priority queues, as dagster-celery declares them), 2 on a
    quorum queue, one consumer on `busy`, and a queue nobody declared (0). One wait for the lagging stats."""
    declare_and_fill(vhost, {"dagster": 3, "heavy": 5})
    declare_and_fill(vhost, {"quorum": 2}, queue_arguments={"x-queue-type": "quorum"})
    with kombu.Connection(f"amqp://guest:guest@127.0.0.1:5672/{vhost}") as conn:
        busy = kombu.Queue("busy", kombu.Exchange("busy"), routing_key="busy", queue_arguments={"x-max-priority": 10})
        with conn.Consumer(busy, callbacks=[lambda body, message: None]):
            cfg = cfg_for(vhost, ["dagster", "heavy", "quorum", "busy", "never-declared"])
            stats = collect_until(cfg, {"dagster": (3, 3, 0, 0), "heavy": (5, 5, 0, 0), "quorum": (2, 2, 0, 0),
                                        "busy": (0, 0, 0, 1), "never-declared": (0, 0, 0, 0)})
            qm.publish(cloudwatch, cfg, stats)
    for queue, depth, consumers in (("dagster", 3, 0), ("heavy", 5, 0), ("quorum", 2, 0), ("busy", 0, 1),
                                    ("never-declared", 0, 0)):
        assert metric_value(cloudwatch, cfg, "QueueDepth", queue) == [depth]
        assert metric_value(cloudwatch, cfg, "QueueReady", queue) == [depth]
        assert metric_value(cloudwatch, cfg, "QueueUnacked", queue) == [0]
        assert metric_value(cloudwatch, cfg, "QueueConsumers", queue) == [consumers]
    listed = cloudwatch.list_metrics(Namespace="DagsterCeleryAws",
                                     Dimensions=[{"Name": "Stack", "Value": cfg.stack}])["Metrics"]
    assert len(listed) == 20
    assert all(sorted(d["Name"] for d in m["Dimensions"]) == ["Queue", "Stack"] for m in listed)


def test_unreadable_broker_is_unavailable_not_zero(vhost):
    with pytest.raises(qm.BrokerUnavailable, match="401"):
        qm.collect(requests.Session(), qm.Config(("dagster",), MGMT, "guest", "wrong", vhost, "s"))
    with pytest.raises(qm.BrokerUnavailable, match="vhost"):
        qm.collect(requests.Session(), cfg_for(f"{vhost}-missing", ["dagster"]))


def test_cloudwatch_error_is_logged_not_raised(caplog):
    dead = boto3.client("cloudwatch", region_name="eu-west-1", endpoint_url=f"http://127.0.0.1:{free_port()}",
                        aws_access_key_id="x", aws_secret_access_key="x",
                        config=BotoConfig(retries={"max_attempts": 1}, connect_timeout=1))
    qm.publish(dead, cfg_for("/", ["dagster"]), {"dagster": qm.QueueStats(1, 1, 0, 0)})
    assert "put_metric_data failed" in caplog.text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Proxy(http.server.BaseHTTPRequestHandler):
    """Stands in for the broker coming back: forwards GETs to the real management API."""

    def do_GET(self):
        resp = requests.get(f"{MGMT}{self.path}", headers={"Authorization": self.headers["Authorization"]}, timeout=5)
        self.send_response(resp.status_code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(resp.content)))
        self.end_headers()
        self.wfile.write(resp.content)

    def log_message(self, *args):
        pass


class CountingSession(requests.Session):
    calls = 0

    def get(self, *args, **kwargs):
        self.calls += 1
        return super().get(*args, **kwargs)


def test_outage_logged_once_no_data_then_recovery(vhost, cloudwatch, caplog):
    caplog.set_level(logging.INFO, logger="dagster_celery_aws.queue_metrics")
    declare_and_fill(vhost, {"dagster": 2})
    port = free_port()  # nothing listens: connection refused, like a broker that is down
    cfg = cfg_for(vhost, ["dagster"], url=f"http://127.0.0.1:{port}", interval=0.5)
    session, stop = CountingSession(), threading.Event()
    loop = threading.Thread(target=qm.run, args=(stop, cfg, cloudwatch, session), kwargs={"backoff_start": 0.02})
    loop.start()
    proxy = None
    try:
        wait_for("several failed cycles", lambda: session.calls >= 5, 10)
        outage = [r for r in caplog.records if "unavailable" in r.getMessage()]
        assert len(outage) == 1 and "ConnectionError" in outage[0].getMessage()
        assert cloudwatch.list_metrics(Dimensions=[{"Name": "Stack", "Value": cfg.stack}])["Metrics"] == []
        proxy = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Proxy)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        wait_for("the recovery line", lambda: "answers again" in caplog.text, 10)
        wait_for("a data point after recovery", lambda: metric_value(cloudwatch, cfg, "QueueDepth", "dagster") == [2], 15)
    finally:
        stop.set()
        loop.join(timeout=2)
        if proxy:
            proxy.shutdown()
    assert not loop.is_alive()
    assert len([r for r in caplog.records if "unavailable" in r.getMessage()]) == 1
    assert len([r for r in caplog.records if "answers again" in r.getMessage()]) == 1


def test_module_runs_and_exits_on_sigterm(vhost, cloudwatch_endpoint):
    declare_and_fill(vhost, {"dagster": 1})
    stack = f"stack-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DCA_QUEUES": "dagster", "DCA_STACK": stack,
           "DAGSTER_CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
           "DCA_BROKER_MANAGEMENT_URL": MGMT, "DCA_METRICS_INTERVAL": "1", "AWS_DEFAULT_REGION": "eu-west-1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_ENDPOINT_URL_CLOUDWATCH": cloudwatch_endpoint}
    proc = subprocess.Popen([sys.executable, "-m", "dagster_celery_aws.queue_metrics"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client = boto3.client("cloudwatch", region_name="eu-west-1", endpoint_url=cloudwatch_endpoint,
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        cfg = cfg_for(vhost, ["dagster"], stack=stack)
        wait_for("the sidecar's first data point", lambda: 1.0 in metric_value(client, cfg, "QueueDepth", "dagster"), 20)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 1.0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
