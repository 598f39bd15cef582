"""The HTTP server under the API: wsgiref's, with bounded threads and memory whatever the load,
so that a handful of clients (idle, slow, flooding) can starve no one.

- ``_Doorman``   one thread and a selector accept-side: each connection is read there until
                 its whole request (head and body) is in, so no worker ever reads from a
                 client. It cuts off, cheaply and early: a connection that sends nothing
                 within ``IDLE_TIMEOUT``, a head not whole within ``HEAD_TIMEOUT`` (408) or
                 larger than ``HEAD_MAX`` (431), a body slower than ``BODY_RATE`` (408) or
                 larger than ``MAX_BODY`` (413). When ``connections`` are open, a new one
                 evicts the oldest that has not sent its whole request yet (the accept loop
                 never stops); a client address other than loopback holds at most
                 ``per_client`` (its own oldest go first).
- ``_Lane``      a few threads taking whole requests in order: 2 answer reads, 3 run the
                 writes (which wait for the node's lock anyway, but not for another
                 graph's stop script: the node lets go of its lock then): reads are always
                 served while writes queue. Which requests are writes is the app's decision
                 (``writes(method, path)``, passed in by the API).
- event streams (``text/event-stream`` answers) move to a thread of their own, 16 at most.
- ``tcp_server`` / ``unix_server``  the WSGI app on a TCP port or a unix socket (0600).

Bounds (TCP server; the unix socket's are in ``_UnixServer``): threads 1 doorman + 2 readers
+ 3 writers + 16 streams + the accept loop; sockets ``connections`` (128) + ``ahead`` (128: accepted
faster than the doorman evicts, past it closed at once) + streams; bytes of
requests held (read, queued or being served) ``room`` (4 MiB: past it the largest unfinished
one gets 503); a worker waits at most ``WRITE_TIMEOUT`` for a client to take its answer.

Pure plumbing: no route and no unlite object is known here.
"""
from __future__ import annotations

import io
import ipaddress
import json
import logging
import os
import queue
import re
import select
import selectors
import socket
import threading
import time
from collections import Counter
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server

log = logging.getLogger("unlite.http")         # one line per request

MAX_BODY = 1 << 20   # 1 MiB: a graph is a few KiB; anything larger is a mistake or an attack
HEAD_MAX = 64 << 10  # request line and headers
IDLE_TIMEOUT = 5     # seconds a connection may stay open without sending a byte
HEAD_TIMEOUT = 10    # seconds from connecting to the end of the head
BODY_RATE = 32 << 10  # bytes/s a body must arrive at, at least (1 MiB: 32 s, +2 s)
WRITE_TIMEOUT = 10   # seconds a client may take to take (a chunk of) its answer
READS = ("GET", "HEAD", "OPTIONS")


def writes_by_method(method, path):
    """The default ``writes`` policy: anything but a read is a write."""
    return method not in READS


class _Lane:
    """Up to ``size`` threads, started as work arrives and then kept, taking jobs in order."""

    def __init__(self, name, size):
        self.name, self.size = name, size
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.pending = self._threads = 0       # jobs queued or running; threads started

    def submit(self, job):
        with self._lock:
            self.pending += 1
            start = self.pending > self._threads and self._threads < self.size
            self._threads += start
        if start:
            threading.Thread(target=self._run, name=f"{self.name}-{self._threads}",
                             daemon=True).start()
        self._jobs.put(job)

    def _run(self):
        while (job := self._jobs.get()) is not None:
            try:
                job()
            finally:
                with self._lock:
                    self.pending -= 1

    def close(self):
        for _ in range(self._threads):
            self._jobs.put(None)


_HEAD_END = re.compile(rb"\r?\n\r?\n")
MORE, WHOLE = "more", "whole"


class _Conn:
    """A connection the doorman is reading (or draining after a refusal)."""
    __slots__ = ("sock", "addr", "local", "born", "deadline", "buf", "scanned", "body_at",
                 "need", "chunk_at", "expect", "method", "path", "draining")

    def __init__(self, sock, addr, now):
        self.sock, self.addr, self.local, self.born = sock, addr, _local(addr), now
        self.deadline = now + IDLE_TIMEOUT
        self.buf = bytearray()
        self.scanned = 0            # the head's end was not found before this offset
        self.body_at = None         # where the body starts, once the head is whole
        self.need = 0               # Content-Length
        self.chunk_at = None        # a chunked body: where its next chunk starts
        self.expect = self.draining = False
        self.method = self.path = ""


