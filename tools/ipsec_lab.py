"""The paper's Fig. 4 testbed in namespaces, for ``tests/test_ipsec.py`` and
``tools/bench_paper.py`` (not shipped).

    source ──eth0── CPE (gw netns, unlite serve) ──eth1── VPN server ──── sink
    192.168.77.2     graph: eth0 → NF → eth1     198.51.100.2 | 10.10.0.1   10.10.0.2

- ``strongswan_missing()``: why strongSwan cannot run here (None when it can);
- ``Fig4``: addresses and routes of source, VPN server and sink for an NF kind (``ipsec``,
  ``nat``: an L3 CPE between 192.168.77.0/24 and the WAN; ``firewall``: L2-transparent, so
  the source sits on the WAN subnet), and the NF-FG that puts the NF between eth0 and eth1;
- ``VpnServer``: the responder, a charon in the VPN server's netns and in a mount namespace of
  its own (its work dir mounted on /var/run: pid file, vici socket, log); ESP in the kernel
  (XFRM) where the kernel has it, as the NF chooses, else kernel-libipsec in UDP 4500
  (``esp_datapath()``);
- ``swanctl(dir, ...)``: swanctl against the charon whose run dir is ``dir``.

Every process is started through the ``netlab.Lab`` it belongs to, so ``Lab.close()`` kills
it with the namespaces.
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NNF_DIR = ROOT / "nnf" / "ipsec-client"
CHARON_DIRS = ("/usr/lib/ipsec", "/usr/libexec/ipsec", "/usr/lib/strongswan",
               "/usr/libexec/strongswan")
DEBIAN_PACKAGES = ("strongswan-charon", "strongswan-swanctl", "libcharon-extra-plugins",
                   "libstrongswan-standard-plugins")

SRC, CPE_LAN, LAN_NET = "192.168.77.2", "192.168.77.1", "192.168.77.0/24"
CPE_WAN, VPN_WAN = "198.51.100.1", "198.51.100.2"
VPN_IN, SINK, SINK_NET = "10.10.0.1", "10.10.0.2", "10.10.0.0/24"
SRC_ON_WAN = "198.51.100.3"          # the source when the NF is L2-transparent (firewall)
CPE_ID, VPN_ID = "cpe@home.example", "vpn.corp.example"
PROPOSALS = ("aes128-sha1-modp2048", "aes128-sha1")       # IKE, ESP: the paper's
# TUN (ipsec0) MTU 1400 - 40 bytes of IPv4 + TCP headers: the ESP-in-UDP packets
# (1400 + 2 pad → 1408 + 8 SPI/seq + 16 IV + 12 ICV + 8 UDP + 20 IP = 1472) fit a 1500 link
MSS = 1360


def charon_path():
    for d in CHARON_DIRS:
        if os.access(f"{d}/charon", os.X_OK):
            return f"{d}/charon"
    return None


def strongswan_missing():
    """Why the IPsec experiment cannot run here, or None."""
    need = []
    charon = charon_path()
    if not charon:
        need.append("charon")
    elif not os.path.exists(f"{os.path.dirname(charon)}/plugins/"
                            "libstrongswan-kernel-libipsec.so"):
        need.append("the kernel-libipsec plugin")
    if not shutil.which("swanctl"):
        need.append("swanctl")
    if not need:
        return None
    return (f"strongSwan is absent ({', '.join(need)} missing): "
            f"apt-get install -y {' '.join(DEBIAN_PACKAGES)}")


def esp_datapath():
    """"kernel" where this kernel holds ESP SAs (a router's, ``make test-kernel``'s), else
    "libipsec" (userspace ESP over TUN, in UDP): what the ipsec-client NF's ``auto`` picks."""
    import netlab
    return "kernel" if netlab.kernel_has("xfrm") else "libipsec"


def swanctl(rundir, *args, timeout=30, check=True):
    """swanctl against the charon whose run dir (/var/run in its mount ns) is ``rundir``; the
    socket by a relative path, since a run dir's path may exceed sun_path's 108 bytes."""
    p = subprocess.run(["swanctl", *args, "--uri", "unix://charon.vici"], cwd=rundir,
                       env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                            "STRONGSWAN_CONF": f"{rundir}/strongswan.conf"},
                       capture_output=True, text=True, timeout=timeout)
    if check and p.returncode:
        raise RuntimeError(f"swanctl {' '.join(args)}: {p.returncode}: "
                           f"{(p.stderr or p.stdout).strip()[-800:]}")
    return p.stdout


