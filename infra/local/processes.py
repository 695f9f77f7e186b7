"""Child processes: each in its own process group with its log file; status lines; a shutdown that leaves
nothing running (process groups, then any descendant that left its group, e.g. a code server or run worker).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from infra.specs.topology import ProcessSpec

STOP_GRACE = 20.0  # seconds between SIGTERM and SIGKILL (a Celery worker finishes its step: warm shutdown)


def local_argv(spec: ProcessSpec, port: int) -> list[str]:
    """The spec's argv, with the one local change: a webserver or Flower binds 127.0.0.1 on ``port``.

    In the image the webserver listens on 0.0.0.0:WEBSERVER_PORT behind the load balancer; here the values
    after ``-h``/``--host`` and ``-p``/``--port`` are replaced, and Flower's ``--port=`` is replaced and
    ``--address=127.0.0.1`` added (no basic auth here: nothing outside this machine reaches it). Every other
    argument is the spec's own.
    """
    argv = list(spec.command)
    if spec.role == "flower":
        return [f"--port={port}" if a.startswith("--port=") else a for a in argv] + ["--address=127.0.0.1"]
    if spec.role == "webserver":
        for i, arg in enumerate(argv[:-1]):
            if arg in ("-h", "--host"):
                argv[i + 1] = "127.0.0.1"
            elif arg in ("-p", "--port"):
                argv[i + 1] = str(port)
    return argv


def _table() -> list[tuple[int, int, int, str]]:
    """(pid, ppid, process group, state) of every process, from /proc (Linux; empty elsewhere)."""
    rows = []
    if not Path("/proc").is_dir():
        return rows
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        rows.append((int(entry), int(fields[1]), int(fields[2]), fields[0]))
    return rows


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for pid, ppid, _, _ in _table():
        kids.setdefault(ppid, []).append(pid)
    return kids


def group_members(groups: set[int]) -> set[int]:
    """Live (non-zombie) processes in these process groups."""
    return {pid for pid, _, pgrp, state in _table() if pgrp in groups and state != "Z"}


def descendants(pid: int) -> list[int]:
    kids, out, todo = _children(), [], [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Proc:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen
    reported_rc: int | None = None
    known: set[int] = field(default_factory=set)  # descendants seen while it ran

    @property
    def pid(self) -> int:
        return self.popen.pid

    def state(self) -> str:
        rc = self.popen.poll()
        return "running" if rc is None else f"exited rc={rc}"


class Supervisor:
    def __init__(self, cwd: Path, env: dict[str, str], logs: Path):
        self.cwd, self.env, self.logs = cwd, env, logs
        self.procs: list[Proc] = []

    def start(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> Proc:
        log = self.logs / f"{name}.log"
        with open(log, "wb") as fh:
            popen = subprocess.Popen(
                argv, cwd=self.cwd, env={**self.env, **(extra_env or {})}, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: Ctrl-C in the terminal reaches only the runner
            )  # fmt: skip
        proc = Proc(name, argv, log, popen)
        self.procs.append(proc)
        return proc

    def run_to_end(self, name: str, argv: list[str], timeout: float) -> int:
        proc = self.start(name, argv)
        try:
            return proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._stop([proc], grace=2)
            return -1
        finally:
            self.procs.remove(proc)

    def status_lines(self) -> list[str]:
        width = max((len(p.name) for p in self.procs), default=0)
        return [f"  {p.name:<{width}}  pid {p.pid:<7} {p.state():<12} log {p.log}" for p in self.procs]

    def newly_exited(self) -> list[Proc]:
        out = []
        for p in self.procs:
            rc = p.popen.poll()
            if rc is None:
                p.known.update(descendants(p.pid))
            elif p.reported_rc is None:
                p.reported_rc = rc
                out.append(p)
        return out

    def stop(self, grace: float = STOP_GRACE, busy=lambda: False) -> None:
        self._stop(list(self.procs), grace, busy)

    def _stop(self, procs: list[Proc], grace: float, busy=lambda: False) -> None:
        """As ECS stops a task: SIGTERM to each main process only -- a Celery worker then stops taking work and
        finishes the steps its pool children run (warm shutdown) -- and up to ``grace`` seconds for them to
        exit and for ``busy()`` to turn false (the runs in flight: on ECS a run is a task of its own, which
        stopping the services does not stop; here its run worker is a child of a code server and would be
        interrupted next). A main process still running then is SIGKILLed with its process group, as ECS
        kills a container past its stopTimeout: a worker's step that outlasts the grace dies mid-way and its
        late-acked message is requeued (a SIGTERM would reach the step first, and Dagster's step execution
        turns it into an interrupt: the step would fail and its message be acknowledged). Then SIGTERM to what
        the mains leave behind (code servers, run workers), and SIGKILL to the rest."""
        for p in procs:
            p.known.update(descendants(p.pid))
        mains = {p.pid for p in procs if p.popen.poll() is None}
        for pid in mains:
            _signal_pid(pid, signal.SIGTERM)
        self._wait(procs, lambda: {p.pid for p in procs if p.popen.poll() is None} or busy(), grace)
        groups = {p.pid for p in procs}  # each child leads its own group (start_new_session)
        for p in procs:
            if p.popen.poll() is None:  # past the grace: killed like a container past its stopTimeout
                _signal_group(p.pid, signal.SIGKILL)
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            left = self._left(procs, groups)
            if not left:
                break
            for group in groups:
                _signal_group(group, sig)
            for pid in left:
                _signal_pid(pid, sig)
            self._wait(procs, lambda: self._left(procs, groups), wait)
        for p in procs:  # reap, so that every status line says how it ended
            try:
                p.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    @staticmethod
    def _left(procs: list[Proc], groups: set[int]) -> set[int]:
        return {pid for p in procs for pid in p.known | {p.pid} if _alive(pid)} | group_members(groups)

    @staticmethod
    def _wait(procs: list[Proc], alive, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for p in procs:
                p.popen.poll()  # reap our direct children
            if not alive():
                return
            time.sleep(0.1)
