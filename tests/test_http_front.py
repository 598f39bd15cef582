"""The HTTP front under hostile clients (issue 15, item 1): idle sockets, slowloris heads,
header floods and half-sent requests never stop ``/healthz`` or another client's GET, are cut
off early, and leave the daemon's threads and sockets bounded. Against a real daemon in the
gateway's namespace (the attackers are ``tools/attack.py``); the nft backend is enough, the
front does not depend on it. Latency figures with and without attack: ``make soak``."""
from __future__ import annotations

import os
import resource
import socket
import time

import pytest

import attack
import netlab

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)"),
              pytest.mark.parametrize("backend", ["nft"], indirect=True)]


@pytest.fixture(autouse=True)
def _many_fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _fds_threads(pid):
    with open(f"/proc/{pid}/status") as f:
        threads = next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
    return len(os.listdir(f"/proc/{pid}/fd")), threads


def _probe(d, n=60):
    """``n`` calls (/healthz and a GET of the graph list, alternately): their latencies.
    Any failure (timeout included) fails the test."""
    lat = []
    for i in range(n):
        t = time.perf_counter()
        d.api("GET", "/healthz" if i % 2 else "/NF-FG/", timeout=5)
        lat.append(time.perf_counter() - t)
        time.sleep(0.02)
    return sorted(lat)


def _in_ns(d, fn, *args):
    return d.pool.submit(fn, *args).result()


def test_idle_slow_flooding_and_half_sent_clients_never_stop_reads(make_daemon):
    d = make_daemon()
    with attack.Attack(d.port, d.ns, idle=500, slow=4, flood=2, half=100) as a:
        deadline = time.monotonic() + 10
        while a.made["idle"] < 500 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)                           # all of them at the door
        lat = _probe(d)
        fds, threads = _fds_threads(d.proc.pid)
    p99 = lat[int(0.99 * (len(lat) - 1))]
    assert p99 < 0.5, f"p99 {p99 * 1000:.0f} ms under attack ({a.made}, {a.answers})"
    assert a.answers[431] >= 1, a.answers       # the floods were refused at the door
    # the hard bound: 128 connections + 128 accepted ahead of the doorman, and a few
    assert fds < 300, f"{fds} fds open under attack"
    assert threads <= 24, f"{threads} threads under attack"
    time.sleep(1)
    assert _fds_threads(d.proc.pid)[0] < 64, "connections left open after the attack"


def _wait_closed(sock, within):
    """(seconds until the server closed ``sock``, what it sent first)."""
    sock.settimeout(within)
    t = time.monotonic()
    try:
        data = sock.recv(4096)
    except socket.timeout:
        data = None
    return time.monotonic() - t, data


def test_idle_and_slow_clients_are_cut_off_early(make_daemon):
    d = make_daemon()

    def idle():
        with socket.create_connection(("127.0.0.1", d.port)) as s:
            return _wait_closed(s, 15)

    def slowloris():
        with socket.create_connection(("127.0.0.1", d.port)) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
            t = time.monotonic()
            try:
                while time.monotonic() - t < 20:
                    s.sendall(b"X-Slow: 1\r\n")
                    time.sleep(0.5)
            except OSError:                     # the server closed it
                pass
            return time.monotonic() - t, s.recv(4096)

    took, data = _in_ns(d, idle)
    assert data == b"" and took < 8, f"an idle connection stayed open {took:.1f} s"
    took, data = _in_ns(d, slowloris)
    assert took < 13 and data.split()[1] == b"408", (took, data[:80])


def test_one_address_cannot_take_every_connection(make_daemon, gateway):
    """Beyond loopback, one client address holds at most 16 connections: its oldest go,
    everyone else's stay."""
    netlab.sh("ip", "-n", gateway.ns, "addr", "add", "10.77.0.1/32", "dev", "lo")
    netlab.sh("ip", "-n", gateway.ns, "addr", "add", "10.77.0.2/32", "dev", "lo")
    d = make_daemon()

    def conn(source):
        s = socket.socket()
        s.bind((source, 0))
        s.connect(("127.0.0.1", d.port))
        return s

    def request(s):
        s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
        s.settimeout(5)
        return b"".join(iter(lambda: s.recv(4096), b"")).split(b" ", 2)[1]

    other = [_in_ns(d, conn, "10.77.0.2") for _ in range(8)]
    hog = [_in_ns(d, conn, "10.77.0.1") for _ in range(60)]
    time.sleep(0.5)
    closed = [_wait_closed(s, 0.05)[1] == b"" for s in hog]
    assert sum(not c for c in closed) == 16 and all(closed[:44]), closed
    assert all(_wait_closed(s, 0.05)[1] is None for s in other), "the other client lost some"
    assert _in_ns(d, request, other[0]) == b"200"
    assert _in_ns(d, request, _in_ns(d, conn, "10.77.0.1")) == b"200"
    for s in other + hog:
        s.close()