class VpnServer:
    """The corporate VPN server of Fig. 4: an IKEv2 responder for ``CPE_ID`` that tunnels
    ``SINK_NET`` ↔ ``LAN_NET``; ESP on ``datapath`` (``esp_datapath()`` by default)."""

    def __init__(self, lab, ns, workdir, psk, datapath=None):
        self.lab, self.ns, self.dir, self.psk = lab, ns, Path(workdir), psk
        self.datapath = datapath or esp_datapath()
        self.proc = None

    def start(self, timeout=10):
        charon = charon_path()
        if not charon:
            raise RuntimeError(strongswan_missing())
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in ("charon.vici", "charon.pid"):
            (self.dir / stale).unlink(missing_ok=True)
        kernel = "kernel-netlink" if self.datapath == "kernel" else \
            "kernel-libipsec kernel-netlink"
        (self.dir / "strongswan.conf").write_text(STRONGSWAN_CONF.replace("@KERNEL@", kernel))
        (self.dir / "swanctl.conf").write_text(SERVER_CONF.format(
            encap="no" if self.datapath == "kernel" else "yes", vpn=VPN_WAN, vpn_id=VPN_ID,
            cpe_id=CPE_ID, ike=PROPOSALS[0], esp=PROPOSALS[1],
            local_ts=SINK_NET, remote_ts=LAN_NET, psk=self.psk))
        os.chmod(self.dir / "swanctl.conf", 0o600)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
               "STRONGSWAN_CONF": "/var/run/strongswan.conf"}
        self.proc = self.lab.spawn(self.ns, "unshare", "-m", "sh", "-c",
                                   'mount -o bind "$0" /var/run && exec "$1"', self.dir, charon,
                                   env=env)
        deadline = time.monotonic() + timeout
        while not (self.dir / "charon.vici").is_socket():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"VPN server's charon did not start:\n{self.log()}")
            time.sleep(0.01)
        for attempt in range(100):     # the socket may exist a moment before charon listens
            try:
                swanctl(self.dir, "--load-all", "--noprompt", "--file",
                        f"{self.dir}/swanctl.conf")
                return self
            except RuntimeError as e:
                if "Connection refused" not in str(e) or attempt == 99:
                    raise
                time.sleep(0.01)

    def log(self):
        try:
            return (self.dir / "charon.log").read_text()[-3000:]
        except OSError:
            return "(no charon.log)"

    def sas(self):
        """The established CHILD_SAs' names (``swanctl --list-sas``)."""
        out = swanctl(self.dir, "--list-sas", "--noblock")
        return [ln.split(":")[0].strip() for ln in out.splitlines()
                if "INSTALLED" in ln and "reqid" in ln]


