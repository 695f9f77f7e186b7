"""A TCP proxy on 127.0.0.1 whose connections a test can cut: what clients see of a broker restart or a
database failover (every connection reset, new ones refused until the service is back).

``FaultProxy(upstream_port)`` listens on a free port and forwards each connection to 127.0.0.1:upstream_port,
one thread per direction (``_forward``; benchmarks/delay_proxy.py forwards through a delay line instead), with
TCP_NODELAY on both sides, so that the proxy holds back no small write the client or server sent at once.
``cut()`` resets every open connection and refuses new ones (the listening socket is closed, so a connect gets
ECONNREFUSED, as from a rebooting host); ``restore()`` listens again on the same port. Nothing leaves the
loopback interface.

``round_trips`` counts the client's turns: a connection's bytes towards the upstream that follow bytes from it
(or open the connection). A client that waits for each reply before it sends again (psycopg2, py-amqp's
synchronous methods) makes one such turn per network round trip, whatever the TCP segmentation: the proxy
notes the turn before it forwards, so the reply, and with it the client's next send, comes after.
"""

from __future__ import annotations

import socket
import struct
import threading


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.port = 0
        self.accepted = 0  # connections forwarded so far (a test can tell clients reconnected)
        self.round_trips = 0  # the clients' turns so far, over all connections (module docstring)
        self.restore()

    def restore(self) -> None:
        """Accept and forward connections (again) on the proxy's port."""
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(128)
            self.port = listener.getsockname()[1]
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Reset every connection and refuse new ones until ``restore()``."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() in progress; close alone would not
            except OSError:
                pass
            listener.close()
        for s in conns:
            # SO_LINGER 0: the close sends RST, as a host that lost the connection's state does. The shutdown
            # first wakes the pipe thread blocked in recv() on it, which then closes it.
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut()
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
                for s in (client, upstream):
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._conns |= {client, upstream}
                self.accepted += 1
            self._forward(client, upstream)

    def _forward(self, client: socket.socket, upstream: socket.socket) -> None:
        """Pass bytes both ways, a thread per direction; either side's end (or an error) ends the connection."""
        turn = {"client": False}  # whose bytes went last on this connection
        for a, b, is_client in ((client, upstream, True), (upstream, client, False)):
            threading.Thread(target=self._pipe, args=(a, b, turn, is_client), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, turn: dict, is_client: bool) -> None:
        try:
            while data := src.recv(65536):
                with self._lock:
                    if is_client and not turn["client"]:
                        self.round_trips += 1
                    turn["client"] = is_client
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._closed(src, dst)

    def _closed(self, *socks: socket.socket) -> None:
        """End a connection: both sockets shut down (the peers see an end of stream) and closed."""
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        with self._lock:
            self._conns -= set(socks)
