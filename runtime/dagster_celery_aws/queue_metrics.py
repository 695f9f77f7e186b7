"""Queue-depth publisher for the per-queue worker autoscaling: ``python -m dagster_celery_aws.queue_metrics``.

Runs as a sidecar of the daemon task. Every ``DCA_METRICS_INTERVAL`` seconds it reads each queue of
``DCA_QUEUES`` from the RabbitMQ management HTTP API (``GET /api/queues/<vhost>/<queue>``; same fields on
RabbitMQ 3.13 and 4.x, classic and quorum queues) and puts ``QueueDepth`` (ready + unacked), ``QueueReady``,
``QueueUnacked`` and ``QueueConsumers`` into CloudWatch, dimensions ``Stack`` and ``Queue``. Amazon MQ
publishes per-queue metrics only on 3.x brokers (docs/facts.md, Amazon MQ), hence this process.

Only numbers that were read are published: an unreachable broker, a 401/5xx or a queue whose statistics are
not there (freshly declared, or management metrics collection disabled) yields no data point, never a zero.
A queue that does not exist (404 in an existing vhost) is published as depth 0 and consumers 0: Celery
declares a queue when a step is first sent to it and when a worker starts consuming it, so a queue nobody
declared holds no step and has no worker. That zero is what lets the queue's service scale in to 0.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import requests

log = logging.getLogger("dagster_celery_aws.queue_metrics")  # also when run as __main__

METRICS = {"QueueDepth": "messages", "QueueReady": "messages_ready",
           "QueueUnacked": "messages_unacknowledged", "QueueConsumers": "consumers"}
HTTP_TIMEOUT = 5.0  # seconds per request; a cycle must fit well inside the 60 s metric period
_without_stats: set[str] = set()  # queues already reported as having no statistics


@dataclass(frozen=True)
class QueueStats:
    messages: int
    messages_ready: int
    messages_unacknowledged: int
    consumers: int


class BrokerUnavailable(Exception):
    """The management API could not be read: unreachable, timeout, 401/403, 5xx or unknown vhost."""


@dataclass(frozen=True)
class Config:
    queues: tuple[str, ...]
    management_url: str
    username: str
    password: str
    vhost: str
    stack: str
    namespace: str = "DagsterCeleryAws"
    interval: float = 60.0


def parse_broker_url(url: str) -> tuple[str, str, str, str, str]:
    """``amqp[s]://user:pass@host:port/vhost`` -> (scheme, host, user, password, vhost); ``//`` or none is ``/``."""
    parts = urlsplit(url)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    vhost = unquote(path) if path not in ("", "/") else "/"
    return parts.scheme, parts.hostname or "", unquote(parts.username or ""), unquote(parts.password or ""), vhost


def config_from_env(env=os.environ) -> Config:
    scheme, host, user, password, vhost = parse_broker_url(env["DAGSTER_CELERY_BROKER_URL"])
    # Amazon MQ: console / management API over HTTPS on the broker host, port 443 (docs/facts.md).
    default_mgmt = f"https://{host}" if scheme == "amqps" else f"http://{host}:15672"
    interval = float(env.get("DCA_METRICS_INTERVAL", "60"))
    if not 0 < interval <= 60:
        raise ValueError("DCA_METRICS_INTERVAL must be in (0, 60]: the alarms use 60 s periods")
    queues = tuple(q.strip() for q in env.get("DCA_QUEUES", "").split(",") if q.strip())
    if not queues or not env.get("DCA_STACK"):
        raise ValueError("DCA_QUEUES and DCA_STACK are required")
    return Config(queues=queues, management_url=env.get("DCA_BROKER_MANAGEMENT_URL", default_mgmt).rstrip("/"),
                  username=user, password=password, vhost=vhost, stack=env["DCA_STACK"],
                  namespace=env.get("DCA_METRICS_NAMESPACE", "DagsterCeleryAws"), interval=interval)


def _get(session: requests.Session, cfg: Config, path: str) -> requests.Response:
    try:
        resp = session.get(f"{cfg.management_url}/api/{path}", auth=(cfg.username, cfg.password),
                           timeout=HTTP_TIMEOUT)
    except requests.RequestException as exc:
        raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
    if resp.status_code not in (200, 404):
        raise BrokerUnavailable(f"HTTP {resp.status_code} from {path}")
    return resp


