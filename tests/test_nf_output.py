"""An NF's output costs the daemon nothing (issue 15, item 8): a lifecycle script printing
400 MB is read a chunk at a time (the daemon's peak RSS grows < 5 MB), its log in the run dir
is capped and rotated (``sh.LOG_CAP`` × 2), the error text keeps the start and the end of
what it printed, and what a daemon it leaves behind prints later is capped too. Real
daemon, real hostile packages (built in the test); the nft backend is enough."""
from __future__ import annotations

import os
import time

import pytest

import netlab
from conftest import bridge_graph
from unlite import sh

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)"),
              pytest.mark.parametrize("backend", ["nft"], indirect=True)]

LOUD = "echo first line; yes 0123456789abcdef | head -c 400000000; echo; echo last line"


def _hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def _logs(d):
    return {p.name: p.stat().st_size for p in (d.workdir / "run").glob("**/log*")}


def test_a_400_mb_start_script_costs_the_daemon_under_5_mb(nnf_repo, make_daemon):
    repo = nnf_repo("loud", {"start": LOUD + "; exit 0"})
    nnf_repo("loud-failing", {"start": LOUD + "; exit 3"})
    d = make_daemon(nnf_dir=repo)
    d.api("GET", "/NF-FG/")
    before = _hwm_kb(d.proc.pid)
    assert d.api("PUT", "/NF-FG/g1", bridge_graph(nf="loud"))[0] == 201
    with pytest.raises(netlab.ApiError) as e:
        d.api("PUT", "/NF-FG/g2", bridge_graph("g2", ("eth2", "eth3"), nf="loud-failing"))
    grew = _hwm_kb(d.proc.pid) - before
    assert grew < 5 << 10, f"the daemon's peak RSS grew {grew} KB"
    error = e.value.body["error"]
    assert e.value.status == 422 and "exited 3" in error, error
    assert "first line" in error and "last line" in error and "bytes …]" in error, error
    assert len(error) < 4000, f"an error text of {len(error)} characters"
    logs = _logs(d)
    assert logs and max(logs.values()) <= sh.LOG_CAP, logs
    assert sum(logs.values()) <= 4 * sh.LOG_CAP, logs     # log + log.1, of one or two NFs
    d.api("DELETE", "/NF-FG/g1")


def test_what_a_leftover_daemon_prints_is_capped_too(nnf_repo, make_daemon):
    repo = nnf_repo("chatty", {"start": "(while :; do echo still talking; done) & exit 0"})
    d = make_daemon(nnf_dir=repo)
    assert d.api("PUT", "/NF-FG/g1", bridge_graph(nf="chatty"))[0] == 201
    for _ in range(3):
        time.sleep(1)               # it prints MB/s meanwhile
        logs = _logs(d)             # (just rotated, "log" may be not there yet)
        assert "log.1" in logs and max(logs.values()) <= sh.LOG_CAP, logs
        assert sum(logs.values()) <= 2 * sh.LOG_CAP, logs
    d.api("DELETE", "/NF-FG/g1")