def _local(addr):
    """Is ``addr`` (a socketserver client address) this host's loopback or the unix socket?"""
    host = addr[0] if isinstance(addr, tuple) and addr else addr
    if host == "unix":
        return True
    try:
        ip = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False
    return ip.is_loopback or bool(getattr(ip, "ipv4_mapped", None)
                                  and ip.ipv4_mapped.is_loopback)


def _progress(c, now):
    """How far ``c``'s request is: MORE to come, WHOLE (or as whole as the app needs to
    refuse it itself: a bad length or chunk), or the (status, message) to refuse it with."""
    if c.body_at is None:
        m = _HEAD_END.search(c.buf, max(0, c.scanned - 3))
        if m is None or m.start() > HEAD_MAX:
            c.scanned = len(c.buf)
            if len(c.buf) > HEAD_MAX:
                return 431, f"request head larger than {HEAD_MAX} bytes"
            return MORE
        c.body_at = m.end()
        lines = bytes(c.buf[:m.start()]).split(b"\n")
        first = lines[0].split()
        if len(first) >= 2:
            c.method = first[0].decode("latin-1")
            c.path = first[1].decode("latin-1").partition("?")[0]
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"transfer-encoding":
                c.chunk_at = c.body_at
            elif name == b"expect":
                c.expect = value == b"100-continue"
            elif name == b"content-length":
                c.need = int(value) if value.isdigit() else 0   # bad: the app says 400
        if c.need > MAX_BODY:
            return 413, f"body larger than {MAX_BODY} bytes"
        longest = MAX_BODY if c.chunk_at is not None else c.need
        c.deadline = now + 2 + longest / BODY_RATE
    if c.chunk_at is not None:
        return _chunks(c)
    return WHOLE if len(c.buf) - c.body_at >= c.need else MORE


def _chunks(c):
    """_progress of a chunked body (read here whole, so that no worker waits for it)."""
    buf = c.buf
    while True:
        nl = buf.find(b"\n", c.chunk_at)
        if nl < 0:
            return MORE if len(buf) - c.chunk_at < 1024 else WHOLE
        try:
            size = int(bytes(buf[c.chunk_at:nl]).split(b";")[0].strip(), 16)
        except ValueError:
            return WHOLE                        # not chunked encoding: the app refuses it
        if size == 0:                           # the last chunk, trailers, an empty line
            rest = buf[nl + 1:nl + 3]
            if rest[:1] == b"\n" or rest == b"\r\n" or buf.find(b"\n\r\n", nl) >= 0:
                return WHOLE
            return MORE
        if len(buf) - c.body_at > MAX_BODY:
            return 413, f"body larger than {MAX_BODY} bytes"
        if nl + 1 + size + 2 > len(buf):
            return MORE
        c.chunk_at = nl + 1 + size + 2


