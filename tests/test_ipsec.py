"""The ipsec-client NNF in the paper's Fig. 4 testbed, for real: source → CPE (unlite, graph
eth0 → ipsec-client → eth1) → VPN server (strongSwan responder) → sink.

Namespaces (the ``gateway`` fixture's): gw = the CPE, h1 = the source, h2 = the VPN server,
plus a sink behind h2. Packets carrying a marker go from source to sink; tcpdump on the WAN
link (CPE ↔ VPN server) must see IKE and ESP-in-UDP only, never the marker, while a capture
on the sink's link — the same method, on a cleartext segment — does see it.

Skipped, with the reason printed, only when strongSwan is absent (CI installs it: the
packages are ``tools/ipsec_lab.DEBIAN_PACKAGES``, ``tools/ipsec-deps.sh`` installs them).
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import struct
import subprocess
import time

import pytest

import ipsec_lab as L
import netlab

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")

MISSING = L.strongswan_missing()
if MISSING:                             # shown by pytest -ra (the project's default addopts)
    pytest.skip(MISSING, allow_module_level=True)

PORT = 5001
SINK_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", %d)); s.listen(4)
with open(sys.argv[1], "ab", buffering=0) as out:
    while True:
        c, _ = s.accept()
        while True:
            b = c.recv(65536)
            if not b:
                break
            out.write(b)
        c.close()
""" % PORT
SEND = """
import socket, sys
s = socket.create_connection((sys.argv[1], %d), timeout=5)
s.sendall(sys.argv[2].encode() * int(sys.argv[3])); s.shutdown(socket.SHUT_WR); s.recv(1); s.close()
""" % PORT


@pytest.fixture
def fig4(gateway, tmp_path):
    """The testbed around the gateway: h1 source, h2 VPN server, a new sink behind h2."""
    lab = gateway.lab
    sink = lab.ns("sink")
    lab.link(gateway.hosts[1], "eth1", sink, "eth0")
    fig = L.Fig4(lab, gateway.ns, gateway.hosts[0], gateway.hosts[1], sink, "ipsec").address()
    if gateway.backend == "ovs":
        # OVS 3.1's userspace TSO hands the NF TCP bursts cut to its own port's MTU (1500),
        # not to the sender's path MTU (1400, the tunnel's): the NF must refuse them (DF) and
        # TCP crawls on retransmissions. Single-segment sends from the source avoid that.
        netlab.sh("ip", "-n", fig.src, "link", "set", "eth0", "gso_max_segs", "1")
    return fig


class Capture:
    """tcpdump -w on one interface of a namespace, started and stopped by the test."""

    def __init__(self, lab, ns, ifname, path):
        self.path, self.err = path, path.with_suffix(".err")
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                # immediate mode, so packets reach the file at once; a small snaplen, as
                # immediate mode sizes each ring slot by it (262144: a 2 MB ring holds 8 frames)
                ["ip", "netns", "exec", ns, "tcpdump", "-i", ifname, "-n", "-U",
                 "--immediate-mode", "-s", "2048", "-B", "8192", "-Z", "root", "-w", str(path)],
                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        lab.procs.append(self.proc)              # killed by Lab.close() on any failure
        deadline = time.monotonic() + 10
        while b"listening on" not in self.err.read_bytes():
            assert self.proc.poll() is None and time.monotonic() < deadline, \
                f"tcpdump did not start: {self.err.read_text()}"
            time.sleep(0.02)

    def stop(self):
        time.sleep(0.3)                          # let the last packets reach the file
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(timeout=10)
        err = self.err.read_text()
        assert "\n0 packets dropped by kernel" in err, f"the capture lost packets: {err}"
        return list(read_pcap(self.path))


def read_pcap(path):
    """(linktype-1 Ethernet) frames of a pcap file, as bytes."""
    data = path.read_bytes()
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    assert struct.unpack(endian + "I", data[20:24])[0] == 1, "not an Ethernet capture"
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        yield data[off + 16:off + 16 + incl]
        off += 16 + incl


def classify(frame):
    """'ike', 'esp-in-udp', 'esp', 'arp', or what else the frame is ('tcp 5001', 'ip fragment')."""
    ethertype = struct.unpack("!H", frame[12:14])[0]
    if ethertype == 0x0806:
        return "arp"
    if ethertype != 0x0800:
        return f"ethertype {ethertype:#x}"
    ip = frame[14:]
    proto, ihl = ip[9], (ip[0] & 0x0F) * 4
    if struct.unpack("!H", ip[6:8])[0] & 0x3FFF:     # MF flag or a fragment offset
        return "ip fragment"
    if proto == 50:
        return "esp"
    if proto == 17:
        sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
        payload = ip[ihl + 8:]
        if 500 in (sport, dport):
            return "ike"
        if 4500 in (sport, dport):       # RFC 3948: a zero "non-ESP marker" means IKE
            return "ike" if payload[:4] == b"\0\0\0\0" else "esp-in-udp"
        return f"udp {dport}"
    if proto == 6:
        return f"tcp {struct.unpack('!H', ip[ihl + 2:ihl + 4])[0]}"
    return f"ip proto {proto}"


