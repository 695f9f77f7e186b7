"""dagster-celery's own test suite passes with the runtime's executor and worker task in place of stock's.

dagster-celery publishes its tests in its sdist (``dagster_celery_tests/``). This test downloads the sdist of
the version the image pins (worker_image/requirements.txt), once, into ``.local/peer/`` (pip's own download: a
dependency, not a copy in this repository), and runs the suite in a pytest process of its own with the plugin
``tests.peer_suite`` (which swaps in ``dagster_celery_aws.celery_executor`` and the runtime's worker) on the
machine's RabbitMQ -- with ``rpc://`` results (dagster-celery's default) and with results in PostgreSQL, both
through the packaged celery_config.yaml, the two at once, each on a vhost (and a database) of its own.

Stock dagster-celery passes every test of the suite on these services (``python -m tests.test_peer_suite stock
rpc``, which runs all but ``NOT_APPLICABLE``: docs/facts.md has the counts), so every test must pass here but
those in ``NOT_APPLICABLE``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
import subprocess
import sys
import tarfile
import uuid
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from tests.conftest import REPO_ROOT, postgres_database, rabbit_vhost
from tests.peer_suite import RUN_MARK, no_logging_reset_without_handlers, stop_left_over

PEER_DIR = REPO_ROOT / ".local" / "peer"
SUITE = "dagster_celery_tests"
# The tests of the suite that cannot apply here, with the reason: deselected, in both settings and for stock.
# The suite's Docker needs are fixtures of its conftest.py, which is not loaded: ``rabbitmq`` (a RabbitMQ
# container) is the machine's broker instead, and ``dagster_docker_image`` (dagster's test-project image) is used
# by none of its tests (tests/peer_suite.py).
NOT_APPLICABLE = {
    "test_launcher.py::test_crashy_run": (
        "dagster-celery's CeleryRunLauncher runs a whole run as one Celery task, which this project does not do "
        "(runs are ECS tasks or the daemon's processes; a run it launches cannot use the Celery executor: "
        "https://github.com/dagster-io/dagster/issues/32915). The test kills that task's process and expects the launcher to read a failed task; the packaged "
        "settings redeliver a task whose worker dies (task_reject_on_worker_lost: docs/reliability.md, fault 1), "
        "and the second delivery finds the run started and returns, a success to the launcher (measured with "
        "rpc:// results)"
    ),
}
# Where the steps' results go (suite_services), and the pytest selection run there: the tests that send no
# step to a worker -- eager ones run in process, the CLI's are stock's, which the runtime keeps -- read no
# results and are the same in both settings, so each runs in one of them.
SETTINGS = {
    "rpc": ["-k", "not eager and not engine_error"],
    "postgresql": [f"--ignore-glob=*/{SUITE}/{name}" for name in ("test_cli.py", "test_config.py", "test_utils.py", "test_version.py")],
}
SUITE_SECONDS = 900  # the bound on one run of the suite: 300-415 s measured, alone and in CI (docs/facts.md)
# The bound on each of its tests (pytest-timeout; the slowest took 51 s on a loaded machine): a test that fails so
# fails in minutes, its stacks in the log, and is tried once more on its own. The priority test's runs, on two
# threads of the pytest process, could deadlock in logging (a lock-order inversion that also wedged the timeout's
# teardown, so the whole process hung to SUITE_SECONDS): tests.peer_suite removes its cause (docs/facts.md).
TEST_SECONDS = 240


def pinned_version(package: str = "dagster-celery") -> str:
    text = (REPO_ROOT / "worker_image" / "requirements.txt").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(package)}==(\S+)$", text, re.MULTILINE)
    assert match, f"worker_image/requirements.txt pins no {package}"
    return match.group(1)


def suite_dir(version: str) -> Path:
    """``.local/peer/dagster_celery-<version>/`` holding the sdist's ``dagster_celery_tests/``, fetched if missing."""
    target = PEER_DIR / f"dagster_celery-{version}"
    if (target / SUITE / "test_execute.py").is_file():
        return target
    download = PEER_DIR / "sdist"
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", "-d", str(download)]
    subprocess.run([*pip, f"dagster-celery=={version}"], check=True, timeout=300)
    (sdist,) = download.glob(f"dagster_celery-{version}.tar.gz")
    prefix = f"dagster_celery-{version}/{SUITE}/"
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.isfile()]
        assert members, f"{sdist.name} has no {SUITE}/"
        for member in members:
            member.name = member.name[len(f"dagster_celery-{version}/"):]
        tar.extractall(target, members=members, filter="data")
    return target


