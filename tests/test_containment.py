"""Hostile NNFs are contained (issue 15, item 5): everything an NF starts is in its own
cgroups, wherever it goes (DELETE kills it by cgroup and removes the groups), an NF with no
``limits`` gets the node's default memory and pids caps, and its scripts see the host
read-only but for their own run dir, with a private /tmp."""
from __future__ import annotations

import os
import signal
import time

import pytest

import netlab
from conftest import bridge_graph
from unlite.compute.cgroup import freezer, limits

root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")

BRIDGE = (netlab.ROOT / "nnf" / "bridge" / "start").read_text().split("\n", 1)[1]


@pytest.fixture
def backend():
    """Containment does not depend on the steering backend: nft only."""
    return "nft"


def _groups(ns):
    kind, v2 = freezer.hierarchy()
    roots = {root for _, root in limits._roots().values()} | ({v2} if kind == "v2" else set())
    return [os.path.join(root, "unlite", ns) for root in roots]


def _wait_file(path, tries=100):
    for _ in range(int(tries * netlab.SLACK)):
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written")


def _alive(pid, wait=True):
    """Is ``pid`` running (not gone, not a zombie its reaper has not waited for yet)?"""
    for _ in range(20 if wait else 1):
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        if state in "ZX":
            return False
        time.sleep(0.05)
    return True


@root
@pytest.mark.parametrize("caps, adopted", [(None, False), ({"memory": "16M", "pids": 20}, False),
                                           (None, True)], ids=["default", "limits", "adopted"])
def test_delete_kills_a_process_that_left_the_nf_namespace(gateway, nnf_repo, make_daemon, caps,
                                                           adopted):
    """A start script double-forks a process that enters the node's own network namespace
    (``nsenter``): it is no longer in the NF's namespace, but still in its cgroups, and
    DELETE kills it and removes every group of the NF, quickly — also when a restarted
    daemon adopted the NF (it keeps its groups, untouched)."""
    escape = BRIDGE + """
( setsid nsenter --net="$NODE_NET" sh -c 'echo $$ > "$0/escaped.pid"; exec sleep 600' \
    "$UNLITE_RUN_DIR" </dev/null >/dev/null 2>&1 & )
exit 0
"""
    repo = nnf_repo("escape", {"start": escape}, **({"limits": caps} if caps else {}))
    d = make_daemon(nnf_dir=repo, extra=("--on-exit", "keep"))
    d.api("PUT", "/NF-FG/g", bridge_graph("g", nf="escape",
                                         env={"NODE_NET": f"/proc/{d.proc.pid}/ns/net"}))
    ns = d.api("GET", "/NF-FG/status/g")[1]["VNFs"][0]["netns"]
    pid = int(_wait_file(d.workdir / "run" / "nf" / ns / "escaped.pid"))
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/proc/{d.proc.pid}/ns/net").st_ino
    assert pid not in [int(p) for p in netlab.sh("ip", "netns", "pids", ns).stdout.split()]
    groups = _groups(ns)
    assert any(os.path.isdir(g) for g in groups), "the NF has cgroups, limits or not"
    if adopted:
        os.kill(d.proc.pid, signal.SIGTERM)           # --on-exit keep: the NF runs on
        assert d.proc.wait(timeout=30) == 0, d.log()
        d.killed = True
        d = d.restarted()
        assert "graph g: adopted" in d.log(), d.log()
        assert _alive(pid, wait=False) and all(os.path.isdir(g) for g in groups
                                               if os.path.isdir(os.path.dirname(g)))
    try:
        t0 = time.monotonic()
        d.api("DELETE", "/NF-FG/g")
        took = time.monotonic() - t0
    finally:
        if adopted:
            d.stop()
    print(f"DELETE of an NF with an escaped process ({'limits' if caps else 'default caps'}"
          f"{', adopted' if adopted else ''}): {took * 1e3:.0f} ms")
    assert not _alive(pid), "the escaped process is killed"
    assert not any(os.path.isdir(g) for g in groups), "no cgroup of the NF remains"
    assert took < 1.5 * netlab.SLACK, f"DELETE took {took:.1f} s"


