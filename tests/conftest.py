from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


def wait_for(what: str, predicate, timeout: float = 20.0, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` seconds pass (fail).
    The interval is only how often to look; the deadline is the bound."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def unavailable(why: str):
    """A real service the test needs is missing: a skip on a developer's machine, a failure in CI (where the
    machine provides RabbitMQ and PostgreSQL)."""
    (pytest.fail if os.environ.get("CI") else pytest.skip)(why)


@contextlib.contextmanager
def postgres_database(prefix: str):
    """A database of its own on the machine's PostgreSQL (127.0.0.1:5432, trust), dropped afterwards."""
    import psycopg2  # worker_image/requirements.txt pins it (dagster-postgres needs it): never a reason to skip
    if not port_open(5432):
        unavailable("PostgreSQL on 127.0.0.1:5432 is needed")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=5)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        try:
            yield name
        finally:  # also when the test failed: a failure must not leave its database behind
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@contextlib.contextmanager
def rabbit_vhost(prefix: str):
    """A vhost of its own on the machine's RabbitMQ (127.0.0.1:5672, guest), deleted afterwards."""
    if not port_open(5672) or shutil.which("rabbitmqctl") is None:
        unavailable("RabbitMQ on 127.0.0.1:5672 with rabbitmqctl is needed")
    vhost = f"{prefix}-{uuid.uuid4().hex[:8]}"
    ctl = ["rabbitmqctl", "-q"]
    subprocess.run([*ctl, "add_vhost", vhost], check=True, capture_output=True, timeout=60)
    try:
        subprocess.run([*ctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
                       check=True, capture_output=True, timeout=60)  # fmt: skip
        yield vhost
    finally:
        subprocess.run([*ctl, "delete_vhost", vhost], capture_output=True, timeout=60)


@contextlib.contextmanager
def s3_server():
    """A moto S3 API server on 127.0.0.1 (any free port): (endpoint, client)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
        yield endpoint, client
    finally:
        server.stop()


@pytest.fixture(scope="module")
def _moto_server():
    with s3_server() as (url, _):  # one moto server for every AWS API a module calls
        yield url


@pytest.fixture
def moto_endpoint(_moto_server):
    """The module's moto server on 127.0.0.1, reset to an empty backend for this test: its URL."""
    import requests

    requests.post(f"{_moto_server}/moto-api/reset", timeout=10).raise_for_status()
    return _moto_server


RABBIT_MANAGEMENT = "http://127.0.0.1:15672"
RABBIT_AUTH = ("guest", "guest")


def _management_up() -> bool:
    import requests

    try:
        return requests.get(f"{RABBIT_MANAGEMENT}/api/overview", auth=RABBIT_AUTH, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="session")
def management_api() -> str:
    """The machine's RabbitMQ management API; its plugin is enabled here if it is off (a fresh machine)."""
    if not _management_up():
        tool = shutil.which("rabbitmq-plugins")
        if not port_open(5672) or not tool:
            unavailable("RabbitMQ on 127.0.0.1:5672 with its management API on :15672 (or rabbitmq-plugins to enable it) is needed")
        subprocess.run([tool, "enable", "rabbitmq_management"], check=True, capture_output=True, timeout=60)
        wait_for("the management API on :15672", _management_up, timeout=30)
    return RABBIT_MANAGEMENT


@pytest.fixture
def vhost(management_api):
    """A vhost of its own (created through the management API), deleted afterwards."""
    import requests

    name = f"dca-test-{uuid.uuid4().hex[:8]}"
    requests.put(f"{management_api}/api/vhosts/{name}", auth=RABBIT_AUTH, timeout=5).raise_for_status()
    requests.put(f"{management_api}/api/permissions/{name}/guest", auth=RABBIT_AUTH, timeout=5,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()  # fmt: skip
    yield name
    requests.delete(f"{management_api}/api/vhosts/{name}", auth=RABBIT_AUTH, timeout=10)


def pytest_collection_modifyitems(items):
    """dagster-celery's own suite (the longest file, about five minutes) first: with ``make test``'s ``-n`` (files in
    collection order: ``--no-loadscope-reorder``), one process starts it while the others take the rest, instead of
    it starting last (xdist's default order is by tests per file, and it is one test) and running alone."""
    items.sort(key=lambda item: item.path.name != "test_peer_suite.py")
