"""Helpers of tests/test_faults.py: private RabbitMQ and PostgreSQL instances that a test may stop and start,
the local runner as a long-lived subprocess, extra Celery workers started like the runner starts its own,
and bounded polls. Nothing here sleeps to synchronise: every wait is a poll with a deadline.

The machine's shared services (RabbitMQ on 5672, PostgreSQL on 5432) are never stopped: a fault that stops
a service stops a private instance that this module started in a temporary directory.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from infra.local.processes import Supervisor
from tests.conftest import port_open, wait_for

REPO_ROOT = Path(__file__).resolve().parents[1]
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")  # the real scripts; /usr/sbin/* wrappers `su` to rabbitmq
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]




# ---------------------------------------------------------------------------------------------- RabbitMQ
@dataclass
class PrivateRabbit:
    """A RabbitMQ node of its own (name, ports, data, logs and config under ``root``), run as root with its
    own Erlang cookie in ``root/home``. ``consumer_timeout_ms`` goes to its rabbitmq.conf; the channel tick
    (how often RabbitMQ checks consumer timeouts, 60 s by default) is shortened in advanced.config so a
    short timeout fires promptly."""

    root: Path
    consumer_timeout_ms: int | None = None
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    node: str = field(default_factory=lambda: f"dcafault{uuid.uuid4().hex[:8]}@localhost")
    proc: subprocess.Popen | None = None

    def __post_init__(self):
        (self.root / "home").mkdir(parents=True, exist_ok=True)
        (self.root / "home" / ".erlang.cookie").write_text(uuid.uuid4().hex.upper())
        os.chmod(self.root / "home" / ".erlang.cookie", 0o400)
        (self.root / "enabled_plugins").write_text("[].\n")  # no management plugin: no 15672 clash
        (self.root / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's (it names the shared node)
        self.configure(self.consumer_timeout_ms)

    def configure(self, consumer_timeout_ms: int | None) -> None:
        """(Re)write rabbitmq.conf and advanced.config; a running node reads them at its next start."""
        self.consumer_timeout_ms = consumer_timeout_ms
        conf = [f"listeners.tcp.default = 127.0.0.1:{self.port}", "loopback_users = none"]
        if self.consumer_timeout_ms is not None:
            conf.append(f"consumer_timeout = {self.consumer_timeout_ms}")
        (self.root / "rabbitmq.conf").write_text("\n".join(conf) + "\n")
        tick = 1000 if self.consumer_timeout_ms is not None else 60000
        (self.root / "advanced.config").write_text(f"[{{rabbit, [{{channel_tick_interval, {tick}}}]}}].\n")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.update(
            HOME=str(self.root / "home"),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.root / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.root / "log"),
            RABBITMQ_CONFIG_FILE=str(self.root / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.root / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.root / "enabled_plugins"),
            RABBITMQ_CONF_ENV_FILE=str(self.root / "rabbitmq-env.conf"),
            RABBITMQ_PID_FILE=str(self.root / "rabbit.pid"),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        return env

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, *args], env=self.env(),
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip

    def start(self, timeout: float = 90) -> None:
        log = open(self.root / "server.out", "ab")
        self.proc = subprocess.Popen([str(RABBIT_BIN / "rabbitmq-server")], env=self.env(), cwd=self.root,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        log.close()
        wait_for(f"RabbitMQ node {self.node} on port {self.port}",
                 lambda: self._check_exited() or port_open(self.port), timeout)  # fmt: skip

    def _check_exited(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            tail = (self.root / "server.out").read_text(errors="replace")[-2000:]
            raise AssertionError(f"RabbitMQ node {self.node} exited rc={self.proc.returncode}:\n{tail}")
        return False

    def consumers(self, queue_name: str) -> int:
        """Consumers of a queue on the default vhost (0 if unknown or the queue does not exist yet)."""
        out = self.ctl("list_queues", "-q", "--no-table-headers", "name", "consumers", timeout=30).stdout
        counts = dict(line.split("\t") for line in out.splitlines() if line.count("\t") == 1)
        return int(counts.get(queue_name, "0") or 0)

    def stop(self, timeout: float = 60) -> None:
        if self.proc is None:
            return
        self.ctl("stop", timeout=timeout)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        """Finaliser: stop politely, then kill the process group (beam, epmd is shared and left alone)."""
        try:
            self.stop(timeout=30)
        except Exception:  # noqa: BLE001
            pass
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ---------------------------------------------------------------------------------------------- PostgreSQL
@dataclass
class PrivatePostgres:
    """A PostgreSQL 15 cluster of its own in ``root`` (initdb + pg_ctl as the ``postgres`` user when this
    runs as root), on its own port, trust authentication on 127.0.0.1."""

    root: Path
    port: int = field(default_factory=free_port)

    def __post_init__(self):
        self.data = self.root / "data"
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._as_pg([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                    timeout=120)  # fmt: skip

    def _as_pg(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        proc = subprocess.run([*prefix, *argv], cwd=self.root, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, timeout: float = 60) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_pg([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "pg.log"),
                     "-w", "-t", str(int(timeout)), "start"], timeout=timeout + 10)  # fmt: skip

    def stop(self, mode: str = "fast", timeout: float = 60) -> None:
        self._as_pg([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", str(int(timeout)), "stop"],
                    timeout=timeout + 10)  # fmt: skip

    def kill(self) -> None:
        try:
            self.stop(mode="immediate", timeout=30)
        except Exception:  # noqa: BLE001 - already stopped
            pass


# ---------------------------------------------------------------------------------------------- processes
def proc_table() -> dict[int, tuple[int, list[str]]]:
    """{pid: (ppid, argv)} of live, non-zombie processes (Linux /proc)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if stat[0] != "Z":
            out[int(entry)] = (int(stat[1]), [a.decode(errors="replace") for a in argv if a])
    return out


