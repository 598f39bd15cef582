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
import signal
import subprocess
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


def netns_list():
    try:
        return sorted(os.listdir("/run/netns"))
    except FileNotFoundError:
        return []


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
        try:
            code = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
            code = -9
    log.debug("%s -> %d (%.1f ms)", " ".join(argv), code, (time.monotonic() - t0) * 1e3)
    tail = _tail(log_path, start)
    if code == -9:
        tail = (tail + "\n" if tail else "") + f"killed after {timeout}s timeout"
    return code, tail


def _tail(path, start, lines=8):
    with open(path, "rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    return "\n".join(text.strip().splitlines()[-lines:])
