"""The HTTP server under the API: wsgiref's, with a bounded number of threads.

So that memory stays bounded under any load, and a slow deploy never blocks reads:

- ``_Doorman``   one thread and a selector read every request until it is all there, so
                 idle and slow clients hold no thread;
- ``_Lane``      a few threads taking jobs in order: 2 workers parse requests and answer
                 reads, 1 writer runs the changes (they queue behind the node's lock anyway);
- event streams (``text/event-stream`` answers) move to a thread of their own, 16 at most;
- ``tcp_server`` / ``unix_server``  the WSGI app on a TCP port or a unix socket (0600).

Pure plumbing: no route and no unlite object is known here.
"""
from __future__ import annotations

import io
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
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server

log = logging.getLogger("unlite.http")         # one line per request

MAX_BODY = 1 << 20  # 1 MiB: a graph is a few KiB; anything larger is a mistake or an attack
REQUEST_TIMEOUT = 30  # seconds a client may take to send a request (or to take a chunk)


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
HEAD_MAX = 64 << 10                 # request line and headers; more: the handler refuses it


def _request_read(buf):
    """Whether ``buf`` holds a whole request (head and Content-Length body), or as much of
    one as a worker should wait for: not a chunked, oversized or 100-continue body, which
    the worker reads (or refuses) itself."""
    m = _HEAD_END.search(buf)
    if m is None:
        return len(buf) > HEAD_MAX
    length = 0
    for line in bytes(buf[:m.start()]).split(b"\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"transfer-encoding" or (name == b"expect" and value == b"100-continue"):
            return True
        if name == b"content-length":
            length = int(value) if value.isdigit() else 0
    return length > MAX_BODY or len(buf) >= m.end() + length


class _Doorman:
    """Reads requests on one thread and a selector, and hands each connection to
    ``dispatch(conn, addr, data)`` once its request is all there (``_request_read``) or the
    client closed its end: so neither a connection opened ahead of need and left idle (as
    browsers do) nor a slow client ever holds a worker. One that sends no whole request
    within ``timeout`` seconds is given to ``close``; past ``room`` bytes held in all, the
    longest waiting goes to a worker as it is (which then reads the rest itself)."""

    def __init__(self, dispatch, close, timeout, room=4 << 20):
        self.dispatch, self.close, self.timeout, self.room = dispatch, close, timeout, room
        self._new = queue.SimpleQueue()
        self._wake, self._waker = socket.socketpair()
        self._waker.setblocking(False)
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
        waiting = {}                # conn -> [addr, deadline, bytes read so far]
        held = 0
        with selectors.DefaultSelector() as sel:
            sel.register(self._wake, selectors.EVENT_READ)

            def leave(conn):
                nonlocal held
                sel.unregister(conn)
                addr, _, buf = waiting.pop(conn)
                held -= len(buf)
                return addr, bytes(buf)

            while True:
                for key, _ in sel.select(timeout=1.0):
                    conn = key.fileobj
                    if conn is self._wake:
                        conn.recv(4096)
                        continue
                    try:
                        data = conn.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    waiting[conn][2] += data
                    held += len(data)
                    if not data or _request_read(waiting[conn][2]):
                        self.dispatch(conn, *leave(conn))
                while held > self.room:
                    conn = next(iter(waiting))
                    self.dispatch(conn, *leave(conn))
                while not self._new.empty():
                    conn, addr = self._new.get()
                    if conn is None:            # stop: nobody will answer the others
                        for conn in list(waiting):
                            leave(conn)
                            self.close(conn)
                        return
                    waiting[conn] = [addr, time.monotonic() + self.timeout, bytearray()]
                    conn.setblocking(False)     # the handler sets its own timeout
                    sel.register(conn, selectors.EVENT_READ)
                now = time.monotonic()
                for conn in [c for c, (_, deadline, _) in waiting.items() if deadline < now]:
                    leave(conn)
                    self.close(conn)


class _Early(io.RawIOBase):
    """A connection's input: the bytes the doorman read, then the socket."""

    def __init__(self, data, sock):
        self._data, self._sock = memoryview(data), socket.SocketIO(sock, "rb")

    def readable(self):
        return True

    def readinto(self, b):
        if not self._data:
            return self._sock.readinto(b)
        n = min(len(b), len(self._data))
        b[:n], self._data = self._data[:n], self._data[n:]
        return n

    def close(self):
        self._sock.close()
        super().close()


class _Server(WSGIServer):
    """The WSGI server, with bounded threads (and so bounded memory) under any load:

    - at most ``connections`` are open at once; more clients wait in the listen backlog.
      The doorman reads each request on one selector (``_Doorman``), so idle and slow
      clients hold no thread.
    - ``workers`` threads then parse each request and answer reads (GET) themselves.
    - ``writers`` threads run the requests that change something: those wait for the
      node's lock anyway, and so never keep the workers from answering reads.
    - an event stream (``GET /events``) moves to a thread of its own, at most ``streams``
      at once (more get 503), so listeners never take a worker.
    """
    allow_reuse_address = True
    request_queue_size = 128        # listen backlog: socketserver's 5 resets bursts of clients
    connections, workers, writers, streams = 64, 2, 1, 16

    def __init__(self, *args, **kwargs):
        self._room = threading.Semaphore(self.connections)
        self._workers = _Lane("http", self.workers)
        self._writers = _Lane("http-write", self.writers)
        self._free = threading.Semaphore(self.workers)
        self._stream_slots = threading.Semaphore(self.streams)
        self._early = {}            # connection -> the bytes the doorman read from it
        super().__init__(*args, **kwargs)
        self._door = _Doorman(self._dispatch, self.shutdown_request, REQUEST_TIMEOUT)

    def process_request(self, request, client_address):
        self._room.acquire()        # at most ``connections`` open: the backlog holds more
        self._door.admit(request, client_address)

    def _dispatch(self, request, client_address, data):
        self._free.acquire()        # its request is in: wait for a free worker
        self._early[request] = data
        self._workers.submit(lambda: self._serve(request, client_address))

    def shutdown_request(self, request):
        self._early.pop(request, None)
        try:
            super().shutdown_request(request)
        finally:
            self._room.release()

    def _serve(self, request, client_address):
        handler = None
        try:
            handler = self.RequestHandlerClass(request, client_address, self)
        except Exception:           # noqa: BLE001 - as socketserver does: log, go on
            self.handle_error(request, client_address)
        finally:
            if not (handler and handler.detached):
                self.shutdown_request(request)
            self._free.release()

    def to_writer(self, handler, job):
        """Finish ``handler``'s request with ``job`` on a writer; the worker goes back."""
        handler.detached = True
        self._writers.submit(lambda: self._finish(handler, job))

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


_LATE = object()


def _error_answer(status, message, headers=()):
    """(status line, headers, body) of a JSON error the server gives without the app."""
    body = (json.dumps({"error": message, "path": None}) + "\n").encode()
    reason = {400: "Bad Request", 503: "Service Unavailable"}[status]
    return f"{status} {reason}", [("Content-Type", "application/json"), *headers,
                                  ("Content-Length", str(len(body)))], body


def _busy(what, retry=5):
    return _error_answer(503, f"{what}: try again later", [("Retry-After", str(retry))])


def _answer(answer):
    """A WSGI app that gives one fixed answer."""
    def app(environ, start_response):
        start_response(*answer[:2])
        return [answer[2]]
    return app


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


READS = ("GET", "HEAD", "OPTIONS")


class _Handler(WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT       # for what the doorman did not read: a chunked body
    detached = False                # another thread finishes this request

    def log_message(self, fmt, *args):
        log.info("%s %s", self.address_string(), fmt % args)

    def setup(self):
        super().setup()
        early = self.server._early.pop(self.request, b"")
        if early:                   # what the doorman read comes first
            self.rfile.close()
            self.rfile = io.BufferedReader(_Early(early, self.connection))

    def get_environ(self):
        env = super().get_environ()
        env["unlite.gone"] = lambda: _peer_closed(self.connection)
        return env

    def handle(self):               # WSGIRequestHandler.handle, and the hand-over of writes
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        body = self._body() if self.command not in READS else None
        if body is None:
            return self._run(self.rfile)
        if body is _LATE:
            return self._run(self.rfile, _answer(_error_answer(
                400, f"the body did not arrive within {REQUEST_TIMEOUT} s")))
        self.server.to_writer(self, lambda: self._run(io.BytesIO(body)))
        return None

    def _body(self):
        """A write's body (the doorman has read it, unless it is chunked, too large or the
        doorman held too much: then it is read here), so that a writer never waits for the
        client; None when the app had better read the stream itself (chunked, no or a bad
        length, too large: it answers at once), _LATE when the client is too slow."""
        length = (self.headers.get("Content-Length") or "0").strip()
        if self.headers.get("Transfer-Encoding") or not length.isdigit() \
                or int(length) > MAX_BODY:
            return None
        try:
            return self.rfile.read(int(length))
        except OSError:
            return _LATE

    def _run(self, stdin, app=None):
        handler = _ServerHandler(stdin, self.wfile, self.get_stderr(), self.get_environ(),
                                 multithread=True)
        handler.request_handler = self
        handler.run(app or self.server.get_app())

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


def tcp_server(app, host, port):
    return make_server(host, port, app, server_class=_Server, handler_class=_Handler)


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


def unix_server(app, path):
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
    return server
