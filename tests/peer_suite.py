"""pytest plugin for dagster-celery's own test suite (``dagster_celery_tests`` from its sdist), run by
tests/test_peer_suite.py in a pytest process of its own: ``pytest -p tests.peer_suite --noconftest <dir>``.

The suite's conftest.py is not loaded (``--noconftest``): it imports ``dagster_test`` (dagster's monorepo test
package, not published) and ``docker`` for a RabbitMQ container and a Docker image. Its fixtures are here
instead: ``rabbitmq`` is the broker the parent test made ready (a vhost of its own on the machine's RabbitMQ,
named by dagster-celery's ``DAGSTER_CELERY_BROKER_HOST``); ``tempdir``, ``instance`` and
``dagster_celery_worker`` are the suite's own, unchanged.

With ``DCA_PEER_TARGET=runtime`` the suite's jobs and workers are the runtime's, in place of stock
dagster-celery's:
- ``dagster_celery.celery_executor`` is ``dagster_celery_aws.celery_executor`` (the suite's repo.py imports it
  from there), configured from ``$DAGSTER_CELERY_CONFIG`` or the packaged celery_config.yaml, with the run
  config's ``execution: config:`` over it;
- the suite's ``start_celery_worker`` starts the worker the topology runs (``infra.specs.topology.worker_command``:
  ``celery -A dagster_celery.app worker`` with the runtime's ``dagster_celery_config``, i.e. the runtime's
  ``execute_plan`` task and settings), and stops it as ECS does (SIGTERM: warm shutdown).
With ``DCA_PEER_TARGET=stock`` nothing is swapped: the measurement of stock dagster-celery on the same services.

The suite's CLI tests start workers in the background (``dagster-celery worker start -d``: detached, their
parent is gone) and stop them with a ``shutdown`` broadcast, which misses a worker that is not up yet on a busy
machine. Such a worker would live on and take later tests' steps from the same queue (with stock's task and
``rpc://`` results): after each test, the suite's processes that outlived it are stopped (``stop_left_over``);
they are found by ``DCA_PEER_RUN`` in their environment, which only this run's processes have (the suite's
fixtures have stopped their own processes by then).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

TARGET = os.environ.get("DCA_PEER_TARGET", "runtime")
RUN_MARK = "DCA_PEER_RUN"
STOP_SECONDS = 60  # a worker's warm shutdown: it finishes its step (the suite's steps take under a second)


def _stop(pids: list[int]) -> None:
    """SIGTERM (a worker's warm shutdown), then SIGKILL to what is left after ``STOP_SECONDS``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + STOP_SECONDS
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
            time.sleep(0.1)


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return True


def stop_left_over(mark: str) -> list[int]:
    """Stop the processes whose environment has ``DCA_PEER_RUN=<mark>``, but this one; their pids."""
    tag = f"{RUN_MARK}={mark}".encode()
    left = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if tag in (proc / "environ").read_bytes().split(b"\0"):
                left.append(int(proc.name))
    _stop(left)
    return left


@contextlib.contextmanager
def start_runtime_worker(queue: str | None = None):
    """The suite's ``start_celery_worker`` (same arguments, ready when it returns), for the runtime's worker."""
    from dagster_celery_tests.utils import _wait_for_worker_ready

    from infra.specs.topology import worker_command

    process = subprocess.Popen(worker_command(queue or "dagster", 1))
    try:
        _wait_for_worker_ready(queue)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def no_logging_reset_without_handlers() -> None:
    """Dagster's ``EventMethods.get_yaml_python_handlers``, skipped when the instance configures no handlers.

    The suite's priority test runs two jobs on threads of this process. At each run's start dagster calls
    ``logging.config.dictConfig`` whenever the instance has any settings, even with no ``python_logs`` handlers:
    that call holds logging's module lock while it takes every handler's lock, and the other run's thread, storing
    an event, holds its handler's lock while it asks for the module lock -- a deadlock (CPython issue #96727) that
    wedges the whole pytest process, the timeout's teardown included (docs/facts.md). With no handlers configured
    the call returns none and only clears logging's handlers; so it is skipped then, and runs as before otherwise.
    Both targets get it: it is the harness's, not the executor's (a deployment runs one run per process).
    """
    from dagster._core.instance.methods.event_methods import EventMethods

    configured = EventMethods.get_yaml_python_handlers

    def get_yaml_python_handlers(self):
        if not self._instance.get_python_log_dagster_handler_config():
            return []
        return configured(self)

    EventMethods.get_yaml_python_handlers = get_yaml_python_handlers


def pytest_configure(config):
    no_logging_reset_without_handlers()
    if TARGET == "stock":
        return
    if TARGET != "runtime":
        raise pytest.UsageError(f"DCA_PEER_TARGET={TARGET!r}: expected 'runtime' or 'stock'")
    import dagster_celery
    import dagster_celery_tests.utils as suite_utils

    import dagster_celery_aws

    # Before the suite's modules import these names (test modules and repo.py take them at import).
    dagster_celery.celery_executor = dagster_celery_aws.celery_executor
    suite_utils.start_celery_worker = start_runtime_worker


@pytest.fixture(autouse=True)
def no_worker_outlives_its_test():
    yield
    stop_left_over(os.environ[RUN_MARK])


@pytest.fixture(scope="session")
def rabbitmq():
    """The suite's broker fixture (a Docker container upstream): the machine's RabbitMQ, ready already."""
    yield


@pytest.fixture
def tempdir():
    with tempfile.TemporaryDirectory() as the_dir:
        yield the_dir


@pytest.fixture
def instance(tempdir):
    from dagster._core.test_utils import instance_for_test

    with instance_for_test(temp_dir=tempdir) as test_instance:
        yield test_instance


@pytest.fixture
def dagster_celery_worker(rabbitmq, instance):
    from dagster_celery_tests.utils import start_celery_worker

    with start_celery_worker():
        yield
