"""A TCP proxy the tests put between a client and a server, to cut the connection.

``cut_after`` closes every connection once that many bytes went from client to server
(an upload interrupted midway). :meth:`Proxy.partition` is the worst network partition
for a leader: the server's side of every connection is closed at once (as the server's
TCP keepalive would eventually do, so it frees the session and its locks), while the
client's side stays open and silent: the client gets no error, its queries just never
answer. :meth:`Proxy.heal` drops the silent connections and forwards new ones again.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proxy:
    def __init__(self, target_port: int, *, cut_after: int | None = None) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.partitioned = threading.Event()
        self.stopped = threading.Event()
        self.connections = 0
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()

    def partition(self) -> None:
        """Close the server's side of every connection, keep the client's open and silent,
        and answer new connections with silence too."""
        self.partitioned.set()
        with self._lock:
            servers = [server for _, server in self._pairs]
        for server in servers:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
                server.close()

    def heal(self) -> None:
        """Drop the silent connections (as the far ends' timeouts would) and forward again."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.close()
        self.partitioned.clear()

    def close(self) -> None:
        self.stopped.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        self.heal()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.partitioned.is_set():  # accepted, then silence
                with self._lock:
                    self._pairs.append((client, socket.socket()))
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._pairs.append((client, server))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        sent = 0
        try:
            while not self.stopped.is_set():
                if self.partitioned.is_set():
                    self.stopped.wait(0.1)
                    continue
                ready, _, _ = select.select([client, server], [], [], 0.1)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if self.partitioned.is_set():
                        continue  # swallowed: the partition began mid-read
                    if sock is client:
                        if self.cut_after is not None and sent + len(data) > self.cut_after:
                            server.sendall(data[:self.cut_after - sent])
                            return
                        sent += len(data)
                        server.sendall(data)
                    else:
                        client.sendall(data)
        except (OSError, ValueError):  # ValueError: select() on a socket closed meanwhile
            return
        finally:
            if not self.partitioned.is_set():
                for sock in (client, server):
                    with contextlib.suppress(OSError):
                        sock.close()