def send_marker(fig, marker, times):
    p = fig.lab.run(fig.src, "python3", "-c", SEND, L.SINK, marker, str(times), timeout=20)
    assert p.returncode == 0, f"source → sink TCP failed: {p.stderr}"


def wait_tunnel(fig, timeout=10):
    """Seconds until a ping from the source is answered by the sink (None: never)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if fig.lab.run(fig.src, "ping", "-c1", "-W1", "-n", L.SINK).returncode == 0:
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


@pytest.mark.kernel
def test_tunnel_carries_traffic_and_the_wan_sees_only_esp(fig4, make_daemon, tmp_path):
    """On kernel ESP (XFRM, a router's kernel: ``make test-kernel``) the WAN sees ESP itself;
    on a kernel without it, kernel-libipsec's ESP in UDP 4500."""
    fig, lab = fig4, fig4.lab
    datapath = L.esp_datapath()
    if netlab.KERNEL_LAB:
        netlab.need_kernel("xfrm")
    server = fig.vpn_server(tmp_path / "vpn")
    assert lab.run(fig.src, "ping", "-c1", "-W1", L.SINK).returncode != 0, \
        "nothing steers yet: the sink is unreachable"
    received = tmp_path / "sink.bin"
    received.touch()
    lab.spawn(fig.sink, "python3", "-c", SINK_SERVER, received)
    # the WAN as it leaves the CPE: its eth1. (Not the server's eth0: with kernel ESP the
    # kernel hands what it decrypts in tunnel mode back in on that device, so a capture
    # there shows the inner packets too.)
    wan = Capture(lab, fig.gw, "eth1", tmp_path / "wan.pcap")           # CPE ↔ VPN server
    clear = Capture(lab, fig.sink, "eth0", tmp_path / "sink.pcap")      # VPN server ↔ sink

    d = make_daemon()
    status, _ = d.api("PUT", "/NF-FG/vpn", fig.graph("vpn", "ipsec"))
    assert status == 201
    up = wait_tunnel(fig, 10 * netlab.SLACK)
    assert up is not None, f"no ping through the tunnel within 10 s:\n{server.log()}"
    st = d.api("GET", "/NF-FG/status/vpn")[1]
    assert [(v["id"], v["state"]) for v in st["VNFs"]] == [("ipsec", "Active")]
    assert st["VNFs"][0]["implementation"] == "ipsec-client (strongswan)"
    assert server.sas() == ["lan"], "one CHILD_SA, on the server too"
    nf_ns = st["VNFs"][0]["netns"]
    charons = [int(p) for p in netlab.sh("ip", "netns", "pids", nf_ns).stdout.split()]
    assert len(charons) == 1 and open(f"/proc/{charons[0]}/comm").read().strip() == "charon"
    pid = charons[0]                 # in a mount namespace of its own, /var/run its run dir:
    assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    var_run = os.path.realpath("/var/run")        # (/run on Debian: where the mount went)
    assert open(f"/proc/{pid}/root{var_run}/charon.pid").read().strip() == str(pid)
    assert not os.path.exists("/var/run/charon.pid") or \
        open("/var/run/charon.pid").read().strip() != str(pid), "not the host's /var/run"

    marker = "unlite-cleartext-" + secrets.token_hex(8)
    send_marker(fig, marker, 2000)                   # ~66 KB: dozens of full-size segments
    deadline = time.monotonic() + 10 * netlab.SLACK
    while received.read_bytes().count(marker.encode()) < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert received.read_bytes() == marker.encode() * 2000, "the sink got all of it, in order"

    wan_frames, clear_frames = wan.stop(), clear.stop()
    kinds, upstream_esp = {}, 0
    for f in wan_frames:
        assert marker.encode() not in f, "the marker crossed the WAN in cleartext"
        kind = classify(f)
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind.startswith("esp") and f[26:30] == socket.inet_aton(L.CPE_WAN):
            upstream_esp += 1
    assert set(kinds) <= {"ike", "esp-in-udp", "esp", "arp"}, \
        f"cleartext or fragments on the WAN: {kinds}"
    esp, other = ("esp", "esp-in-udp") if datapath == "kernel" else ("esp-in-udp", "esp")
    assert kinds.get(esp, 0) > 0 and other not in kinds, f"{datapath}: {kinds}"
    conf = (d.workdir / "run" / "nf" / nf_ns / "strongswan.conf").read_text()
    assert ("kernel-libipsec" in conf) == (datapath == "libipsec"), conf
    assert kinds.get("ike", 0) >= 4, f"IKE_SA_INIT + IKE_AUTH exchanges: {kinds}"
    need = len(marker) * 2000 // 1400 + 1           # inner packets are ≤ 1400 bytes (TUN MTU)
    assert upstream_esp >= need, f"{upstream_esp} ESP packets CPE → server carried the " \
        f"{len(marker) * 2000} bytes? ({kinds})"
    assert any(marker.encode() in f for f in clear_frames), \
        "the same capture sees the marker on a cleartext link (so the WAN check can fail)"
    assert "tcp 5001" in {classify(f) for f in clear_frames}

    st = d.api("GET", "/NF-FG/status/vpn")[1]
    assert all(r["packets"] > 0 for r in st["flow-rules"]), st["flow-rules"]
    assert d.api("DELETE", "/NF-FG/vpn")[0] == 204
    for p in charons:                                # stop/delete ended this NF's charon
        assert _gone(p), f"charon {p} survived the delete"
    # (charon's IKE DELETE cannot reach the server here: unlite removes the graph's steering
    # before it runs stop; the direct test below checks the goodbye)
    assert str(d.workdir) not in open("/proc/self/mountinfo").read(), "a mount leaked"
    print(f"{datapath} ESP: tunnel carried a ping {up * 1e3:.0f} ms after PUT returned")


def _gone(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_bad_settings_are_refused_with_exit_2(fig4, make_daemon):
    """Each value is checked in the start script before it could reach swanctl.conf: an
    injection attempt fails the deploy (exit 2, the reason named), leaving nothing."""
    d = make_daemon()
    for env, needle in (({"PSK": 'x"\n}\nsecrets {'}, "PSK must be"),
                        ({"PEER": "198.51.100.2; reboot"}, "PEER must be"),
                        ({"REMOTE_TS": "10.10.0.0/24 }"}, "REMOTE_TS"),
                        ({"REMOTE_ID": "vpn}"}, "REMOTE_ID must be"),
                        ({"SA_WAIT": "99"}, "SA_WAIT must be")):
        with pytest.raises(netlab.ApiError) as e:
            d.api("PUT", "/NF-FG/vpn", fig4.graph("vpn", "ipsec", **env))
        assert e.value.status == 422 and e.value.body["fault"] == "FailureOnStart", env
        assert needle in e.value.body["error"], (env, e.value.body)
        assert "start script exited 2" in e.value.body["error"], (env, e.value.body)
        assert netlab.unlite_objects(fig4.gw, graphs_only=True)["netns"] == [], env


@pytest.fixture
def direct(tmp_path):
    """The start/stop scripts run by hand (as nnf/README.md shows) in an NF namespace wired
    straight to the source and the VPN server: no unlite, so the WAN is there before start."""
    lab = netlab.Lab("utip")
    try:
        nf = lab.ns("nf")
        fig = L.Fig4.build(lab, "ipsec", gw=nf)
        netlab.sh("ip", "-n", nf, "addr", "add", f"{L.CPE_LAN}/24", "dev", "eth0")
        netlab.sh("ip", "-n", nf, "addr", "add", f"{L.CPE_WAN}/24", "dev", "eth1")
        rd = tmp_path / "run"
        rd.mkdir()

        def script(action, **env):
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "UNLITE_RUN_DIR": str(rd),
                   **fig.graph_env(), **env}
            return subprocess.run(["ip", "netns", "exec", nf, "/bin/sh", action, "G", "NF",
                                   "2", "eth0", "eth1"], cwd=L.NNF_DIR, env=env,
                                  capture_output=True, text=True, timeout=40)
        fig.script, fig.rundir = script, rd
        yield fig
    finally:
        left = netlab.sh("ip", "netns", "pids", lab.namespaces[0], check=False).stdout.split() \
            if lab.namespaces else []
        lab.close()
    assert left == [], f"processes left in the NF namespace after stop: {left}"


def test_start_waits_bounded_for_the_sa_and_fails_with_charons_reason(direct, tmp_path):
    server = direct.vpn_server(tmp_path / "vpn")
    t0 = time.monotonic()
    p = direct.script("start", PSK="not-the-right-key", SA_WAIT="3")
    assert p.returncode == 1 and time.monotonic() - t0 < 6, p.stderr
    assert "no IPsec SA with 198.51.100.2" in p.stderr, p.stderr
    assert "AUTHENTICATION_FAILED" in p.stderr, "charon's reason is shown"
    assert direct.script("stop").returncode == 0
    p = direct.script("start", SA_WAIT="5")            # the right key: up when start returns
    assert p.returncode == 0, p.stderr
    assert server.sas() == ["lan"]
    assert (direct.rundir / "charon.pid").is_file(), "charon's pid file is in the run dir"
    pid = int((direct.rundir / "charon.pid").read_text())
    assert open(f"/proc/{pid}/comm").read().strip() == "charon"
    assert direct.lab.run(direct.src, "ping", "-c2", "-i0.2", "-W1", L.SINK).returncode == 0
    p = direct.script("stop")
    assert p.returncode == 0, p.stderr
    assert _gone(pid), "stop killed charon"
    deadline = time.monotonic() + 5                  # which said goodbye (IKE DELETE)
    while server.sas() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.sas() == [], "the server still holds the CPE's SA"
    assert not (direct.rundir / "charon.vici").exists()