def alive(pid: int) -> bool:
    return pid in proc_table()


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> None:
    table = proc_table()
    todo, pids = [pid], []
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += [c for c, (pp, _) in table.items() if pp == p]
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


@dataclass
class Worker:
    """A Celery worker started as the runner starts its own (by a ``infra.local.processes.Supervisor`` of its
    own): the topology's command, the runner's worker environment and working directory, its own process
    group."""

    name: str
    popen: subprocess.Popen
    log: Path
    supervisor: Supervisor

    @property
    def pid(self) -> int:  # the MAIN process (prefork pool children are its children)
        return self.popen.pid

    def stop_like_ecs(self, grace: float) -> threading.Thread:
        """Stop it as the runner stops its processes and ECS a task (``Supervisor.stop``): SIGTERM to the main
        process, up to ``grace`` seconds to exit, then SIGKILL to its process group. Runs in a thread,
        returned: the caller watches the worker meanwhile."""
        stopping = threading.Thread(target=self.supervisor.stop, kwargs={"grace": grace}, daemon=True)
        stopping.start()
        return stopping

    def stop(self, timeout: float = 30) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(timeout=timeout)
        kill_tree(self.popen.pid)  # pool children that survived their parent


class Runner:
    """``python -m infra.local up`` (not ``--once``) as a subprocess: it starts the webserver, the daemon and
    the stack file's workers, runs ``--job`` once, then keeps the topology running until SIGTERM."""

    def __init__(self, state: Path, args: list[str], env: dict[str, str] | None = None, cwd: Path = REPO_ROOT):
        self.state = state
        self.lines: list[str] = []
        self._q: queue.Queue = queue.Queue()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DCA_")} | (env or {})
        argv = [sys.executable, "-m", "infra.local", "up", "--state-dir", str(state), "--port", "0", *args]
        self.popen = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, start_new_session=True)  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()
        self.port: int | None = None
        self.workers: list[Worker] = []

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_running(self, timeout: float = 300) -> None:
        def ready():
            if self.popen.poll() is not None:
                raise AssertionError(f"the runner exited rc={self.popen.returncode}:\n{self.output()}")
            return any(line.startswith("running; Ctrl-C") for line in self.lines)

        wait_for("the runner to run its first job", ready, timeout, interval=0.5)
        m = next(re.search(r"webserver: http://127\.0\.0\.1:(\d+)", l) for l in self.lines if "webserver: http" in l)
        self.port = int(m[1])

    def worker_pid(self, queue_name: str) -> int:
        """The main process of the runner's own worker for ``queue_name`` (a child of the runner)."""
        for pid, (ppid, argv) in proc_table().items():
            if ppid == self.popen.pid and "worker" in argv and "-Q" in argv and argv[argv.index("-Q") + 1] == queue_name:
                return pid
        raise AssertionError(f"no runner worker for queue {queue_name}")

    def start_worker(
        self, queue_name: str, suffix: str, concurrency: int = 1, may_exit: bool = False, extra_args: tuple = ()
    ) -> Worker:
        """An extra worker on ``queue_name``: the topology's worker command (and ``extra_args``), with the node
        name ``<queue>@<suffix>.%h`` (two workers on one host need distinct names), in the runner's app dir with
        the environment of the runner's own worker (read from /proc). Returned once it is ready; ``may_exit``:
        it may already have died by then (a step that kills its worker)."""
        from infra.specs import topology

        template = self.worker_pid("dagster")
        env = dict(
            kv.split("=", 1) for kv in Path(f"/proc/{template}/environ").read_bytes().decode().split("\0") if "=" in kv
        )
        cwd = os.readlink(f"/proc/{template}/cwd")
        argv = [*topology.worker_command(queue_name, concurrency), *extra_args]
        argv[argv.index("-n") + 1] = f"{queue_name}@{suffix}.%h"
        supervisor = Supervisor(Path(cwd), env, self.state / "logs")
        proc = supervisor.start(f"extra-{queue_name}-{suffix}", argv)
        log = proc.log  # logs/extra-<queue>-<suffix>.log
        w = Worker(f"{queue_name}@{suffix}", proc.popen, log, supervisor)
        self.workers.append(w)
        wait_for(f"worker {w.name} to be ready", lambda: w.popen.poll() is not None or b" ready." in log.read_bytes(),
                 120, interval=0.3)  # fmt: skip
        assert may_exit or w.popen.poll() is None, log.read_text(errors="replace")[-3000:]
        return w

    def stop(self, timeout: float = 120) -> None:
        for w in self.workers:
            w.stop()
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                kill_tree(self.popen.pid)
                self.popen.wait(timeout=10)