class _Doorman:
    """One thread and a selector that read every connection the server accepts until its
    whole request is in (``_progress``), then hand it to the server's ``_serve`` on the read
    or the write lane; so neither an idle connection (as browsers open ahead of need) nor a
    slow or flooding client ever holds a worker, and the accept loop never waits.

    The cut-offs (module docstring) are each a close, or a short error sent without
    blocking, then a second of draining what the client still sends (so that it reads
    the error rather than a reset)."""

    def __init__(self, server):
        self.server = server
        self._new = queue.SimpleQueue()
        self._wake, self._waker = socket.socketpair()
        self._waker.setblocking(False)
        self.waiting = {}           # socket -> _Conn, oldest first
        threading.Thread(target=self._run, name="http-door", daemon=True).start()

    def admit(self, conn, addr):
        self._new.put((conn, addr))
        self._poke()

    def stop(self):
        self._new.put((None, None))
        self._poke()

    def _poke(self):
        try:
            self._waker.send(b"\0")
        except OSError:             # its buffer is full: the doorman has a lot to read
            pass

    def _run(self):
        with selectors.DefaultSelector() as sel:
            self._sel = sel
            sel.register(self._wake, selectors.EVENT_READ)
            while True:
                for key, _ in sel.select(timeout=0.25):
                    if key.fileobj is self._wake:
                        self._wake.recv(4096)
                    else:
                        self._read(self.waiting[key.fileobj])
                self._trim()
                while not self._new.empty():
                    conn, addr = self._new.get()
                    if conn is None:            # stop: nobody will answer the others
                        for c in list(self.waiting.values()):
                            self._drop(c)
                        return
                    self._admit(conn, addr)
                now = time.monotonic()
                for c in [c for c in self.waiting.values() if c.deadline < now]:
                    if c.draining or not c.buf:
                        self._drop(c)           # idle: not worth an answer
                    else:
                        self._refuse(c, 408, "the request did not arrive in time "
                                     f"(head within {HEAD_TIMEOUT} s, body at "
                                     f"{BODY_RATE >> 10} KiB/s)")

    def _read(self, c):
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if c.draining:
            if not data:
                self._drop(c)
            return
        if not data:                            # the client closed (its sending side)
            if c.body_at is not None:           # the app answers what it got
                self._hand(c)
            else:
                self._drop(c)
            return
        now = time.monotonic()
        if not c.buf:
            c.deadline = c.born + HEAD_TIMEOUT
        c.buf += data
        self.server.hold(c.sock, len(data))
        state = _progress(c, now)
        if state is WHOLE:
            self._hand(c)
        elif state is not MORE:
            self._refuse(c, *state)
        elif c.expect and c.body_at is not None:
            c.expect = False
            self._send(c, b"HTTP/1.1 100 Continue\r\n\r\n")

    def _admit(self, conn, addr):
        srv = self.server
        srv.seen(addr)                  # first: whatever happens below, it is no longer queued
        c = _Conn(conn, addr, time.monotonic())
        conn.setblocking(False)
        self.waiting[conn] = c
        self._sel.register(conn, selectors.EVENT_READ)
        if not c.local and srv.open_from(addr) > srv.per_client:
            self._evict(c, lambda o: o.addr[0] == addr[0], "too many connections from "
                        f"{addr[0]} ({srv.per_client})")
        if srv.open_count() > srv.connections:
            self._evict(c, lambda o: True, f"too many connections ({srv.connections})")

    def _evict(self, new, which, why):
        """Close the oldest unfinished connection ``which`` holds (draining ones first);
        when all are whole requests, refuse the ``new`` one."""
        for draining in (True, False):
            for c in self.waiting.values():
                if c.draining == draining and c is not new and which(c):
                    return self._drop(c)
        self._refuse(new, 503, f"{why}: try again later")

    def _trim(self):
        """Past ``room`` bytes held, refuse the largest requests still coming in."""
        srv = self.server
        while srv.held > srv.room:
            growing = [c for c in self.waiting.values() if c.buf and not c.draining]
            if not growing:
                return
            self._refuse(max(growing, key=lambda c: len(c.buf)), 503,
                         "the server holds too many requests: try again later")

    def _leave(self, c):
        self._sel.unregister(c.sock)
        del self.waiting[c.sock]

    def _hand(self, c):
        self._leave(c)
        c.sock.setblocking(True)                # the handler sets WRITE_TIMEOUT
        self.server.dispatch(c.sock, c.addr, bytes(c.buf), c.method, c.path)

    def _drop(self, c):
        self._leave(c)
        self.server.shutdown_request(c.sock)

    def _send(self, c, data):
        try:
            c.sock.send(data)                   # small: into the socket's buffer, or lost
        except OSError:
            pass

    def _refuse(self, c, status, message):
        self._send(c, _raw_answer(_error_answer(status, message, close=True)))
        try:
            c.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.server.hold(c.sock, -len(c.buf))
        c.buf, c.draining, c.deadline = bytearray(), True, time.monotonic() + 1


