"""Backing services: the broker, Dagster's storage and an S3 API endpoint, embedded or given by URL.

Embedded (a fresh machine with nothing but Python; development only):
- broker: Celery's ``filesystem://`` transport in ``<state>/broker``, each message file whole before a consumer
  can see it (``dagster_celery_aws.filesystem_broker``); results (celery_config.yaml ``backend``)
  in the storage's database: PostgreSQL, or a ``db+sqlite`` file beside the embedded storage
  (docs/facts.md, "Embedded mode that works with no servers"). It ignores priorities and cannot
  redeliver a killed worker's step;
- storage: Dagster's sqlite storage in ``<state>/storage``;
- S3: moto's ``ThreadedMotoServer`` inside this process, on 127.0.0.1 and a free port. moto keeps objects in
  memory only, so the runner keeps them under ``<state>/s3``: loaded into the server at start, saved there when
  the runner stops (a runner killed with SIGKILL loses what its session wrote), so that assets the storage
  records as materialized still have their files after a restart.
Given by URL, each is checked within a few seconds before anything starts, so a wrong URL is one clear line.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dagster_celery_aws import filesystem_broker

from infra.specs import contract

CHECK_TIMEOUT = 3  # seconds, per service


class StartupError(Exception):
    """A problem the user can fix (a URL, a port, a file); printed as one paragraph, no traceback."""


@dataclass
class Services:
    env: dict[str, str]  # environment contract values (and AWS endpoint settings) for every process
    celery_overrides: dict  # merged into celery_config.yaml's `execution.config` (embedded broker only)
    storage: dict | None  # replacement for dagster.yaml's storage (embedded sqlite), None to keep Postgres
    s3_endpoint: str
    described: list[str] = field(default_factory=list)  # "broker   embedded filesystem://, ..." lines
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        while self.closers:
            try:
                self.closers.pop()()
            except Exception:  # noqa: BLE001 - best effort at shutdown
                pass


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def check_port_free(port: int) -> int:
    """Bind 127.0.0.1:port to see that it is free (0: pick a free one); return the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as err:
            raise StartupError(
                f"port {port} on 127.0.0.1 is already in use ({err.strerror}); the webserver cannot listen "
                f"there. Stop what uses it or choose another port with --port (or DCA_PORT; 0 picks a free one)."
            ) from None
        return s.getsockname()[1]


AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")  # RabbitMQ, as Amazon MQ is; Celery's other transports are not the stack's


def _broker(url: str | None, state: Path, svc: Services) -> None:
    if url is None:
        root = state / "broker"
        # Messages left by an interrupted session would start steps of runs that no longer wait for them.
        shutil.rmtree(root, ignore_errors=True)
        folders = {name: root / name for name in ("data", "control", "processed")}
        for folder in folders.values():
            folder.mkdir(parents=True)
        svc.env[contract.BROKER_URL] = "filesystem://"
        svc.celery_overrides = {
            "config_source": {
                # The AMQP-only options of celery_config.yaml (publisher confirms, retry timings) do not
                # apply to this transport; these replace them (kombu.transport.filesystem).
                # Its channel, with each message file whole before a consumer sees it (filesystem_broker).
                "broker_transport": filesystem_broker.TRANSPORT,
                "broker_transport_options": {
                    "data_folder_in": str(folders["data"]),
                    "data_folder_out": str(folders["data"]),
                    "control_folder": str(folders["control"]),
                    "store_processed": True,
                    "processed_folder": str(folders["processed"]),
                    "polling_interval": 0.2,
                }
            },
        }
        svc.described.append(f"broker    embedded filesystem:// in {root}")
        return
    scheme = urlsplit(url).scheme
    if scheme not in AMQP_SCHEMES:
        raise StartupError(
            f"--broker-url {_redact(url)!r}: scheme {scheme or '(none)'!r} is not supported; the stack's broker is "
            f"RabbitMQ (Amazon MQ), so give amqp://USER:PASSWORD@HOST:5672/VHOST, or leave --broker-url / "
            f"DCA_BROKER_URL unset for the embedded broker."
        )
    from amqp.exceptions import AccessRefused, NotAllowed
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=CHECK_TIMEOUT) as conn:
            conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT)
    except AccessRefused:
        raise StartupError(
            f"the broker at {_redact(url)} refused the user and password (ACCESS_REFUSED); check the credentials "
            f"in --broker-url / DCA_BROKER_URL."
        ) from None
    except NotAllowed:
        raise StartupError(
            f"the broker at {_redact(url)} refused access to the vhost (NOT_ALLOWED): create it "
            f"(rabbitmqctl add_vhost) and give the user permissions on it, or name another in the URL."
        ) from None
    except Exception as err:  # noqa: BLE001 - anything else means nobody answered as a broker
        raise StartupError(
            f"the broker at {_redact(url)} is unreachable ({type(err).__name__}: {err}); check that RabbitMQ runs "
            f"there, or leave --broker-url / DCA_BROKER_URL unset for the embedded broker."
        ) from None
    svc.env[contract.BROKER_URL] = url
    svc.described.append(f"broker    {_redact(url)}")


