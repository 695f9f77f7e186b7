"""A TCP delay line on 127.0.0.1: what a network with a round-trip time of 2·D does to the clients of RabbitMQ,
PostgreSQL and the S3 API, so that the step-path benchmark pays for its round trips as on AWS (0.5-1 ms within
a region), where on this machine a round trip costs tens of microseconds.

    python benchmarks/delay_proxy.py --delay-ms 0.5 --forward 127.0.0.1:5672 --forward 127.0.0.1:5432

prints one line per forward, ``127.0.0.1:5672 127.0.0.1:<port>`` (the service, then where to reach it through
the line), and forwards until SIGTERM or Ctrl-C; then it prints one JSON line: how many chunks it passed and
how late after their due time they left. ``DelayProxies`` starts and stops such a process from Python.

What it emulates, per connection and direction: every chunk read from one side is written to the other D after
it was read, in order, while the next chunks are read meanwhile. It is a delay line, not a rate limit: N chunks
sent back to back arrive about D after they were sent, not N·D. A new connection's first bytes also wait for
the handshake a TCP connection pays before its first byte (one round trip; the client's connect itself returns
at once, here on the loopback); TLS is not emulated. An end of stream is passed on D after it was read (a
half-close stays a half-close); an error on either side ends both sides D later. Bandwidth and loss are not
emulated.

Why threads and not asyncio: asyncio's selector rounds every epoll timeout up to a whole millisecond
(Lib/selectors.py, ``EpollSelector.select``: "epoll_wait() has a resolution of 1 millisecond, round away from
zero"), a delay of 0.5 ms would become 1 ms. Each direction here is a reader thread, which stamps each chunk
with its due time and queues it, and a sender thread, which sleeps until that due time and writes it;
``time.sleep`` is ``clock_nanosleep`` on Linux (Modules/timemodule.c, ``pysleep``), late by tens of
microseconds once the process's timer slack is 1 ns and its threads run real-time (``precise_scheduling``;
benchmarks/README.md has the measured lateness). It runs in a process of its own, so that it shares no GIL with
the processes whose round trips it delays. Connections are accepted and tracked by tests/fault_proxy.py's
``FaultProxy``, whose forwarding this class replaces.
"""

from __future__ import annotations

import argparse
import bisect
import ctypes
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT)]

from tests.fault_proxy import FaultProxy  # noqa: E402 - after the repository root is on sys.path

LATE_BUCKET = 10e-6  # lateness is counted in buckets of 10 µs
PR_SET_TIMERSLACK = 29  # <linux/prctl.h>


class Clock:
    """The time the delay line runs on: ``time.monotonic``; tests give one they advance themselves."""

    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, t: float) -> None:
        while (wait := t - time.monotonic()) > 0:
            time.sleep(wait)


class DelayProxy(FaultProxy):
    """``FaultProxy`` whose connections pass through a delay line of ``delay`` seconds each way.

    ``trace``, if a list, gets one ``[read_at, due, sent_at, size]`` per chunk as it is read (in the clock's
    time; ``sent_at`` None until it left): what the tests check the line by. ``late`` counts every chunk by how
    long after its due time it left."""

    def __init__(self, upstream_port: int, delay: float, upstream_host: str = "127.0.0.1",
                 clock: Clock | None = None, trace: list | None = None):  # fmt: skip
        self.delay, self.clock, self.trace = delay, clock or Clock(), trace
        self.late: Counter[int] = Counter()  # {lateness // LATE_BUCKET: chunks}
        self._late_lock = threading.Lock()
        super().__init__(upstream_port, upstream_host)

    def _forward(self, client: socket.socket, upstream: socket.socket) -> None:
        # The handshake: the client's first bytes leave once its SYN and the SYN-ACK have crossed (2·D), the
        # server's once the client's ACK has (3·D).
        opened, d = self.clock.now(), self.delay
        open_directions = [2]
        lock = threading.Lock()

        def finished() -> None:
            with lock:
                open_directions[0] -= 1
                last = open_directions[0] == 0
            if last:
                self._closed(client, upstream)

        for src, dst, not_before in ((client, upstream, opened + 2 * d), (upstream, client, opened + 3 * d)):
            line: queue.SimpleQueue = queue.SimpleQueue()
            threading.Thread(target=self._read, args=(src, line, not_before), daemon=True).start()
            threading.Thread(target=self._send, args=(line, src, dst, finished), daemon=True).start()

    def _read(self, src: socket.socket, line: queue.SimpleQueue, not_before: float) -> None:
        """Queue each chunk read from ``src`` with its due time; last, the end: b"" (end of stream) or None."""
        try:
            while data := src.recv(65536):
                now = self.clock.now()
                chunk = [now, max(now, not_before) + self.delay, None, len(data)]
                if self.trace is not None:
                    self.trace.append(chunk)
                line.put((chunk, data))
            end = b""
        except OSError:
            end = None
        now = self.clock.now()
        line.put(([now, max(now, not_before) + self.delay, None, 0], end))

    def _send(self, line: queue.SimpleQueue, src: socket.socket, dst: socket.socket, finished) -> None:
        """Write each chunk to ``dst`` at its due time; pass the end on, then report this direction finished."""
        while True:
            chunk, data = line.get()
            self.clock.sleep_until(chunk[1])
            chunk[2] = self.clock.now()
            if not data:
                break
            with self._late_lock:
                self.late[int((chunk[2] - chunk[1]) / LATE_BUCKET)] += 1
            try:
                dst.sendall(data)
            except OSError:
                data = None
                break
        if data is None:  # an error on either side: end both now (the reader of src stops too)
            self._closed(src, dst)
        else:  # end of stream: a half-close, as TCP passes a FIN on
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        finished()


