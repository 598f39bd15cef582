"""One way to run a tool.

Every call of ``ip``, ``nft``, ``tc``, ``ovs-*`` and of NNF lifecycle scripts goes through
this module: argument lists (never a shell string), a timeout, every command logged, and a
``CommandError`` carrying the command, exit code and stderr when it fails.

- ``run(argv)``            one command, output captured
- ``ip_batch(lines, ns)``  many ``ip`` commands in one exec (``ip -batch -``, ``-n NS`` aware)
- ``nft_apply(text)``      one atomic nftables transaction (``nft -f -``)
- ``run_script(...)``      a lifecycle script, stdout/stderr to a log file (so daemons it
                           leaves behind never hold our pipes), killed with its process group
                           when it outlives its timeout
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

log = logging.getLogger("unlite.sh")

SBIN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


class CommandError(RuntimeError):
    def __init__(self, argv, code, stderr, stdin=None):
        self.argv, self.code, self.stderr, self.stdin = list(argv), code, stderr.strip(), stdin
        super().__init__(f"{' '.join(self.argv)} exited {code}: {self.stderr[-500:]}")


def run(argv, input=None, timeout=30.0, check=True, env=None):
    """Run ``argv``; return stdout (str). Raise CommandError on failure when ``check``."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, input=input, capture_output=True, text=True,
                           timeout=timeout, env=env)
    except FileNotFoundError as e:
        raise CommandError(argv, 127, f"{argv[0]}: not found") from e
    except subprocess.TimeoutExpired as e:
        raise CommandError(argv, -1, f"timed out after {timeout}s") from e
    log.debug("%s -> %d (%.1f ms)", " ".join(argv), p.returncode, (time.monotonic() - t0) * 1e3)
    if check and p.returncode != 0:
        raise CommandError(argv, p.returncode, p.stderr or p.stdout, input)
    return p.stdout


def ip(*args, ns=None, check=True):
    argv = ["ip"] + (["-n", ns] if ns else []) + list(args)
    return run(argv, check=check)


def ip_json(*args, ns=None):
    out = ip("-j", *args, ns=ns)
    return json.loads(out) if out.strip() else []


def ip_batch(lines, ns=None, force=False):
    """Run ``ip`` commands in one exec. ``force`` goes on past errors (for cleanup)."""
    lines = [ln for ln in lines if ln]
    if not lines:
        return
    argv = ["ip"] + (["-n", ns] if ns else []) + (["-force"] if force else []) + ["-batch", "-"]
    run(argv, input="\n".join(lines) + "\n", check=not force)


def nft_apply(text):
    """Apply ``text`` as one nftables transaction: all of it, or nothing."""
    if text.strip():
        run(["nft", "-f", "-"], input=text)


def nft_json(*args):
    out = run(["nft", "-j", *args])
    return json.loads(out).get("nftables", []) if out.strip() else []


def have(program):
    """Is ``program`` on the PATH (or in the sbin/bin dirs)?"""
    return shutil.which(program, path=os.environ.get("PATH", "") + ":" + SBIN_PATH) is not None


def fetch(url, max_bytes, timeout):
    """Download ``url`` with the system's fetcher (``uclient-fetch`` on OpenWrt, ``curl`` or
    ``wget`` elsewhere): bytes, at most ``max_bytes`` of them. Raises OSError."""
    for argv in (["uclient-fetch", "-q", "-T", str(int(timeout)), "-O", "-", url],
                 ["curl", "-fsSL", "--proto", "=https", "-m", str(int(timeout)), url],
                 ["wget", "-q", "-T", str(int(timeout)), "-O", "-", url]):
        if have(argv[0]):
            break
    else:
        raise OSError("no uclient-fetch, curl or wget to fetch https URLs with")
    try:
        p = subprocess.run(argv, capture_output=True, timeout=timeout + 5)
    except subprocess.TimeoutExpired:
        raise OSError(f"{argv[0]} timed out after {timeout}s") from None
    log.debug("%s -> %d", " ".join(argv), p.returncode)
    if p.returncode:
        raise OSError(f"{argv[0]} exited {p.returncode}: "
                      f"{p.stderr.decode(errors='replace').strip()[-300:]}")
    return p.stdout[:max_bytes]


def node_tag(ns_file="/proc/self/ns/net"):
    """4 hex digits naming the node's network namespace: part of every namespace name unlite
    makes, so two nodes on one host (e.g. test gateways) never collide or clean up each
    other's namespaces. ``ns_file`` lets tools compute the tag of another namespace."""
    import hashlib
    return hashlib.sha1(str(os.stat(ns_file).st_ino).encode()).hexdigest()[:4]


def netns_pids(names):
    """PIDs of the processes inside the named namespaces (what ``ip netns pids`` does, for
    many namespaces in one pass over /proc and without an exec)."""
    want = set()
    for name in names:
        try:
            st = os.stat(f"/run/netns/{name}")
            want.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    if not want:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                st = os.stat(f"/proc/{entry}/ns/net")
            except OSError:
                continue                       # exited meanwhile
            if (st.st_dev, st.st_ino) in want:
                pids.append(int(entry))
    return pids


def wait_links_gone(names, timeout):
    """Wait until no interface of ``names`` exists in our namespace; return those left."""
    left = list(names)
    deadline = time.monotonic() + timeout
    delay = 0.001
    while left:
        left = [n for n in left if link_exists(n)]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    return left


def link_exists(name):
    """Is there an interface ``name`` in our network namespace? (an ioctl, no exec)"""
    try:
        socket.if_nametoindex(name)
        return True
    except (OSError, ValueError):
        return False


def run_script(argv, env, cwd, log_path, timeout):
    """Run a lifecycle script; return (exit code, last lines of its output).

    The script gets its own session/process group; on timeout the whole group is killed
    (a start script that never returns must not hang the node — UN issue #106).
    """
    t0 = time.monotonic()
    with open(log_path, "ab") as out:
        out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
        out.flush()
        start = out.tell()
        try:
            p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=out, start_new_session=True)
        except OSError as e:
            return 127, f"cannot run {argv[0]}: {e}"
        # A blocking wait plus a watchdog timer: Popen.wait(timeout=) polls with growing
        # sleeps and would add up to several ms to every script.
        expired = []
        timer = threading.Timer(timeout, _expire, (p, expired))
        timer.start()
        try:
            code = p.wait()
        finally:
            timer.cancel()
        if expired:
            code = -9
    log.debug("%s -> %d (%.1f ms)", " ".join(argv), code, (time.monotonic() - t0) * 1e3)
    tail = _tail(log_path, start)
    if code == -9:
        tail = (tail + "\n" if tail else "") + f"killed after {timeout}s timeout"
    return code, tail


def _expire(p, expired):
    if p.returncode is None:            # not reaped yet, so its pid is still its own
        expired.append(True)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _tail(path, start, lines=8):
    with open(path, "rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    return "\n".join(text.strip().splitlines()[-lines:])
