"""One way to run a tool.

Every call of ``ip``, ``nft``, ``tc``, ``ovs-*`` and of NNF lifecycle scripts goes through
this module: argument lists (never a shell string), a timeout, every command logged, and a
``CommandError`` carrying the command, exit code and stderr when it fails.

- ``run(argv)``            one command, output captured
- ``ip_batch(lines, ns)``  many ``ip`` commands in one exec (``ip -batch -``, ``-n NS`` aware)
- ``nft_apply(text)``      one atomic nftables transaction (``nft -f -``)
- ``nft_delete_table(f, n)`` a table's delete sent over nfnetlink (no cache of the others)
- ``run_script(...)``      a lifecycle script, killed with its process group when it
                           outlives its timeout; its output read through a pipe a chunk at a
                           time into the NF's log, capped and rotated (``LOG_CAP`` × 2), the
                           start and end kept for the error text; what daemons it leaves
                           behind print later, read by one thread for all (``_Leftovers``)
- ``Recorder``             the seam under all of it, for in-process tests without root:
                           nothing runs, each command is recorded and answered from a table,
                           interfaces come from a dict
"""
from __future__ import annotations

import errno
import json
import logging
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

from . import nfnl
from .nfnl import attrs as _attrs

log = logging.getLogger("unlite.sh")

SBIN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


class CommandError(RuntimeError):
    def __init__(self, argv, code, stderr, stdin=None):
        self.argv, self.code, self.stderr, self.stdin = list(argv), code, stderr.strip(), stdin
        super().__init__(f"{' '.join(self.argv)} exited {code}: {self.stderr[-500:]}")


class Recorder:
    """The seam under ``sh``: while installed (``with Recorder() as rec:``), no command runs
    and no netlink socket opens. Each command (``run``, ``ip_batch``, ``nft_apply``, a
    table's delete, a lifecycle script) is appended to ``calls`` as (argv, stdin) and
    answered by the first of ``answers`` — (argv prefix, stdout, exit code) — whose prefix
    it starts with, else success with no output. ``links`` (name → index) are the
    interfaces of the node; ``link_exists``/``link`` answer from them, ``netns_pids`` finds
    none. Tests only: one at a time, in the test's thread."""

    def __init__(self, answers=(), links=None):
        self.answers = list(answers)
        self.links = dict(links or {})
        self.calls: list[tuple[list[str], str | None]] = []

    def __enter__(self):
        global _seam
        if _seam is not None:
            raise RuntimeError("a Recorder is already installed")
        _seam = self
        return self

    def __exit__(self, *exc):
        global _seam
        _seam = None

    def run(self, argv, input=None):
        self.calls.append((list(argv), input))
        for prefix, out, code in self.answers:
            if list(argv[:len(prefix)]) == list(prefix):
                return code, out
        return 0, ""

    def commands(self, program=None):
        """Every command recorded (as one line of text each, stdin after it), or those of
        ``program``."""
        return [" ".join(a) + (f"\n{i}" if i else "") for a, i in self.calls
                if program is None or a[0] == program]

    def link(self, name):
        index = self.links.get(name)
        return None if index is None else {"index": index, "name": name, "altnames": [],
                                           "kind": "", "peer": None}


_seam: Recorder | None = None


def run(argv, input=None, timeout=30.0, check=True, env=None):
    """Run ``argv``; return stdout (str). Raise CommandError on failure when ``check``."""
    if _seam is not None:
        code, out = _seam.run(argv, input)
        if check and code != 0:
            raise CommandError(argv, code, out, input)
        return out
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


def nft_delete_table(family, name, check=True):
    """``nft delete table FAMILY NAME`` as one nfnetlink batch sent from here (``nfnl``): the
    kernel needs nothing else, while ``nft`` first reads every table into its cache (~0.5 MB
    and milliseconds per table: the O(N) of a delete among N graphs). Absent is done. Where
    the socket cannot be used, ``nft`` is executed. Raises CommandError when ``check``."""
    argv = ["nft", "delete", "table", family, name]
    if _seam is not None:
        run(argv, check=check)
        return
    t0 = time.monotonic()
    try:
        code = nfnl.batch([(nfnl.DELTABLE, nfnl.FAMILIES[family],
                            nfnl.attr_str(nfnl.TABLE_NAME, name))])
    except nfnl.Unusable as e:
        log.debug("%s: executing nft", e)
        run(argv, check=check)
        return
    log.debug("%s (nfnetlink) -> %s (%.2f ms)", " ".join(argv), os.strerror(code) if code
              else 0, (time.monotonic() - t0) * 1e3)
    if code and code != errno.ENOENT and check:
        raise CommandError(argv, code, f"Error: {os.strerror(code)}")