def _database(url: str | None, state: Path, svc: Services) -> None:
    if url is None:
        base = state / "storage"
        base.mkdir(parents=True, exist_ok=True)
        svc.storage = {"sqlite": {"base_dir": str(base)}}
        svc.env[contract.BACKEND_URL] = f"db+sqlite:///{base / 'celery-results.sqlite'}"
        svc.described.append(f"storage   embedded sqlite in {base}")
        return
    parts = urlsplit(url)
    if parts.scheme.split("+")[0] not in ("postgres", "postgresql") or not parts.hostname or len(parts.path) < 2:
        raise StartupError(
            f"--database-url {_redact(url)!r} is not a PostgreSQL URL; expected "
            f"postgresql://USER:PASSWORD@HOST:PORT/DATABASE."
        )
    values = {
        contract.PG_HOST: parts.hostname,
        contract.PG_PORT: str(parts.port or 5432),
        contract.PG_DB: unquote(parts.path[1:]),
        contract.PG_USERNAME: unquote(parts.username or "postgres"),
        contract.PG_PASSWORD: unquote(parts.password or ""),
    }
    import psycopg2

    try:
        psycopg2.connect(
            host=values[contract.PG_HOST], port=values[contract.PG_PORT], dbname=values[contract.PG_DB],
            user=values[contract.PG_USERNAME], password=values[contract.PG_PASSWORD], connect_timeout=CHECK_TIMEOUT,
        ).close()  # fmt: skip
    except psycopg2.Error as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StartupError(
            f"the database at {_redact(url)} is unreachable ({first}). Check that PostgreSQL runs and the database "
            f"exists, or leave --database-url / DCA_DATABASE_URL unset for embedded sqlite storage."
        ) from None
    svc.env.update(values)
    # Celery's results in the same database (celery_config.yaml: backend), as on AWS.
    svc.env[contract.BACKEND_URL] = contract.backend_url(
        *(values[k] for k in (contract.PG_USERNAME, contract.PG_PASSWORD, contract.PG_HOST, contract.PG_PORT, contract.PG_DB))
    )
    svc.storage = None
    svc.described.append(f"storage   {_redact(url)}")


def s3_client(endpoint: str):
    import boto3
    from botocore.config import Config

    cfg = Config(connect_timeout=CHECK_TIMEOUT, read_timeout=10, retries={"max_attempts": 1})
    return boto3.client("s3", endpoint_url=endpoint, config=cfg)


S3_INDEX = "index.json"  # {file name: object key} of each bucket's saved objects


def load_objects(client, root: Path) -> int:
    """Put the objects saved under ``root`` (``root/<bucket>/``) back into the server; returns their count."""
    count = 0
    for folder in sorted(p for p in root.glob("*") if (p / S3_INDEX).is_file()):
        client.create_bucket(Bucket=folder.name)
        for name, key in json.loads((folder / S3_INDEX).read_text()).items():
            client.put_object(Bucket=folder.name, Key=key, Body=(folder / name).read_bytes())
            count += 1
    return count


def save_objects(client, root: Path) -> None:
    """Every object of every bucket into ``root``, replacing what was there only once all are written."""
    staging = root.with_name(root.name + ".saving")
    shutil.rmtree(staging, ignore_errors=True)
    for bucket in client.list_buckets().get("Buckets", []):
        folder = staging / bucket["Name"]
        folder.mkdir(parents=True)
        index = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            for obj in page.get("Contents", []):
                name = hashlib.sha256(obj["Key"].encode()).hexdigest()  # any key, as a safe file name
                (folder / name).write_bytes(client.get_object(Bucket=bucket["Name"], Key=obj["Key"])["Body"].read())
                index[name] = obj["Key"]
        (folder / S3_INDEX).write_text(json.dumps(index))
    staging.mkdir(exist_ok=True)
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)


def _s3(endpoint: str | None, bucket: str, svc: Services, state: Path) -> None:
    # Any S3 API server takes any credentials locally; real ones in the environment are kept.
    for key, value in (("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local"), ("AWS_DEFAULT_REGION", "us-east-1")):
        svc.env[key] = os.environ.get(key, value)
    os.environ.update({k: svc.env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")})
    what = "given S3 API endpoint"
    if endpoint is not None and (urlsplit(endpoint).scheme not in ("http", "https") or not urlsplit(endpoint).netloc):
        raise StartupError(
            f"--s3-endpoint {endpoint!r} is not a URL: give the scheme and host, e.g. http://127.0.0.1:9000, or leave "
            f"--s3-endpoint / DCA_S3_ENDPOINT unset for the embedded one."
        )
    if endpoint is None:
        what = "embedded moto server"
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per S3 request on the console

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        svc.closers.append(server.stop)
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        saved = state / "s3"
        loaded = load_objects(s3_client(endpoint), saved)
        what += f" (objects kept in {saved}: {loaded} loaded)"
        svc.closers.append(lambda: save_objects(s3_client(endpoint), saved))  # runs before server.stop
    client = s3_client(endpoint)
    try:
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            client.create_bucket(Bucket=bucket)
    except Exception as err:  # noqa: BLE001
        raise StartupError(
            f"the S3 endpoint {endpoint} is unreachable or refused bucket {bucket!r} ({type(err).__name__}: {err}). "
            f"Check that the S3 API server runs, or leave --s3-endpoint / DCA_S3_ENDPOINT unset for the embedded one."
        ) from None
    svc.env["AWS_ENDPOINT_URL_S3"] = endpoint  # boto3's own variable; dagster.yaml has no endpoint_url
    svc.env[contract.S3_BUCKET] = bucket
    svc.s3_endpoint = endpoint
    svc.described.append(f"s3        {what} at {endpoint}, bucket {bucket}")


def start(broker_url: str | None, database_url: str | None, s3_endpoint: str | None, bucket: str, state: Path) -> Services:
    """Check the given services and start the embedded ones; StartupError names the one that failed."""
    svc = Services(env={}, celery_overrides={}, storage=None, s3_endpoint="")
    try:
        _broker(broker_url, state, svc)
        _database(database_url, state, svc)
        _s3(s3_endpoint, bucket, svc, state)
    except BaseException:
        svc.close()
        raise
    return svc