def run_suite(directory: Path, env: dict[str, str], report: Path, target: str = "runtime", args=(),
              nodes=()) -> dict[str, str]:  # fmt: skip
    """Run the suite (or only its tests ``nodes``: ``file.py::name``) against ``target`` ('runtime' or 'stock'),
    with more pytest ``args`` (a selection); the outcome of each test by its node id. Its output goes to
    ``report`` with the suffix ``.log``."""
    paths = [str(directory / SUITE / node) for node in nodes] or [str(directory / SUITE)]
    command = [
        sys.executable, "-m", "pytest", *paths, *args, "-p", "tests.peer_suite", "--noconftest",
        "-p", "no:cacheprovider", f"--junitxml={report}", "-v", "--durations=0", "-o", "junit_family=xunit2",
        f"--timeout={TEST_SECONDS}", "--timeout-method=signal",
        # node ids are relative to the rootdir, this repository's (its pytest settings)
        *(f"--deselect={(directory / SUITE).relative_to(REPO_ROOT)}/{node}" for node in NOT_APPLICABLE),
    ]  # fmt: skip
    paths = [str(directory), str(REPO_ROOT), env.get("PYTHONPATH", "")]
    mark = uuid.uuid4().hex
    env = {
        **env,
        "DCA_PEER_TARGET": target,
        RUN_MARK: mark,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    }
    log = report.with_suffix(".log")
    try:
        with log.open("w") as out:
            subprocess.run(command, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=SUITE_SECONDS)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the suite ran over {SUITE_SECONDS} s:\n{log.read_text()[-5000:]}") from None
    finally:
        stop_left_over(mark)  # anything of the run's still alive: a suite that timed out
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        node = f"{case.get('classname').rsplit('.', 1)[-1]}.py::{case.get('name')}"
        kinds = {child.tag for child in case}
        outcomes[node] = next((k for k in ("failure", "error", "skipped") if k in kinds), "passed")
    assert outcomes, f"the suite ran no test:\n{log.read_text()[-5000:]}"
    return outcomes


def per_file(outcomes: dict[str, str]) -> dict[str, str]:
    files = sorted({node.split("::")[0] for node in outcomes})
    counts = {f: Counter(o for n, o in outcomes.items() if n.startswith(f + "::")) for f in files}
    return {f: f"{c['passed']}/{sum(c.values())}" for f, c in counts.items()}


@contextlib.contextmanager
def suite_services(setting: str):
    """The environment of the suite's processes: a vhost of its own, and results on the broker (``rpc``) or in a
    database of its own (``postgresql``)."""
    with rabbit_vhost("dca-peer") as vhost:
        env = {
            **os.environ,
            # dagster-celery's default broker is pyamqp://guest@<this>:5672//: the suite's CLI tests, its run
            # launcher tests and stock's executor read it. Kombu drops the URL's fragment, which swallows the
            # default's ':5672//'.
            "DAGSTER_CELERY_BROKER_HOST": f"127.0.0.1:5672/{vhost}#",
            # The packaged celery_config.yaml's variables: the runtime's executor and workers read them.
            "DAGSTER_CELERY_BROKER_URL": f"pyamqp://guest@127.0.0.1:5672/{vhost}",
        }
        env.pop("DAGSTER_CELERY_CONFIG", None)
        if setting == "rpc":
            yield {**env, "DAGSTER_CELERY_BACKEND_URL": "rpc://"}
        else:
            with postgres_database("dca_peer") as db:
                yield {**env, "DAGSTER_CELERY_BACKEND_URL": f"db+postgresql+psycopg2://postgres@127.0.0.1:5432/{db}"}


