"""The local runner's service flags: each mistake is one line that names the problem, before anything runs."""

from __future__ import annotations

import uuid

import pytest

from infra.local import services
from tests.conftest import port_open, unavailable


def refused(tmp_path, broker=None, s3=None) -> str:
    with pytest.raises(services.StartupError) as err:
        services.start(broker, None, s3, "bucket", tmp_path)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_an_s3_endpoint_without_a_scheme_is_named(tmp_path):
    message = refused(tmp_path, s3="127.0.0.1:9000")
    assert message.startswith("--s3-endpoint '127.0.0.1:9000' is not a URL") and "http://127.0.0.1:9000" in message


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "sqs://", "127.0.0.1:5672"])
def test_a_broker_that_is_not_rabbitmq_is_unsupported_not_unreachable(tmp_path, url):
    message = refused(tmp_path, broker=url)
    assert "is not supported" in message and "unreachable" not in message and "amqp://" in message


def rabbit() -> None:
    if not port_open(5672):
        unavailable("RabbitMQ on 127.0.0.1:5672 is needed")


def test_a_wrong_broker_password_is_refused_not_unreachable(tmp_path):
    rabbit()
    message = refused(tmp_path, broker="amqp://guest:wrong-password@127.0.0.1:5672//")
    assert "refused the user and password (ACCESS_REFUSED)" in message and "wrong-password" not in message


def test_a_missing_vhost_is_named(tmp_path):
    rabbit()
    message = refused(tmp_path, broker=f"amqp://guest:guest@127.0.0.1:5672/missing-{uuid.uuid4().hex[:8]}")
    assert "refused access to the vhost (NOT_ALLOWED)" in message


def test_a_broker_nobody_answers_for_is_unreachable(tmp_path):
    message = refused(tmp_path, broker="amqp://guest:guest@127.0.0.1:1//")
    assert "is unreachable" in message


def test_a_second_runner_on_the_same_state_directory_is_refused_naming_the_first(tmp_path):
    import fcntl
    import os
    import subprocess
    import sys

    from infra.local.runner import LOCK_FILE
    from tests.conftest import REPO_ROOT

    state = tmp_path / "state"
    state.mkdir()
    with open(state / LOCK_FILE, "w") as held:  # as a running runner holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242")
        held.flush()
        proc = subprocess.run(
            [sys.executable, "-m", "infra.local", "up", "--once", "--state-dir", str(state), "--port", "0"],
            cwd=REPO_ROOT, env={k: v for k, v in os.environ.items() if not k.startswith("DCA_")},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.strip() == (
        f"error: another local runner (pid 4242) uses the state directory {state}; stop it, or give this one its "
        f"own with --state-dir (or DCA_STATE_DIR)"
    )


def test_on_the_embedded_broker_the_watchdog_counts_the_runners_workers_as_consumers():
    from infra.local.watchdog import QueueWatchdog

    dog = QueueWatchdog(instance=None, broker_url=None, seconds=10, say=print, served={"dagster", "heavy"})
    assert (dog.consumers("dagster"), dog.consumers("heavy"), dog.consumers("gpu")) == (1, 1, 0)


def test_the_runner_turns_a_bad_service_flag_into_one_line_and_exit_2(tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    proc = subprocess.run(
        [sys.executable, "-m", "infra.local", "up", "--once", "--state-dir", str(tmp_path / "state"), "--port", "0",
         "--s3-endpoint", "127.0.0.1:9000"],
        cwd=REPO_ROOT, env={k: v for k, v in os.environ.items() if not k.startswith("DCA_")},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stdout.strip().splitlines()[-1].startswith("error: --s3-endpoint '127.0.0.1:9000' is not a URL")
    assert "Traceback" not in proc.stdout + proc.stderr


def test_the_watchdog_counts_no_time_while_the_broker_cannot_be_asked(monkeypatch, vhost):
    """A queue without consumer fails its run after ``seconds``, but only on evidence: while the broker is
    unreachable (connections cut and refused, as during a restart) its clock starts again, so a broker outage
    longer than the bound does not fail runs whose workers are merely reconnecting."""
    from types import SimpleNamespace

    from infra.local import jobs
    from infra.local.watchdog import QueueWatchdog
    from tests.fault_proxy import FaultProxy

    run = SimpleNamespace(run_id="r1")
    failed: list[str] = []
    instance = SimpleNamespace(get_runs=lambda filters: [run], report_run_failed=lambda r, text: failed.append(text))
    monkeypatch.setattr(jobs, "step_rows", lambda inst, run_id: [SimpleNamespace(queue="nobody", status="STARTED", step="s")])
    proxy = FaultProxy(5672)
    try:
        dog = QueueWatchdog(instance, f"amqp://guest:guest@127.0.0.1:{proxy.port}/{vhost}", seconds=10, say=print)
        assert dog.consumers("nobody") == 0
        assert dog.check_once(0) == [] and dog.check_once(5) == []
        proxy.cut()
        assert dog.consumers("nobody") is None
        assert dog.check_once(11) == [] and dog.check_once(20) == []  # past the bound, but no evidence
        proxy.restore()
        assert dog.check_once(21) == [] and dog.check_once(30) == [] and not failed  # counted again from 21
        assert dog.check_once(31) == ["r1"]
        assert failed and 'Celery queue "nobody", which has had no consumer for 10 s' in failed[0]
    finally:
        proxy.close()