class _Server(WSGIServer):
    """The WSGI server, with bounded threads, sockets and memory under any load (module
    docstring): the doorman reads, ``workers`` threads answer reads, ``writers`` threads run
    what ``writes(method, path)`` calls a write, an event stream gets a thread of its own
    (at most ``streams``: more get 503)."""
    allow_reuse_address = True
    request_queue_size = 128        # listen backlog: socketserver's 5 resets bursts of clients
    connections, per_client, workers, writers, streams = 128, 16, 2, 3, 16
    room = 4 << 20
    ahead = 128                     # accepted, not yet seen by the doorman: more are closed
    writes = staticmethod(writes_by_method)

    def __init__(self, *args, **kwargs):
        self._lock = threading.Lock()
        self._open = {}             # connection -> [client address, bytes of it held]
        self._per = Counter()       # client host -> connections open
        # accepted, not yet seen by the doorman: not counted against a limit yet, so that
        # the doorman, seeing them in order, evicts the oldest (not the first it sees)
        self._queued, self._queued_all = Counter(), 0
        self.held = 0
        self._workers = _Lane("http", self.workers)
        self._writers = _Lane("http-write", self.writers)
        self._stream_slots = threading.Semaphore(self.streams)
        self._early = {}            # connection -> its whole request, as the doorman read it
        super().__init__(*args, **kwargs)
        self._door = _Doorman(self)

    def process_request(self, request, client_address):
        with self._lock:
            self._open[request] = [client_address, 0]
            self._per[client_address[0]] += 1
            flooded = len(self._open) > self.connections + self.ahead
            if not flooded:
                self._queued[client_address[0]] += 1
                self._queued_all += 1
        if flooded:                 # accepted faster than the doorman evicts: a hard bound
            return self.shutdown_request(request)
        self._door.admit(request, client_address)

    def seen(self, addr):
        """The doorman took this connection: from now on it counts against the limits."""
        with self._lock:
            self._queued[addr[0]] -= 1
            if not self._queued[addr[0]]:
                del self._queued[addr[0]]
            self._queued_all -= 1

    def open_count(self):
        """Connections open that the doorman has seen."""
        return len(self._open) - self._queued_all

    def open_from(self, addr):
        return self._per[addr[0]] - self._queued[addr[0]]

    def hold(self, request, n):
        with self._lock:
            self._open[request][1] += n
            self.held += n

    def dispatch(self, request, client_address, data, method, path):
        self._early[request] = data
        lane = self._writers if self.writes(method, path) else self._workers
        lane.submit(lambda: self._serve(request, client_address))

    def shutdown_request(self, request):
        self._early.pop(request, None)
        with self._lock:
            addr, held = self._open.pop(request, (None, 0))
            self.held -= held
            if addr is not None:
                self._per[addr[0]] -= 1
                if not self._per[addr[0]]:
                    del self._per[addr[0]]
        super().shutdown_request(request)

    def _serve(self, request, client_address):
        handler = None
        try:
            handler = self.RequestHandlerClass(request, client_address, self)
        except Exception:           # noqa: BLE001 - as socketserver does: log, go on
            self.handle_error(request, client_address)
        finally:
            if not (handler and handler.detached):
                self.shutdown_request(request)

    def to_stream(self, handler, job):
        """Finish it on a thread of its own; False when ``streams`` are open already."""
        if not self._stream_slots.acquire(blocking=False):
            return False
        handler.detached = True

        def stream():
            try:
                self._finish(handler, job)
            finally:
                self._stream_slots.release()
        threading.Thread(target=stream, name="http-stream", daemon=True).start()
        return True

    def _finish(self, handler, job):
        try:
            job()
        except Exception:           # noqa: BLE001
            self.handle_error(handler.request, handler.client_address)
        finally:
            try:
                handler.finish_detached()
            finally:
                self.shutdown_request(handler.request)

    def server_close(self):
        super().server_close()
        self._door.stop()
        self._workers.close()
        self._writers.close()


_REASONS = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large",
            431: "Request Header Fields Too Large", 503: "Service Unavailable"}


def _error_answer(status, message, headers=(), close=False):
    """(status line, headers, body) of a JSON error the server gives without the app."""
    body = (json.dumps({"error": message, "path": "$" if status == 413 else None})
            + "\n").encode()
    return f"{status} {_REASONS[status]}", [
        ("Content-Type", "application/json"), *headers, *([("Connection", "close")]
                                                          if close else []),
        ("Content-Length", str(len(body)))], body


def _raw_answer(answer):
    status, headers, body = answer
    head = "".join(f"{k}: {v}\r\n" for k, v in headers)
    return f"HTTP/1.0 {status}\r\n{head}\r\n".encode() + body


def _busy(what, retry=5):
    return _error_answer(503, f"{what}: try again later", [("Retry-After", str(retry))])


