"""ECS task scale-in protection driven by Celery signals: a worker task that runs a step is protected.

``install()`` (called from the worker's Celery config module) connects the hooks. Protection goes ON
(``PUT $ECS_AGENT_URI/task-protection/v1/state``, docs/facts.md) when a step starts in an idle worker and OFF
when the last running step of the whole worker ends. Prefork children share the set of running steps
through one JSON file per container, updated under ``flock``: the kernel releases the lock of a process that
dies (no deadlock after a SIGKILL), and it works with any pool start method. Entries are (pid, process start
time, task id); those of dead processes (a child killed mid-step) are dropped, and the replacement child
the pool starts turns protection OFF if nothing else runs. After each agent call the state is re-read and
the call repeated if it changed meanwhile, so racing starts/ends leave the agent with the final state.
Protection expires after DCA_PROTECTION_MINUTES; it is renewed when a step starts or ends after half of
that, so set it above the longest single step. No ECS_AGENT_URI (not on ECS): nothing is connected.
Agent errors are logged and never fail a step.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
import urllib.request

log = logging.getLogger(__name__)
_cfg: dict = {}


def protection_minutes(env=os.environ) -> int:
    try:
        minutes = int(env.get("DCA_PROTECTION_MINUTES", "240"))
    except ValueError:
        minutes = 240
    return max(1, min(2880, minutes))  # the agent accepts 1..2880


def _start_time(pid: int) -> str | None:
    """Start time of a live (non-zombie) process, None otherwise: (pid, start) survives pid reuse."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def _update(change) -> tuple[bool, bool, bool, dict]:
    """Apply change(state) under the file lock; return (dropped dead entries, active before, after, state)."""
    with open(_cfg["state"], "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        try:
            state = json.loads(f.read() or "{}")
        except ValueError:
            state = {}
        live = [t for t in state.get("tasks", []) if _start_time(t[0]) == t[1]]
        dropped, before = len(live) != len(state.get("tasks", [])), bool(live)
        state["tasks"] = live
        change(state)
        f.seek(0)
        f.truncate()
        f.write(json.dumps(state))
        return dropped, before, bool(state["tasks"]), state


def _put(enabled: bool) -> bool:
    body = {"ProtectionEnabled": enabled, **({"ExpiresInMinutes": _cfg["minutes"]} if enabled else {})}
    req = urllib.request.Request(f"{_cfg['uri']}/task-protection/v1/state", data=json.dumps(body).encode(),
                                 method="PUT", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            answer = json.loads(resp.read() or b"{}")
        if isinstance(answer, dict) and answer.get("failure"):  # e.g. a task that is not part of a service
            log.warning("ECS agent refused task protection %s: %s", enabled, answer["failure"])
        return True
    except Exception as exc:  # HTTPError (403 without ecs:UpdateTaskProtection, 5xx), timeouts, refused
        log.warning("could not set ECS task protection to %s: %s", enabled, exc)
        return False


def _reconcile(active: bool) -> None:
    for _ in range(5):
        if not _put(active):
            return
        if active:
            _update(lambda s: s.__setitem__("on_at", time.time()))
        now = _update(lambda s: None)[2]
        if now == active:
            return
        active = now


def _renew_due(state: dict) -> bool:
    return time.time() - state.get("on_at", 0) > _cfg["minutes"] * 30  # half the expiry, in seconds


def _guard(hook):
    def wrapper(*args, **kwargs):
        try:
            hook(*args, **kwargs)
        except Exception:
            log.exception("task protection hook failed; the step is not affected")
    return wrapper


@_guard
def _on_prerun(task_id=None, **_):
    me = [os.getpid(), _start_time(os.getpid()), task_id]
    _, before, _, state = _update(lambda s: s["tasks"].append(me))
    if not before or _renew_due(state):
        _reconcile(True)


@_guard
def _on_postrun(task_id=None, **_):
    pid = os.getpid()
    _, _, after, state = _update(lambda s: s.__setitem__(
        "tasks", [t for t in s["tasks"] if not (t[0] == pid and t[2] == task_id)]))
    if not after or _renew_due(state):
        _reconcile(after)


@_guard
def _on_process_init(**_):
    dropped, _, after, _ = _update(lambda s: None)  # drops the entries of dead children
    if dropped and not after:
        _reconcile(False)


def install(env=os.environ) -> bool:
    """Connect the hooks when running on ECS; return whether they were connected."""
    uri = env.get("ECS_AGENT_URI")
    if not uri:
        return False
    from celery import signals

    _cfg.update(uri=uri.rstrip("/"), minutes=protection_minutes(env),
                state=env.get("DCA_PROTECTION_STATE", "/tmp/dca-task-protection.json"))
    for signal, hook in ((signals.task_prerun, _on_prerun), (signals.task_postrun, _on_postrun),
                         (signals.worker_process_init, _on_process_init)):
        signal.connect(hook, weak=False, dispatch_uid=f"dca-protection-{signal.name}")  # idempotent
    return True