class Fig4:
    """Source, VPN server and sink around the gateway namespace ``gw`` (eth0 to the source,
    eth1 to the VPN server). ``kind``: ipsec, nat or firewall."""

    def __init__(self, lab, gw, src, vpn, sink, kind):
        self.lab, self.gw, self.src, self.vpn, self.sink, self.kind = lab, gw, src, vpn, sink, kind
        self.psk = "fig4-" + secrets.token_hex(12)

    @classmethod
    def build(cls, lab, kind, gw=None):
        """A fresh topology: the gateway (unless given) and three host namespaces."""
        gw = gw or lab.ns("gw")
        src, vpn, sink = (lab.ns(n) for n in ("src", "vpn", "sink"))
        lab.link(gw, "eth0", src, "eth0")
        lab.link(gw, "eth1", vpn, "eth0")
        lab.link(vpn, "eth1", sink, "eth0")
        return cls(lab, gw, src, vpn, sink, kind).address()

    def address(self):
        """Addresses and routes of the hosts (the CPE's come from the graph)."""
        sh = self.lab.run
        for ns, cmds in (
                (self.src, [f"addr add {SRC_ON_WAN}/24 dev eth0",
                            f"route add default via {VPN_WAN}"]
                 if self.kind == "firewall" else
                 [f"addr add {SRC}/24 dev eth0", f"route add default via {CPE_LAN}"]),
                (self.vpn, [f"addr add {VPN_WAN}/24 dev eth0", f"addr add {VPN_IN}/24 dev eth1"]),
                (self.sink, [f"addr add {SINK}/24 dev eth0", f"route add default via {VPN_IN}"])):
            p = subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(cmds) + "\n",
                               capture_output=True, text=True)
            if p.returncode:
                raise RuntimeError(f"addressing {ns}: {p.stderr}")
        sh(self.vpn, "sysctl", "-qw", "net.ipv4.ip_forward=1", check=True)
        return self

    NF = {"ipsec": "ipsec-client", "nat": "nat", "firewall": "firewall"}

    def graph_env(self):
        """The NF's unify-env-variables for this testbed."""
        if self.kind == "ipsec":
            return {"PEER": VPN_WAN, "PSK": self.psk, "REMOTE_TS": SINK_NET,
                    "LOCAL_ID": CPE_ID, "REMOTE_ID": VPN_ID}
        if self.kind == "nat":
            return {"DEFAULT_GW": VPN_WAN}
        return {"BLOCK_TCP_PORTS": "23,445"}

    def nf_addresses(self):
        """The NF's port addresses (the graph's unify-ip): (LAN, WAN), None when L2."""
        return (None, None) if self.kind == "firewall" else (f"{CPE_LAN}/24", f"{CPE_WAN}/24")

    def graph(self, gid, nf_id="nf", **env):
        """eth0 → NF → eth1, both directions; the NF per ``kind`` with its settings."""
        if self.kind not in self.NF:
            raise ValueError(f"unknown NF kind {self.kind!r}")
        ports = [{"id": "inout:0", "name": "LAN"}, {"id": "inout:1", "name": "WAN"}]
        for port, ip in zip(ports, self.nf_addresses()):
            if ip:
                port["unify-ip"] = ip
        env = {**self.graph_env(), **env}
        vnf = {"id": nf_id, "name": self.NF[self.kind], "ports": ports,
               "unify-env-variables": [{"variable": f"{k}={v}"} for k, v in env.items()]}
        pairs = [("endpoint:lan", f"vnf:{nf_id}:inout:0"), (f"vnf:{nf_id}:inout:0", "endpoint:lan"),
                 (f"vnf:{nf_id}:inout:1", "endpoint:wan"), ("endpoint:wan", f"vnf:{nf_id}:inout:1")]
        return {"forwarding-graph": {
            "id": gid, "name": f"paper Fig. 4: {self.NF[self.kind]} on the CPE", "VNFs": [vnf],
            "end-points": [{"id": "lan", "type": "interface", "interface": {"if-name": "eth0"}},
                           {"id": "wan", "type": "interface", "interface": {"if-name": "eth1"}}],
            "big-switch": {"flow-rules": [
                {"id": f"r{i}", "priority": 10, "match": {"port_in": a},
                 "actions": [{"output_to_port": b}]} for i, (a, b) in enumerate(pairs)]}}}

    def vpn_server(self, workdir, datapath=None):
        return VpnServer(self.lab, self.vpn, workdir, self.psk, datapath).start()


STRONGSWAN_CONF = """\
charon {
	load = random nonce openssl kdf @KERNEL@ socket-default vici
	filelog {
		log {
			path = /var/run/charon.log
			time_format = %T
			flush_line = yes
			default = 1
		}
	}
	syslog {
		daemon {
			default = -1
		}
	}
	plugins {
		vici {
			socket = unix:///var/run/charon.vici
		}
	}
}
swanctl {
	load = random nonce
}
"""

SERVER_CONF = """\
connections {{
	cpe {{
		version = 2
		local_addrs = {vpn}
		proposals = {ike}
		encap = {encap}
		local {{
			auth = psk
			id = {vpn_id}
		}}
		remote {{
			auth = psk
			id = {cpe_id}
		}}
		children {{
			lan {{
				mode = tunnel
				local_ts = {local_ts}
				remote_ts = {remote_ts}
				esp_proposals = {esp}
			}}
		}}
	}}
}}
secrets {{
	ike-cpe {{
		id-1 = {cpe_id}
		secret = "{psk}"
	}}
}}
"""
