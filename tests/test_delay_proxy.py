"""benchmarks/delay_proxy.py: the delay line the step-path benchmark puts in front of RabbitMQ, PostgreSQL and
the S3 API. Bytes pass complete and in order, ends pass on, a round trip takes at least 2·D, and chunks are
pipelined (checked on the proxy's own per-chunk times under a clock the test moves, so load cannot fail it).
The upstream here is a plain TCP server in the test: the proxy passes bytes and knows no protocol.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

import pytest

from benchmarks.delay_proxy import Clock, DelayProxies, DelayProxy
from tests.conftest import wait_for

TIMEOUT = 20  # s: a guard on every blocking receive, never a measure


class ManualClock(Clock):
    """Time stands still until the test moves it; a sleeper wakes once it has reached its time."""

    def __init__(self):
        self.t = 0.0
        self.reads = 0  # how many times the proxy asked the time
        self._cond = threading.Condition()

    def now(self) -> float:
        with self._cond:
            self.reads += 1
            return self.t

    def sleep_until(self, t: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self.t >= t)

    def advance_to(self, t: float) -> None:
        with self._cond:
            self.t = t
            self._cond.notify_all()


@pytest.fixture
def upstream():
    """A listening socket on 127.0.0.1 standing for the service; ``accept()`` gives the proxy's connection."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(TIMEOUT)
        yield server


def connect(proxy, upstream) -> tuple[socket.socket, socket.socket]:
    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT)
    server_side, _ = upstream.accept()
    server_side.settimeout(TIMEOUT)
    return client, server_side


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        data = sock.recv(min(n - len(buf), 1 << 20))
        assert data, f"end of stream after {len(buf)} of {n} bytes"
        buf += data
    return bytes(buf)


def test_bytes_arrive_complete_and_in_order_both_ways(upstream):
    proxy = DelayProxy(upstream.getsockname()[1], delay=0.001)
    try:
        client, server_side = connect(proxy, upstream)
        up, down = os.urandom(8 << 20), os.urandom(5 << 20)  # many chunks each way, in flight at the same time
        senders = [threading.Thread(target=client.sendall, args=(up,)),
                   threading.Thread(target=server_side.sendall, args=(down,))]  # fmt: skip
        for t in senders:
            t.start()
        assert recv_exactly(server_side, len(up)) == up
        assert recv_exactly(client, len(down)) == down
        for t in senders:
            t.join(TIMEOUT)
    finally:
        proxy.close()


@pytest.fixture(params=["client", "server"])
def ends(request, upstream):
    """(proxy, the side that ends the connection, its peer) through a proxy with a 1 ms delay; the client's
    side or the server's closes."""
    proxy = DelayProxy(upstream.getsockname()[1], delay=0.001)
    try:
        client, server_side = connect(proxy, upstream)
        yield (proxy, client, server_side) if request.param == "client" else (proxy, server_side, client)
    finally:
        proxy.close()


def test_an_end_of_stream_passes_on_and_the_other_way_stays_open(ends):
    proxy, closer, peer = ends
    closer.sendall(b"last words")
    closer.shutdown(socket.SHUT_WR)
    assert recv_exactly(peer, 10) == b"last words"
    assert peer.recv(1) == b""  # the end of stream, after the bytes before it
    peer.sendall(b"reply")  # a half-close: the other direction still carries bytes
    assert recv_exactly(closer, 5) == b"reply"
    peer.close()
    assert closer.recv(1) == b""


def test_a_reset_ends_the_other_side(ends):
    proxy, closer, peer = ends
    closer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    closer.close()  # SO_LINGER 0: an RST, as from a process killed mid-connection
    assert peer.recv(1) == b""
    wait_for("the proxy to drop the connection", lambda: not proxy._conns)


def test_a_round_trip_through_the_proxy_process_takes_at_least_two_delays(upstream):
    delay = 0.002
    echoes = 50
    with DelayProxies(delay * 1000, [("127.0.0.1", upstream.getsockname()[1])]) as proxies:
        port = proxies.ports[("127.0.0.1", upstream.getsockname()[1])]
        client = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server_side, _ = upstream.accept()
        server_side.settimeout(TIMEOUT)
        times = []
        for i in range(echoes):
            t0 = time.monotonic()
            client.sendall(bytes([i]))
            server_side.sendall(recv_exactly(server_side, 1))
            assert recv_exactly(client, 1) == bytes([i])
            times.append(time.monotonic() - t0)
        client.close()
    assert len(times) == echoes
    assert min(times) >= 2 * delay, f"a round trip took {min(times) * 1000:.3f} ms, less than 2·D"
    assert proxies.stats["late"]["chunks"] == 2 * echoes  # one chunk each way per echo, each counted


def test_back_to_back_chunks_are_in_the_line_together_and_leave_at_their_own_due_time(upstream):
    """The property that makes it a delay line: a chunk is read while the one before still waits, and leaves D
    after it was read, not D after the one before it left. Time moves only when the test moves it."""
    clock, trace, d = ManualClock(), [], 1.0
    proxy = DelayProxy(upstream.getsockname()[1], delay=d, clock=clock, trace=trace)
    try:
        client, server_side = connect(proxy, upstream)
        # The proxy takes the connection's opening time once it has connected upstream, which may be after the
        # service accepted: only then may time move.
        wait_for("the proxy to take the connection's opening time", lambda: clock.reads >= 1)
        clock.advance_to(10.0)  # well past the connection's handshake (3·D)
        chunks = [b"first", b"second", b"third"]
        for n, chunk in enumerate(chunks, 1):
            client.sendall(chunk)
            # Read while every chunk before it is still in the line (time stands still: none is due yet).
            wait_for(f"the proxy to read chunk {n}", lambda n=n: len(trace) == n)
        assert [sent for _, _, sent, _ in trace] == [None] * len(chunks)
        clock.advance_to(10.0 + d)
        assert recv_exactly(server_side, sum(map(len, chunks))) == b"".join(chunks)
        wait_for("every chunk to be marked sent", lambda: all(c[2] is not None for c in trace))
        assert [(read, due, sent, size) for read, due, sent, size in trace] == [
            (10.0, 10.0 + d, 10.0 + d, len(c)) for c in chunks
        ]
    finally:
        clock.advance_to(float("inf"))  # wakes the senders so that they can end
        proxy.close()


def test_a_new_connections_first_bytes_wait_for_the_handshake(upstream):
    clock, trace, d = ManualClock(), [], 1.0
    proxy = DelayProxy(upstream.getsockname()[1], delay=d, clock=clock, trace=trace)
    try:
        client, server_side = connect(proxy, upstream)
        client.sendall(b"hello")
        wait_for("the proxy to read the first bytes", lambda: trace)
        assert trace[0][:2] == [0.0, 3 * d]  # SYN, SYN-ACK, then the data: 3·D after connect
        clock.advance_to(3 * d)
        assert recv_exactly(server_side, 5) == b"hello"
    finally:
        clock.advance_to(float("inf"))
        proxy.close()