@root
@pytest.mark.kernel
def test_an_nf_without_limits_is_capped_by_the_node_default(gateway, nnf_repo, make_daemon):
    """No ``limits`` in the template: the node's default memory cap (64M) still holds, so
    allocating 200 MB is OOM-killed inside the NF's group while the daemon and another
    graph's NF go on; ``--nf-memory 0`` would lift it."""
    gw = gateway
    for i in (0, 2):
        gw.addr(i, "10.20.0.1/24")
        gw.addr(i + 1, "10.20.0.2/24")
    hog = BRIDGE + """
rc=0; dd if=/dev/zero of=/dev/null bs=200M count=1 2>/dev/null || rc=$?     # (set -e above)
echo $rc > "$UNLITE_RUN_DIR/dd.rc"
exit 0
"""
    repo = nnf_repo("hog", {"start": hog})
    d = make_daemon(nnf_dir=repo)
    d.api("PUT", "/NF-FG/ok", bridge_graph("ok", ("eth2", "eth3")))
    d.api("PUT", "/NF-FG/g", bridge_graph("g", nf="hog"))
    ns = d.api("GET", "/NF-FG/status/g")[1]["VNFs"][0]["netns"]
    assert _wait_file(d.workdir / "run" / "nf" / ns / "dd.rc") == "137", \
        "the 200 MB hog was OOM-killed in its group"
    assert gw.ping(0, "10.20.0.2"), "the hog's NF still bridges"
    assert gw.ping(2, "10.20.0.2"), "the other graph's NF is untouched"
    assert d.api("GET", "/healthz")[1]["status"] == "ok"
    d.api("DELETE", "/NF-FG/g")
    assert not any(os.path.isdir(g) for g in _groups(ns))


def test_default_caps_from_the_command_line_or_uci():
    """``--nf-memory``/``--nf-pids`` (UCI ``nf_memory``/``nf_pids``): the caps of an NF whose
    template sets none; 0 lifts one; a bad value is a clear error naming the setting. A
    template's own limits win over the default."""
    from unlite.cli import default_limits
    assert default_limits("64M", "128") == {"memory": 64 << 20, "pids": 128}
    assert default_limits("0", "0") == {}
    for memory, pids, flag in (("1K", "1", "--nf-memory"), ("lots", "1", "--nf-memory"),
                               ("64M", "-1", "--nf-pids"), ("64M", "many", "--nf-pids")):
        with pytest.raises(ValueError, match=flag):
            default_limits(memory, pids)
    have = limits._roots()
    eff = limits.effective({"memory": 32 << 20}, {"memory": 64 << 20, "pids": 128})
    assert eff.get("memory") == 32 << 20, "the template's own limit wins"
    assert ("pids" in eff) == ("pids" in have), "a default only where the node can enforce it"
    assert limits.effective({}, {}) == {}


