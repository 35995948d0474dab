"""Slow clients (slowloris) cannot hold connections: header and body read timeouts, on a
real `driftloop serve`."""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.processes import start_server
from tests.served_model import served_settings_in


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    folder: Path = tmp_path_factory.mktemp("slow")
    proc, url = start_server(served_settings_in(folder), 1,
                             env={"DRIFTLOOP_HEADER_TIMEOUT": "1",
                                  "DRIFTLOOP_BODY_TIMEOUT": "1"})
    try:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _closed(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` (reads EOF or a reset, without blocking long)."""
    sock.settimeout(0.05)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


@pytest.mark.slow
def test_connections_that_trickle_their_headers_are_closed(server: tuple[str, int]) -> None:
    request = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    clients = [socket.create_connection(server) for _ in range(20)]
    try:
        deadline = time.monotonic() + 10
        sent = 0
        while time.monotonic() < deadline and not all(_closed(c) for c in clients):
            for client in clients:  # one byte each, every 0.2 s: never a whole header
                with contextlib.suppress(OSError):  # closed already
                    client.sendall(request[sent % len(request):][:1])
            sent += 1
            time.sleep(0.2)
        assert all(_closed(c) for c in clients), "slow-header connections were held"
        assert sent >= 4  # they were cut for being slow, not at once
        with socket.create_connection(server) as fresh:  # the server still serves
            fresh.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert fresh.recv(1024).startswith(b"HTTP/1.1 200")
    finally:
        for client in clients:
            client.close()


@pytest.mark.slow
def test_a_body_that_stalls_gets_408(server: tuple[str, int]) -> None:
    with socket.create_connection(server) as client:
        client.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                       b"\r\nContent-Length: 100\r\n\r\n{\"features\":")
        client.settimeout(10)
        answer = client.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer


@pytest.mark.slow
def test_a_kept_alive_connection_gets_the_same_header_time_for_its_next_request(
        server: tuple[str, int]) -> None:
    """The timer restarts when a response ends: a client that got its answer and then
    trickles the next request's headers is cut off too, while a pipelined request whose
    headers came with the first one is answered."""
    with socket.create_connection(server) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 2)  # pipelined
        client.settimeout(10)
        answers = b""
        deadline = time.monotonic() + 10
        while answers.count(b"HTTP/1.1 200") < 2 and time.monotonic() < deadline:
            answers += client.recv(4096)
        assert answers.count(b"HTTP/1.1 200") == 2, answers
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nUser-Agent: slow\r\n"
        sent, deadline = 0, time.monotonic() + 10
        while time.monotonic() < deadline and not _closed(client):
            if sent < len(request):  # a byte at a time, never a whole (or invalid) header
                with contextlib.suppress(OSError):
                    client.sendall(request[sent:sent + 1])
                sent += 1
            time.sleep(0.2)
        assert _closed(client), "a kept-alive connection trickling its headers was held"
        assert sent >= 4