def run_in(setting: str, directory: Path, report: Path, target: str = "runtime", args=(), nodes=()) -> dict[str, str]:
    with suite_services(setting) as env:
        return run_suite(directory, env, report, target=target, args=args, nodes=nodes)


def test_dagster_celery_suite_passes_with_the_runtime(tmp_path):
    """The suite with results on the broker (rpc://) and in PostgreSQL, at the same time: each on a vhost of its
    own, and the suite waits mostly for its workers to start and its runs to poll."""
    directory = suite_dir(pinned_version())
    with concurrent.futures.ThreadPoolExecutor(len(SETTINGS)) as pool:
        runs = {s: pool.submit(run_in, s, directory, tmp_path / f"{s}.xml", args=a) for s, a in SETTINGS.items()}
        outcomes = {setting: run.result() for setting, run in runs.items()}
    # A test that did not pass is tried once more, on its own, on fresh services (TEST_SECONDS); both outcomes are
    # reported, and one that does not pass again fails this test.
    for setting, ran in outcomes.items():
        again = sorted(node for node, outcome in ran.items() if outcome != "passed")
        if again:
            second = run_in(setting, directory, tmp_path / f"{setting}-again.xml", nodes=again)
            warnings.warn(f"dagster-celery suite, results {setting}: tried again after {[(n, ran[n]) for n in again]} "
                          f"(output: {tmp_path / f'{setting}.log'}): {second}", stacklevel=1)  # fmt: skip
            ran.update({node: second.get(node, "not run") for node in again})
    counts = {setting: per_file(o) for setting, o in outcomes.items()}
    print(f"dagster-celery {pinned_version()} suite with the runtime, per file (passed/ran): {counts}")
    for setting, ran in outcomes.items():
        not_passed = {node: outcome for node, outcome in ran.items() if outcome != "passed"}
        assert not not_passed, f"results {setting}: not passed: {not_passed}; per file: {counts[setting]}"
        assert len(ran) >= 20, f"results {setting}: the suite ran only {len(ran)} tests: {sorted(ran)}"
    everything = set().union(*outcomes.values())
    assert len(everything) + len(NOT_APPLICABLE) >= 39, f"the suite ran {len(everything)} tests in all: {sorted(everything)}"


def test_the_harness_keeps_dagster_from_resetting_logging_when_no_handler_is_configured(monkeypatch):
    """The cause of the priority test's deadlock (docs/facts.md): a run's start calls ``logging.config.dictConfig``
    on an instance with settings and no ``python_logs`` handlers. The harness skips that call, and only that one."""
    import logging.config

    from dagster import instance_for_test
    from dagster._core.instance.methods.event_methods import EventMethods

    configured = []
    monkeypatch.setattr(logging.config, "dictConfig", lambda config: configured.append(config))
    handler = {"handlers": {"mine": {"class": "logging.NullHandler"}}}
    with instance_for_test() as plain, instance_for_test({"python_logs": {"dagster_handler_config": handler}}) as logs:
        assert plain.get_settings("telemetry"), "instance_for_test has settings: the case of the deadlock"
        plain.get_handlers()
        assert len(configured) == 1, "dagster no longer resets logging at a run's start: the harness's patch can go"
        monkeypatch.setattr(EventMethods, "get_yaml_python_handlers", EventMethods.get_yaml_python_handlers)
        no_logging_reset_without_handlers()  # undone by monkeypatch at the test's end
        plain.get_handlers()
        assert len(configured) == 1, "the harness let dagster reset logging with no handler configured"
        logs.get_handlers()
        assert [c["handlers"] for c in configured[1:]] == [handler["handlers"]], "configured handlers are applied"


if __name__ == "__main__":
    # python -m tests.test_peer_suite stock|runtime rpc|postgresql: one run, its counts per file (docs/facts.md).
    import json
    import tempfile
    import time

    target, setting = sys.argv[1:3]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        ran = run_in(setting, suite_dir(pinned_version()), Path(tmp) / "junit.xml", target=target)
    print(target, setting, f"{time.monotonic() - started:.0f} s", json.dumps(per_file(ran)))
    print("not passed:", {node: outcome for node, outcome in ran.items() if outcome != "passed"})