@root
def test_an_nf_cannot_write_outside_its_run_dir(gateway, nnf_repo, make_daemon, tmp_path):
    """The start script writes to /etc, over a host file in /tmp, into its package folder
    and beside the daemon's state: each write fails (read-only) or lands in its private /tmp;
    the host's files are unchanged. Its run dir is writable, /proc/sys/net too, and the NF
    still bridges."""
    gw = gateway
    gw.addr(0, "10.20.0.1/24")
    gw.addr(1, "10.20.0.2/24")
    token = os.urandom(4).hex()
    etc, host_tmp = f"/etc/unlite-hostile-{token}", f"/tmp/unlite-hostile-{token}"
    with open(host_tmp, "w") as f:
        f.write("host\n")
    hostile = BRIDGE + f"""
out=$UNLITE_RUN_DIR/out
try() {{
    if sh -c "$2" 2>/dev/null; then echo "$1 written" >> $out; else echo "$1 refused" >> $out; fi
}}
try etc 'echo evil > {etc}'
try tmp 'echo evil > {host_tmp}'
try pkg 'echo evil > "$UNLITE_PKG_DIR/evil"'
try state 'echo evil > {tmp_path}/evil'
try sysctl 'echo 1 > /proc/sys/net/ipv4/ip_forward'
grep -q evil {host_tmp} && echo "tmp private" >> $out
echo done >> $out
exit 0
"""
    repo = nnf_repo("hostile", {"start": hostile})
    d = make_daemon(nnf_dir=repo)
    try:
        d.api("PUT", "/NF-FG/g", bridge_graph("g", nf="hostile"))
        ns = d.api("GET", "/NF-FG/status/g")[1]["VNFs"][0]["netns"]
        st = d.api("GET", "/NF-FG/status/g")[1]["VNFs"][0]
        out = (d.workdir / "run" / "nf" / ns / "out").read_text().split("\n")
        assert st["state"] == "Active", st
        state = "state refused" if not str(tmp_path).startswith("/tmp/") else \
            "state written"                   # under /tmp: into the NF's own /tmp
        assert out[:-1] == ["etc refused", "tmp written", "pkg refused", state,
                            "sysctl written", "tmp private", "done"], out
        assert not os.path.exists(etc), "/etc is unchanged"
        assert open(host_tmp).read() == "host\n", "the host's /tmp file is unchanged"
        assert not (tmp_path / "evil").exists()
        pkgs = list((d.workdir / "run" / "pkg").glob("*/evil"))
        assert not pkgs, "the package folder is unchanged"
        assert gw.ping(0, "10.20.0.2"), "the NF still bridges"
        d.api("DELETE", "/NF-FG/g")
    finally:
        for f in (etc, host_tmp):
            try:
                os.unlink(f)
            except FileNotFoundError:
                pass


def test_only_groups_unlite_makes_are_killed_or_removed():
    """A record's cgroup paths are checked before anything is killed or removed: only
    ``<cgroup mount>/unlite/ul…/cgroup.procs``, never a root group, another folder or a
    path that climbs out (a tampered record kills nothing)."""
    mounts = [mnt for mnt, fs, _ in freezer._mounts() if fs in ("cgroup", "cgroup2")]
    if not mounts:
        pytest.skip("no cgroup file system mounted")
    root = mounts[0]
    ok = f"{root}/unlite/ul1234-g-nf1-abcdef/cgroup.procs"
    assert limits._unlite_group(ok)
    for bad in (f"{root}/cgroup.procs", f"{root}/unlite/cgroup.procs",
                f"{root}/system.slice/ul1234/cgroup.procs", f"{root}/unlite/sshd/cgroup.procs",
                f"{root}/unlite/ul1234/../../cgroup.procs", "/tmp/unlite/ul1234/cgroup.procs",
                f"{root}/unlite/ul1234/tasks", f"{root}/x/unlite/ul1234/cgroup.procs"):
        assert not limits._unlite_group(bad), bad
    assert limits.kill([f"{root}/cgroup.procs"], wait=0) is True, "nothing killed"


def test_files_etc_links_into_tmp_stay_visible(tmp_path):
    """OpenWrt's /etc/resolv.conf links to /tmp/resolv.conf.d/…: the file it points to is
    kept (read-only) in the NF's private /tmp; a link elsewhere or to nothing is not."""
    from unlite.compute import jail
    real = tmp_path / "resolv.conf.auto"
    real.write_text("nameserver 192.0.2.53\n")
    link = tmp_path / "resolv.conf"
    link.symlink_to(real)
    want = [str(real.resolve())] if str(real.resolve()).startswith("/tmp/") else []
    assert jail.kept([str(link)]) == want
    assert jail.kept([str(tmp_path / "none")]) == []
    assert jail.kept(["/etc/hostname"]) == []
    assert set(jail.env()) == {"UNLITE_TMP_SIZE", "UNLITE_TMP_KEEP"}