def collect(session: requests.Session, cfg: Config) -> dict[str, QueueStats]:
    """Stats of every queue that could be read; raises BrokerUnavailable if the broker could not be read."""
    vhost = quote(cfg.vhost, safe="")
    out: dict[str, QueueStats] = {}
    for queue in cfg.queues:
        resp = _get(session, cfg, f"queues/{vhost}/{quote(queue, safe='')}")
        if resp.status_code == 404:
            # Missing queue or missing vhost: only the former is a real zero.
            if _get(session, cfg, f"vhosts/{vhost}").status_code == 404:
                raise BrokerUnavailable(f"vhost {cfg.vhost!r} does not exist")
            out[queue] = QueueStats(0, 0, 0, 0)
            continue
        try:
            body = resp.json()
        except ValueError as exc:
            raise BrokerUnavailable(f"non-JSON answer for queue {queue!r}") from exc
        if not all(isinstance(body.get(field), int) for field in METRICS.values()):
            # Declared moments ago (stats come every collect_statistics_interval), or the broker's management
            # metrics collection is disabled: no number, so no data point.
            if queue not in _without_stats:
                _without_stats.add(queue)
                log.warning("queue %r has no message statistics; not published until it has", queue)
            continue
        _without_stats.discard(queue)
        out[queue] = QueueStats(*(body[field] for field in METRICS.values()))
    return out


def publish(client, cfg: Config, stats: dict[str, QueueStats], timestamp=None) -> None:
    """put_metric_data for the queues read; CloudWatch errors are logged, never raised."""
    data = [{"MetricName": name, "Unit": "Count", "Value": float(getattr(s, field)),
             "Dimensions": [{"Name": "Stack", "Value": cfg.stack}, {"Name": "Queue", "Value": queue}],
             **({"Timestamp": timestamp} if timestamp else {})}
            for queue, s in stats.items() for name, field in METRICS.items()]
    for i in range(0, len(data), 20):  # 20 per call fits every PutMetricData limit, old and new
        try:
            client.put_metric_data(Namespace=cfg.namespace, MetricData=data[i:i + 20])
        except Exception as exc:  # botocore ClientError / EndpointConnectionError / ...: keep the loop alive
            log.error("put_metric_data failed: %s", exc)


def run(stop_event: threading.Event, cfg: Config, client, session: requests.Session | None = None,
        backoff_start: float = 1.0) -> None:
    """Collect and publish until stop_event is set; broker outages back off up to the interval."""
    session = session or requests.Session()
    outage_since: float | None = None
    delay = backoff_start
    while not stop_event.is_set():
        started = time.monotonic()
        try:
            stats = collect(session, cfg)
        except Exception as exc:  # BrokerUnavailable, or a bug: never crash, never publish a guess
            if outage_since is None:
                outage_since = started
                log.warning("broker management API unavailable (%s); no data published until it answers", exc,
                            exc_info=not isinstance(exc, BrokerUnavailable))
            stop_event.wait(delay)
            delay = min(delay * 2, cfg.interval)
            continue
        if outage_since is not None:
            log.warning("broker management API answers again after %.0f s", started - outage_since)
            outage_since, delay = None, backoff_start
        publish(client, cfg, stats)
        stop_event.wait(max(0.0, cfg.interval - (time.monotonic() - started)))


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = config_from_env()
    except (KeyError, ValueError) as exc:
        log.error("bad configuration: %s", exc)
        return 2
    import boto3  # region from AWS_DEFAULT_REGION (the stack sets it); endpoint from AWS_ENDPOINT_URL_CLOUDWATCH

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # The loop runs in a daemon thread so a SIGTERM during a slow HTTP call still exits within a second.
    worker = threading.Thread(target=run, args=(stop, cfg, boto3.client("cloudwatch")), daemon=True)
    worker.start()
    log.info("publishing %s for queues %s every %.0f s", cfg.namespace, ",".join(cfg.queues), cfg.interval)
    while not stop.wait(0.5) and worker.is_alive():
        pass
    worker.join(timeout=0.5)
    return 0 if stop.is_set() else 1


if __name__ == "__main__":
    sys.exit(main())
