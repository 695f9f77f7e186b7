"""dagster_celery_aws.protection with a real Celery worker (prefork, subprocess) on the real RabbitMQ (own vhost)
and a local HTTP server that records requests as the ECS agent's task-protection endpoint.

Tasks block until the test creates their gate file, so every assertion is made at a known point; waits
are bounded polls.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from celery import Celery

from tests.conftest import wait_for
from dagster_celery_aws import protection

ON = {"ProtectionEnabled": True, "ExpiresInMinutes": 240}
OFF = {"ProtectionEnabled": False}

APP = '''
import os, pathlib, time
from celery import Celery
import dagster_celery_aws.protection as p

app = Celery("dca_prot_app", broker=os.environ["TEST_BROKER"], backend="rpc://")
# Early ack here so a killed child's step is not redelivered (the real config requeues it).
app.conf.update(worker_prefetch_multiplier=1, task_acks_late=False)
p.install()  # as the worker's Celery config module does


@app.task(name="block")
def block(gate_dir, name):
    gate = pathlib.Path(gate_dir)
    (gate / f"{name}.started").write_text(str(os.getpid()))
    deadline = time.monotonic() + 30
    while not (gate / f"{name}.go").exists() and not (gate / "ALL.go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(name)
        time.sleep(0.02)
    return name
'''




class Agent(http.server.BaseHTTPRequestHandler):
    status = 200
    seen: list
    during_put = staticmethod(lambda: None)

    def do_PUT(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, body))
        during_put, type(self).during_put = type(self).during_put, lambda: None
        during_put()  # once
        answer = json.dumps({"protection": {"ProtectionEnabled": body["ProtectionEnabled"]}}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def agent():
    seen: list = []
    handler = type("RecordingAgent", (Agent,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield handler
    server.shutdown()


class Worker:
    def __init__(self, tmp: Path, vhost: str, env: dict[str, str], concurrency: int):
        tmp.mkdir()
        (tmp / "dca_prot_app.py").write_text(APP)
        self.queue = f"steps-{tmp.name}"
        self.gate = tmp / "gate"
        self.gate.mkdir()
        self.state = tmp / "protection.json"
        broker = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("ECS_AGENT_URI", "DCA_"))}
        full_env.update(PYTHONPATH=str(tmp), TEST_BROKER=broker,
                        DCA_PROTECTION_STATE=str(self.state), **env)
        self.log = open(tmp / "worker.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "dca_prot_app", "worker", "-P", "prefork", "-c", str(concurrency),
             "-Q", self.queue, "-n", f"{tmp.name}-{vhost}@localhost", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-l", "INFO"], cwd=tmp, env=full_env, stdout=self.log, stderr=subprocess.STDOUT)
        self.client = Celery(broker=broker, backend="rpc://")

    def send(self, name: str):
        return self.client.send_task("block", args=[str(self.gate), name], queue=self.queue)

    def started(self, name: str) -> int:
        path = self.gate / f"{name}.started"
        wait_for(f"task {name} to start", lambda: path.exists() and path.read_text())
        return int(path.read_text())

    def release(self, name: str):
        (self.gate / f"{name}.go").touch()

    def running(self) -> int:
        return len(json.loads(self.state.read_text() or "{}").get("tasks", [])) if self.state.exists() else 0

    def signal_stop(self):
        (self.gate / "ALL.go").touch()  # unblock any step still waiting
        self.proc.send_signal(signal.SIGQUIT)  # cold shutdown: the assertions are made, no need to wait

    def stop(self):
        if self.log.closed:
            return
        self.signal_stop()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.client.close()
        self.log.close()


@pytest.fixture
def start_worker(tmp_path, vhost):
    workers = []

    def start(env: dict[str, str], concurrency: int = 1) -> Worker:
        workers.append(Worker(tmp_path / f"w{len(workers)}", vhost, env, concurrency))
        return workers[-1]

    yield start
    for worker in workers:  # all at once: each takes ~2 s to exit
        worker.signal_stop()
    for worker in workers:
        worker.stop()


def test_minutes_clamped():
    assert protection.protection_minutes({}) == 240
    assert protection.protection_minutes({"DCA_PROTECTION_MINUTES": "0"}) == 1
    assert protection.protection_minutes({"DCA_PROTECTION_MINUTES": "99999"}) == 2880
    assert protection.protection_minutes({"DCA_PROTECTION_MINUTES": "soon"}) == 240
    assert protection.install({}) is False  # not on ECS: nothing connected


def test_on_while_any_step_runs_off_when_idle_and_after_a_lost_child(agent, start_worker):
    worker = start_worker({"ECS_AGENT_URI": agent.url}, concurrency=2)
    first = worker.send("a")
    worker.started("a")
    wait_for("protection ON", lambda: agent.seen)
    assert agent.seen == [("/task-protection/v1/state", ON)]

    second = worker.send("b")  # runs in the other prefork child
    worker.started("b")
    worker.release("a")
    assert first.get(timeout=10) == "a"
    wait_for("a's end to be recorded", lambda: worker.running() == 1)
    assert [body for _, body in agent.seen] == [ON]  # b still runs: no OFF

    worker.release("b")
    assert second.get(timeout=10) == "b"
    wait_for("protection OFF", lambda: len(agent.seen) >= 2)
    assert [body for _, body in agent.seen] == [ON, OFF]

    # A child killed mid-step (OOM, hard time limit): its replacement turns protection OFF.
    worker.send("c")
    pid = worker.started("c")
    wait_for("protection ON for c", lambda: len(agent.seen) >= 3)
    os.kill(pid, signal.SIGKILL)
    wait_for("protection OFF after the lost child", lambda: len(agent.seen) >= 4)
    assert [body for _, body in agent.seen] == [ON, OFF, ON, OFF]


def test_agent_errors_never_fail_the_step_and_no_agent_no_requests(agent, start_worker):
    agent.status = 500
    failing = start_worker({"ECS_AGENT_URI": agent.url, "DCA_PROTECTION_MINUTES": "99999"})
    # Outside ECS: ECS_AGENT_URI unset (the worker's environment drops the test's own) or blank. Were the hooks
    # connected anyway, they would write the worker's protection state file and log failed agent calls.
    silent = start_worker({"ECS_AGENT_URI": ""})
    for worker, name in ((failing, "x"), (silent, "y")):
        worker.release(name)  # the step finishes as soon as it starts
    assert failing.send("x").get(timeout=20) == "x"
    wait_for("ON and OFF attempts", lambda: len(agent.seen) >= 2)
    assert [body for _, body in agent.seen] == [{"ProtectionEnabled": True, "ExpiresInMinutes": 2880}, OFF]
    before = len(agent.seen)
    # Two steps on one child: the second starts only after the first one's postrun hooks have run.
    assert silent.send("y").get(timeout=20) == "y"
    silent.release("z")
    assert silent.send("z").get(timeout=20) == "z"
    assert len(agent.seen) == before
    assert "could not set ECS task protection" in (failing.gate.parent / "worker.log").read_text()
    assert failing.state.exists() and not silent.state.exists()
    assert "task protection" not in (silent.gate.parent / "worker.log").read_text()


@pytest.fixture
def hooks(agent, tmp_path, monkeypatch):
    """The hooks in this process, against the recording agent, with a 1-minute expiry (renewal after 30 s)."""
    monkeypatch.setattr(protection, "_cfg", {"uri": agent.url, "minutes": 1, "state": str(tmp_path / "state.json")})
    return agent


def test_protection_is_renewed_after_half_its_expiry_while_steps_run(hooks):
    protection._on_prerun(task_id="a")
    assert [body for _, body in hooks.seen] == [{"ProtectionEnabled": True, "ExpiresInMinutes": 1}]
    protection._on_prerun(task_id="b")  # within the half: no call
    assert len(hooks.seen) == 1
    protection._update(lambda s: s.__setitem__("on_at", s["on_at"] - 31))  # 31 s later
    protection._on_postrun(task_id="a")  # b still runs: protection is renewed, not turned off
    assert [body for _, body in hooks.seen][1:] == [{"ProtectionEnabled": True, "ExpiresInMinutes": 1}]
    protection._on_postrun(task_id="b")
    assert [body for _, body in hooks.seen][2:] == [OFF]


def test_a_change_during_the_agent_call_is_sent_after_it(hooks):
    # The last step ends while the agent is being told ON: the state is read again and OFF follows.
    hooks.during_put = lambda: protection._update(lambda s: s.__setitem__("tasks", []))
    protection._on_prerun(task_id="a")
    assert [body for _, body in hooks.seen] == [{"ProtectionEnabled": True, "ExpiresInMinutes": 1}, OFF]
    assert json.loads(Path(protection._cfg["state"]).read_text())["tasks"] == []
