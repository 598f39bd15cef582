"""The demo gateway: a LAN host, a WAN host and a gateway namespace running ``unlite serve``.

Deploys firewall → NAT between LAN (eth0) and WAN (eth1) through the REST API, shows a ping
and an HTTP fetch working and a blocked port failing, prints the graph status with counters,
then tears everything down. ``--keep`` leaves it up and prints how to poke at it;
``--down`` removes a kept demo.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netlab  # noqa: E402

STATE = Path("/tmp/unlite-demo")
GRAPH = Path(__file__).resolve().parent / "demo-graph.json"
SERVER = ("import http.server as h\n"
          "class H(h.BaseHTTPRequestHandler):\n"
          "  def do_GET(s):\n"
          "    b=('hello from the WAN host; you came from %s\\n' % s.client_address[0]).encode()\n"
          "    s.send_response(200); s.send_header('Content-Length', str(len(b)))\n"
          "    s.end_headers(); s.wfile.write(b)\n"
          "  def log_message(s, *a): pass\n"
          "h.ThreadingHTTPServer(('0.0.0.0', PORT), H).serve_forever()\n")


def step(msg):
    print(f"\n\033[1m== {msg}\033[0m", flush=True)


def show(p, ok_expected=True):
    out = (p.stdout + p.stderr).strip()
    print("   " + out.replace("\n", "\n   ") if out else "   (no output)")
    good = (p.returncode == 0) == ok_expected
    print(f"   -> {'OK' if good else 'UNEXPECTED'} (exit {p.returncode})")
    return good


def up(keep):
    if os.geteuid() != 0:
        sys.exit("demo: run as root (it creates namespaces and nftables rules)")
    if STATE.exists():
        down()
    STATE.mkdir(parents=True)
    lab = netlab.Lab("demo")
    daemon = None
    ok = True
    try:
        step("building the demo gateway in namespaces")
        gw, lan, wan = lab.ns("gw"), lab.ns("lan"), lab.ns("wan")
        lab.link(gw, "eth0", lan, "eth0", ip_b="192.168.77.2/24")
        lab.link(gw, "eth1", wan, "eth0", ip_b="198.51.100.2/24")
        lab.route(lan, "default", "192.168.77.1")
        print(f"   LAN host {lan} 192.168.77.2 --eth0-- [gateway {gw}] --eth1-- WAN host {wan} "
              "198.51.100.2")
        step(f"starting unlite serve inside {gw}")
        daemon = netlab.Daemon(gw, STATE / "daemon")
        t0 = time.monotonic()
        daemon.start()
        print(f"   up in {(time.monotonic() - t0) * 1e3:.0f} ms: {' '.join(daemon.argv)}")
        (STATE / "state.json").write_text(json.dumps({
            "namespaces": lab.namespaces, "daemon_pid": daemon.proc.pid, "gw": gw}))
        step("deploying firewall -> nat (PUT /NF-FG/home, body tools/demo-graph.json)")
        t0 = time.monotonic()
        status, body = daemon.api("PUT", "/NF-FG/home", GRAPH.read_bytes())
        print(f"   HTTP {status} {json.dumps(body)} in {(time.monotonic() - t0) * 1e3:.0f} ms")
        lab.spawn(wan, "python3", "-c", SERVER.replace("PORT", "8080"))
        lab.spawn(wan, "python3", "-c", SERVER.replace("PORT", "23"))
        time.sleep(0.3)
        step("LAN host pings the WAN host through firewall and NAT")
        ok &= show(lab.run(lan, "ping", "-c", "3", "-i", "0.2", "198.51.100.2"))
        step("LAN host fetches http://198.51.100.2:8080/ (the WAN host sees the NAT address)")
        ok &= show(lab.run(lan, "curl", "-sS", "-m", "3", "http://198.51.100.2:8080/"))
        step("LAN host tries telnet port 23, which the firewall blocks (BLOCK_TCP_PORTS=23,445)")
        ok &= show(lab.run(lan, "curl", "-sS", "-m", "2", "http://198.51.100.2:23/"),
                   ok_expected=False)
        step("graph status (GET /NF-FG/status/home)")
        st = daemon.api("GET", "/NF-FG/status/home")[1]
        for v in st["VNFs"]:
            print(f"   NF {v['id']:<4} {v['implementation']:<22} {v['state']:<7} "
                  f"netns {v['netns']}")
        print(f"   {'rule':<5} {'packets':>8} {'bytes':>9}")
        for r in st["flow-rules"]:
            print(f"   {r['id']:<5} {r['packets']:>8} {r['bytes']:>9}")
        if keep:
            step("left running (--keep). Try:")
            print(f"   ip netns exec {lan} ping 198.51.100.2\n"
                  f"   ip netns exec {lan} curl http://198.51.100.2:8080/\n"
                  f"   nsenter --net=/run/netns/{gw} curl -s "
                  f"127.0.0.1:8080/NF-FG/status/home\n"
                  f"   nsenter --net=/run/netns/{gw} .venv/bin/unlite graph list\n"
                  f"   ip netns list; ip netns exec {gw} nft list ruleset\n"
                  "   tear down: make demo DEMO_ARGS=--down")
            return 0 if ok else 1
    except BaseException:
        keep = False
        if daemon:
            print(daemon.log(), file=sys.stderr)
        raise
    finally:
        if not keep:
            step("tearing down")
            if daemon:
                daemon.stop()
            left = []
            if lab.namespaces:                     # what unlite made, then what the demo made
                left = [o for objs in netlab.unlite_objects(lab.namespaces[0]).values()
                        for o in objs]
            lab.close()
            shutil.rmtree(STATE, ignore_errors=True)
            left += [n for n in netlab.sh("ip", "netns", "list").stdout.split()
                     if n.startswith(lab.tag)]
            print(f"   left behind: {', '.join(left) or 'nothing'}")
            ok &= not left
    print("\ndemo " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def down():
    try:
        st = json.loads((STATE / "state.json").read_text())
    except (OSError, ValueError):
        st = {}
    pid = st.get("daemon_pid")
    if pid:
        try:
            os.killpg(pid, 15)
            for _ in range(100):
                if netlab._gone(pid):
                    break
                time.sleep(0.1)
        except ProcessLookupError:
            pass
    lab = netlab.Lab("demo")
    lab.namespaces = st.get("namespaces", [])
    lab.close()
    shutil.rmtree(STATE, ignore_errors=True)
    print("demo removed")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--keep", action="store_true", help="leave the demo running")
    p.add_argument("--down", action="store_true", help="remove a demo left by --keep")
    a = p.parse_args()
    return down() if a.down else up(a.keep)


if __name__ == "__main__":
    sys.exit(main())