def nft_json(*args):
    out = run(["nft", "-j", *args])
    return json.loads(out).get("nftables", []) if out.strip() else []


def have(program):
    """Is ``program`` on the PATH (or in the sbin/bin dirs)?"""
    return shutil.which(program, path=os.environ.get("PATH", "") + ":" + SBIN_PATH) is not None


def fetch(url, max_bytes, timeout, username="", password=""):
    """Download ``url`` with the system's fetcher (``uclient-fetch`` on OpenWrt, ``curl`` or
    ``wget`` elsewhere): bytes, at most ``max_bytes`` of them. Raises OSError. Credentials go
    to curl on its standard input (never its command line, which /proc shows to everyone);
    uclient-fetch and wget take them only as arguments."""
    auth = username or password
    for argv in (["uclient-fetch", "-q", "-T", str(int(timeout)), "-O", "-"]
                 + ([f"--user={username}", f"--password={password}"] if auth else []),
                 ["curl", "-fsSL", "--proto", "=https", "-m", str(int(timeout))]
                 + (["-K", "-"] if auth else []),
                 ["wget", "-q", "-T", str(int(timeout)), "-O", "-"]
                 + ([f"--user={username}", f"--password={password}"] if auth else [])):
        if have(argv[0]):
            break
    else:
        raise OSError("no uclient-fetch, curl or wget to fetch https URLs with")
    config = None
    if auth and argv[0] == "curl":
        quoted = f"{username}:{password}".replace("\\", "\\\\").replace('"', '\\"')
        config = f'user = "{quoted}"\n'.encode()
    try:
        p = subprocess.run(argv + [url], capture_output=True, timeout=timeout + 5,
                           input=config if config is not None else b"")
    except subprocess.TimeoutExpired:
        raise OSError(f"{argv[0]} timed out after {timeout}s") from None
    log.debug("%s -> %d", argv[0], p.returncode)
    if p.returncode:
        raise OSError(f"{argv[0]} exited {p.returncode}: "
                      f"{p.stderr.decode(errors='replace').strip()[-300:]}")
    return p.stdout[:max_bytes]


def node_tag(ns_file="/proc/self/ns/net"):
    """4 hex digits naming the node's network namespace: part of every namespace name unlite
    makes, so two nodes on one host (e.g. test gateways) never collide or clean up each
    other's namespaces. ``ns_file`` lets tools compute the tag of another namespace."""
    from .names import node_tag as tag
    return tag(ns_file)


def netns_pids(names):
    """PIDs of the processes inside the named namespaces (what ``ip netns pids`` does, for
    many namespaces in one pass over /proc and without an exec)."""
    if _seam is not None:
        return []
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


def link_exists(name):
    """Is there an interface ``name`` in our network namespace? (an ioctl, no exec)"""
    if _seam is not None:
        return name in _seam.links
    try:
        socket.if_nametoindex(name)
        return True
    except (OSError, ValueError):
        return False


# rtnetlink, for ``link`` (linux/rtnetlink.h, linux/if_link.h)
_RTM_GETLINK, _RTM_NEWLINK, _NLMSG_ERROR, _NLM_F_REQUEST = 18, 16, 2, 1
_IFLA_IFNAME, _IFLA_LINK, _IFLA_LINKINFO, _IFLA_INFO_KIND = 3, 5, 18, 1
_IFLA_LINK_NETNSID, _IFLA_PROP_LIST, _IFLA_ALT_IFNAME = 37, 52, 53


def link(name):
    """What the kernel says of interface ``name`` (its name or one of its altnames) in our
    network namespace: {"index", "name" (the primary one), "altnames", "kind", "peer"
    (a veth's or tunnel's other end: its ifindex when it is in this namespace, else None)};
    None when there is none. One rtnetlink request, no exec: end-points are compared by
    what they are, never by a name a second one can have (``ip link property add``)."""
    if _seam is not None:
        return _seam.link(name)
    try:
        index = socket.if_nametoindex(name)
    except (OSError, ValueError):
        return None
    req = struct.pack("=LHHLL", 32, _RTM_GETLINK, _NLM_F_REQUEST, 1, 0) + \
        struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, 0, 0)
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
            s.settimeout(2)
            s.send(req)
            msg = s.recv(65536)
    except OSError:
        return None
    length, kind = struct.unpack_from("=LH", msg)
    if kind != _RTM_NEWLINK:
        return None                         # NLMSG_ERROR: gone meanwhile
    a = _attrs(msg[32:length])
    info = _attrs(a.get(_IFLA_LINKINFO, b""))
    props = a.get(_IFLA_PROP_LIST, b"")
    alts, i = [], 0
    while i + 4 <= len(props):              # every IFLA_ALT_IFNAME, not just the first
        ln, k = struct.unpack_from("HH", props, i)
        if ln < 4:
            break
        if k == _IFLA_ALT_IFNAME:
            alts.append(props[i + 4:i + ln].rstrip(b"\0").decode(errors="replace"))
        i += (ln + 3) & ~3
    peer = struct.unpack("=i", a[_IFLA_LINK])[0] if len(a.get(_IFLA_LINK, b"")) == 4 else None
    here = _IFLA_LINK_NETNSID not in a          # no netnsid: the peer is in this namespace
    return {"index": index,
            "name": a.get(_IFLA_IFNAME, b"").rstrip(b"\0").decode(errors="replace") or name,
            "altnames": alts,
            "kind": info.get(_IFLA_INFO_KIND, b"").rstrip(b"\0").decode(errors="replace"),
            "peer": peer if here and peer and peer != index else None}