class _ServerHandler(ServerHandler):
    """Hands an event stream to a stream thread of its own instead of writing it here."""

    def finish_response(self):
        kind = self.headers.get("Content-Type", "") if self.headers else ""
        handler = self.request_handler
        if not kind.startswith("text/event-stream") or self.headers_sent or handler.detached:
            return super().finish_response()
        if handler.server.to_stream(handler, self._stream):
            return None
        if hasattr(self.result, "close"):
            self.result.close()
        status, headers, body = _busy(f"too many event streams open "
                                      f"({handler.server.streams})")
        self.status = self.headers = None
        self.start_response(status, headers)
        self.result = [body]
        return super().finish_response()

    def _stream(self):
        try:
            super().finish_response()
        except OSError:             # the listener went away (or stopped reading)
            pass


class _Handler(WSGIRequestHandler):
    """One whole request (the doorman read it: this never reads from the client)."""
    timeout = WRITE_TIMEOUT         # for the answer: a client that does not take it
    detached = False                # another thread finishes this request

    def log_message(self, fmt, *args):
        log.info("%s %s", self.address_string(), fmt % args)

    def setup(self):
        super().setup()
        self.rfile.close()
        self.rfile = io.BytesIO(self.server._early.pop(self.request, b""))

    def get_environ(self):
        env = super().get_environ()
        env["unlite.gone"] = lambda: _peer_closed(self.connection)
        return env

    def handle(self):               # WSGIRequestHandler.handle, minus its socket reads
        self.raw_requestline = self.rfile.readline(HEAD_MAX + 1)
        if not self.parse_request():
            return
        handler = _ServerHandler(self.rfile, self.wfile, self.get_stderr(),
                                 self.get_environ(), multithread=True)
        handler.request_handler = self
        handler.run(self.server.get_app())

    def finish(self):
        if not self.detached:       # else the thread it was handed to calls finish_detached
            super().finish()

    def finish_detached(self):
        super().finish()


def _peer_closed(sock):
    """True once the client closed its end (readable, and nothing left to read)."""
    try:
        poll = select.poll()
        poll.register(sock, select.POLLIN)
        return bool(poll.poll(0)) and not sock.recv(1, socket.MSG_PEEK)
    except (OSError, ValueError):
        return True


def tcp_server(app, host, port, writes=writes_by_method):
    """Serve ``app`` on ``host``:``port``; ``writes(method, path)`` says which requests go to
    the write lane (called on the doorman's thread: keep it cheap)."""
    server = make_server(host, port, app, server_class=_Server, handler_class=_Handler)
    server.writes = writes
    return server


class _UnixServer(_Server):
    """The same WSGI app on a unix stream socket (the rpcd plugin and local tools use it;
    only root may connect: the file is made mode 0600)."""
    address_family = socket.AF_UNIX
    allow_reuse_address = False
    connections = 16                # rpcd calls one at a time, a local tool beside it
    _bound = False

    def server_bind(self):
        path = self.server_address
        old = os.umask(0o177)                   # the socket file is born 0600
        try:
            self.socket.bind(path)
        finally:
            os.umask(old)
        self._bound = True
        self.server_name, self.server_port = "localhost", 0
        self.setup_environ()

    def get_request(self):
        conn, _ = self.socket.accept()
        return conn, ("unix", 0)

    def server_close(self):
        super().server_close()
        if self._bound:                         # never remove a socket someone else made
            try:
                os.unlink(self.server_address)
            except OSError:
                pass


def unix_server(app, path, writes=writes_by_method):
    """Serve ``app`` on unix socket ``path``. A stale socket file (nobody answering) is
    replaced; a live one means another daemon: OSError."""
    path = os.path.abspath(path)
    if len(os.fsencode(path)) > 107:
        raise OSError(f"unix socket path {path} is longer than 107 bytes")
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if os.path.exists(path) or os.path.islink(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)                     # left by a daemon that died
        except OSError as e:
            raise OSError(f"{path} exists and is not a usable socket: {e.strerror}") from None
        else:
            raise OSError(f"{path}: another unlite daemon is answering there")
        finally:
            probe.close()
    server = _UnixServer(path, _Handler)
    server.set_app(app)
    server.writes = writes
    return server