def lateness(counts: Counter[int]) -> dict:
    """{chunks, p50_ms, p99_ms, max_ms}: how long after their due time chunks left (upper bucket edges)."""
    keys = sorted(counts)
    total = sum(counts.values())
    if not total:
        return {"chunks": 0}
    cumulative = [0]
    for k in keys:
        cumulative.append(cumulative[-1] + counts[k])

    def at(q: float) -> float:
        i = bisect.bisect_left(cumulative, q * total) - 1
        return round((keys[max(i, 0)] + 1) * LATE_BUCKET * 1000, 3)

    return {"chunks": total, "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0)}


def precise_scheduling() -> bool:
    """Wake this process's threads on time; called before any thread starts, since a new thread takes its
    creator's timer slack and scheduling policy (prctl(2), sched(7)). Returns whether it runs real-time.

    - Timer slack 1 ns: the kernel may wake a sleeping thread up to its "timer slack" late (50 µs by default) to
      group wake-ups. Measured here at D = 0.5 ms: median lateness 0.10 -> 0.05 ms.
    - ``SCHED_FIFO`` priority 1, where allowed (root or CAP_SYS_NICE): a woken thread runs before every ordinary
      process, as a network does not wait for the hosts' CPUs. During a benchmark that keeps both CPUs busy,
      lateness p99 went 3.3 -> 0.16 ms (max 25 -> 1.1 ms); ``nice -10`` alone left it at 3.3 ms. The threads
      only ever block (recv, queue, sleep) between short copies, and the kernel caps real-time threads at 95 %
      of each CPU (``sched_rt_runtime_us``)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        return True
    except PermissionError:
        return False


def parse_target(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


class DelayProxies:
    """A ``delay_proxy.py`` process forwarding to ``targets`` [(host, port)]: ``ports[target]`` is where to
    connect instead; ``stop()`` ends it and keeps its lateness figures in ``stats``."""

    def __init__(self, delay_ms: float, targets: list[tuple[str, int]]):
        argv = [sys.executable, str(Path(__file__).resolve()), "--delay-ms", str(delay_ms)]
        for host, port in targets:
            argv += ["--forward", f"{host}:{port}"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.ports: dict[tuple[str, int], int] = {}
        for _ in targets:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait(10)
                raise RuntimeError(f"delay_proxy.py exited rc={self.proc.returncode} before listening")
            target, listen = line.split()
            self.ports[parse_target(target)] = parse_target(listen)[1]
        self.stats: dict = {}

    def stop(self) -> dict:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            out, _ = self.proc.communicate(timeout=10)
            self.stats = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        return self.stats

    def __enter__(self) -> DelayProxies:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--delay-ms", type=float, required=True, help="one-way delay D in milliseconds (round trip 2·D)")
    p.add_argument("--forward", action="append", required=True, metavar="HOST:PORT", help="a service to forward to (repeatable)")
    args = p.parse_args(argv)
    realtime = sys.platform == "linux" and precise_scheduling()
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # before any thread starts: they inherit the mask
    proxies = []
    for target in args.forward:
        host, port = parse_target(target)
        proxies.append(DelayProxy(port, args.delay_ms / 1000, upstream_host=host))
        print(f"{host}:{port} 127.0.0.1:{proxies[-1].port}", flush=True)
    signal.sigwait(stop_signals)
    late: Counter[int] = Counter()
    for proxy in proxies:
        proxy.close()
        late.update(proxy.late)
    print(json.dumps({"delay_ms": args.delay_ms, "realtime": realtime, "late": lateness(late)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