LOG_CAP = 64 << 10      # bytes of an NF's log file; one older file beside it (``log.1``)
_HEAD, _TAIL = 512, 2048  # bytes of a script's output kept for its error text


def _open_log(path):
    """An NF's log for appending, 0600: scripts print their settings (a key) as often as not."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")


class _CappedLog:
    """An append-only log file of at most ``LOG_CAP`` bytes: past it, the file becomes
    ``<name>.1`` (the one before is dropped) and a new one starts. Writable from several
    threads (a script, and what its leftover children print later)."""

    def __init__(self, path):
        self.path, self._lock = str(path), threading.Lock()
        self._f = _open_log(self.path)
        self._size = self._f.tell()

    def write(self, data):
        with self._lock:
            while data and self._f:
                if self._size >= LOG_CAP:
                    self._rotate()
                    continue
                piece = data[:LOG_CAP - self._size]
                try:
                    self._f.write(piece)
                    self._f.flush()
                except OSError:                 # disk full: the output is dropped
                    return
                self._size += len(piece)
                data = data[len(piece):]

    def _rotate(self):
        self._f.close()
        try:
            os.replace(self.path, self.path + ".1")
            self._f = _open_log(self.path)
        except OSError:                         # its folder is gone: nothing more to keep
            self._f = None
        self._size = 0

    def close(self):
        with self._lock:
            if self._f:
                self._f.close()
                self._f = None


class _Capture:
    """What a script printed, as the error text needs it: the first ``_HEAD`` and the last
    ``_TAIL`` bytes, and how many there were; the rest only goes to the log."""

    def __init__(self):
        self.head, self.tail, self.total = bytearray(), bytearray(), 0

    def add(self, data):
        self.total += len(data)
        if len(self.head) < _HEAD:
            self.head += data[:_HEAD - len(self.head)]
        self.tail += data[-_TAIL:]
        del self.tail[:-_TAIL]

    def text(self, lines=8):
        """The last ``lines`` lines, or when more was printed than kept, the first lines
        and the last ones with the number of bytes left out between."""
        if self.total <= _HEAD + _TAIL:
            text = bytes(self.tail if self.total > _HEAD else self.head)
            return "\n".join(text.decode(errors="replace").strip().splitlines()[-lines:])
        head = bytes(self.head).decode(errors="replace").strip().splitlines()[:2]
        tail = bytes(self.tail).decode(errors="replace").strip().splitlines()[-(lines - 2):]
        cut = self.total - len(self.head) - len(self.tail)
        return "\n".join([*(h[:200] for h in head), f"[… {cut} bytes …]",
                          *(t[-400:] for t in tail)])


class _Leftovers:
    """One thread for every script's output pipe still held, after the script exited, by
    processes it left behind (an NF's daemons): read until they close it, into the NF's
    capped log, so that they never block on a full pipe nor die of a closed one."""

    def __init__(self):
        self._lock, self._sel, self._thread = threading.Lock(), None, None

    def add(self, fd, out):
        with self._lock:
            if self._thread is None:
                import selectors
                self._sel = selectors.DefaultSelector()
                self._thread = threading.Thread(target=self._run, name="nf-output",
                                                daemon=True)
                self._thread.start()
            self._sel.register(fd, 1, out)      # 1: EVENT_READ

    def _run(self):
        while True:
            with self._lock:
                ready = bool(self._sel.get_map())
            if not ready:
                time.sleep(0.2)
                continue
            for key, _ in self._sel.select(timeout=0.2):
                with self._lock:
                    if self._sel.get_map().get(key.fd) is not key:
                        continue                    # handed over meanwhile
                    data = _read(key.fd)
                    if data is None:
                        continue
                    if data:
                        key.data.write(data)
                    else:
                        self._sel.unregister(key.fd)
                        os.close(key.fd)
                        key.data.close()

    def hand_over(self):
        """The daemon exits and leaves the NFs running (``--on-exit keep``): each pipe still
        held goes to a ``cat`` of its own, appending to the same log, so that the NF's daemons
        never write into a pipe nobody reads (they would die of it). The next daemon keeps
        those logs under the cap (``cap_log``)."""
        with self._lock:
            if self._sel is None:
                return
            for key in list(self._sel.get_map().values()):
                log.info("output of %s: handed to a cat of its own", key.data.path)
                self._sel.unregister(key.fd)
                key.data.close()
                os.set_blocking(key.fd, True)   # cat would take EAGAIN for the end
                try:                    # not waited for: this daemon is exiting, init reaps it
                    with open(key.data.path, "ab") as out:
                        subprocess.Popen(["cat"], stdin=key.fd, stdout=out,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
                except OSError as e:
                    log.error("cannot hand over the output of %s: %s", key.data.path, e)
                os.close(key.fd)


def hand_over_outputs():
    """See ``_Leftovers.hand_over``."""
    _leftovers.hand_over()


def cap_log(path):
    """Keep a log that a process outside this daemon appends to under ``LOG_CAP``: past it,
    its end becomes ``<log>.1`` and the file is emptied in place (``>>`` writers go on at its
    new end). Never raises."""
    try:
        size = os.path.getsize(path)
        if size <= LOG_CAP:
            return
        with open(path, "rb") as f:
            f.seek(size - LOG_CAP // 2)
            end = f.read(LOG_CAP // 2)
        with os.fdopen(os.open(f"{path}.1", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                       "wb") as f:
            f.write(end)
        os.truncate(path, 0)
    except OSError:
        pass


_leftovers = _Leftovers()


def _read(fd):
    """Bytes from non-blocking ``fd``: b"" at its end, None when nothing is there yet."""
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def run_script(argv, env, cwd, log_path, timeout):
    """Run a lifecycle script; return (exit code, the end of its output, or its start and
    end when it printed much: ``_Capture.text``).

    The script gets its own session/process group; on timeout the whole group is killed
    (a start script that never returns must not hang the node — UN issue #106). Its output
    goes through a pipe that this thread reads as it comes (a chunk at a time: a script
    printing 400 MB costs no memory) into ``log_path``, capped (``_CappedLog``); what
    processes it leaves behind print later goes there too (``_Leftovers``).
    """
    if _seam is not None:
        return _seam.run(argv)[0], ""
    t0 = time.monotonic()
    out = _CappedLog(log_path)
    out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
    r, w = os.pipe()
    try:
        p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=w,
                             stderr=w, start_new_session=True)
    except OSError as e:
        os.close(r)
        out.close()
        return 127, f"cannot run {argv[0]}: {e}"
    finally:
        os.close(w)
    os.set_blocking(r, False)
    # A watchdog timer, and a wait on the pipe and the process (a pidfd) at once, so that
    # neither a script's exit nor its output waits for a poll interval.
    expired, seen = [], _Capture()
    timer = threading.Timer(timeout, _expire, (p, expired))
    timer.start()
    try:
        code = _pump(p, r, out, seen)
    finally:
        timer.cancel()
    if expired:
        code = -9
    while (data := _read(r)):                   # what it printed before it exited
        out.write(data)
        seen.add(data)
    if data is None:                            # still held open by what it left running
        _leftovers.add(r, out)
    else:
        os.close(r)
        out.close()
    log.debug("%s -> %d (%.1f ms)", " ".join(argv), code, (time.monotonic() - t0) * 1e3)
    tail = seen.text()
    if code == -9:
        tail = (tail + "\n" if tail else "") + f"killed after {timeout}s timeout"
    return code, tail


def _pump(p, r, out, seen):
    """Copy ``r`` to ``out`` (and ``seen``) until ``p`` exits; its exit code."""
    try:
        pidfd = os.pidfd_open(p.pid)
    except (AttributeError, OSError):           # before Linux 5.3: wake up now and then
        pidfd = None
    poll = select.poll()
    poll.register(r, select.POLLIN)
    if pidfd is not None:
        poll.register(pidfd, select.POLLIN)
    try:
        while True:
            events = dict(poll.poll(None if pidfd is not None else 50))
            if r in events:
                data = _read(r)
                if data:
                    out.write(data)
                    seen.add(data)
                elif data == b"":               # every writer closed it
                    poll.unregister(r)
                    return p.wait()
            if (pidfd is not None and pidfd in events) or \
                    (pidfd is None and p.poll() is not None):
                return p.wait()
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _expire(p, expired):
    if p.returncode is None:            # not reaped yet, so its pid is still its own
        expired.append(True)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
