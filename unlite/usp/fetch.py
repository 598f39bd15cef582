"""A Deployment Unit's document from its URL: ``file://``, ``http://`` and ``https://``.

``read(url, username, password)`` returns the bytes (at most ``MAX_BYTES``) or raises
``FetchFailed(code, message)`` with the TR-181 transfer fault of what went wrong
(``faults.Code``: unsupported scheme 7213, server unreachable 7216, no such file 7217,
credentials refused 7212, cut off or timed out 7218, too large 7227).

- ``file://`` (or ``file://localhost/``): a file on the gateway;
- ``http://``: in the daemon (urllib), Basic credentials from ``Username``/``Password`` in a
  header; redirects only to other http URLs (never to ``file:``, ``ftp:``);
- ``https://``: the daemon keeps OpenSSL out of its memory (``cli.lean_imports``), so through
  the system's fetcher (``sh.fetch``: ``uclient-fetch`` on OpenWrt, ``curl`` elsewhere), where
  Python has TLS through urllib too. A URL with credentials in it (``user:pw@host``) is
  refused: TR-369 lists userinfo in the URL as a fault; credentials go in the arguments.
"""
from __future__ import annotations

import base64
import re
import socket
import urllib.error
import urllib.parse
import urllib.request

from .. import sh
from .faults import Code

MAX_BYTES = 1 << 20
TIMEOUT = 30.0


class FetchFailed(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def read(url, username="", password="", max_bytes=MAX_BYTES, timeout=TIMEOUT):
    try:
        u = urllib.parse.urlsplit(url)
        u.port                                          # noqa: B018 - a bad port raises here
    except ValueError as e:
        raise FetchFailed(Code.INVALID_ARGS, f"URL: '{url}' is not a URL: {e}") from None
    if u.username is not None or u.password is not None:
        raise FetchFailed(Code.INVALID_ARGS, "URL: credentials belong in Username and Password, "
                          "not in the URL")
    if u.scheme == "file":
        data = _file(u, max_bytes)
    elif u.scheme == "http" or u.scheme == "https" and _has_tls():
        data = _http(url, username, password, max_bytes, timeout)
    elif u.scheme == "https":
        data = _system(url, username, password, max_bytes, timeout)
    else:
        raise FetchFailed(Code.UNSUPPORTED_PROTOCOL, f"URL: unlite fetches file, http and "
                          f"https URLs, not '{u.scheme}:'")
    if len(data) > max_bytes:
        raise FetchFailed(Code.SYSTEM_RESOURCES, f"URL: {url} is over {max_bytes} bytes")
    return data


def _file(u, max_bytes):
    if u.netloc not in ("", "localhost"):
        raise FetchFailed(Code.UNSUPPORTED_PROTOCOL, f"URL: file:// of another host "
                          f"('{u.netloc}') cannot be read here")
    path = urllib.parse.unquote(u.path)
    try:
        with open(path, "rb") as f:
            return f.read(max_bytes + 1)
    except OSError as e:
        raise FetchFailed(Code.CANNOT_ACCESS, f"URL: cannot read {path}: {e.strerror}") from None


class _HttpOnly(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urllib.parse.urlsplit(newurl).scheme
        if scheme != urllib.parse.urlsplit(req.full_url).scheme:
            raise FetchFailed(Code.CANNOT_ACCESS, f"URL: {req.full_url} redirects to "
                              f"{newurl}: give that URL")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _http(url, username, password, max_bytes, timeout):
    req = urllib.request.Request(url, headers={"User-Agent": "unlite"})
    if username or password:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    opener = urllib.request.build_opener(_HttpOnly)
    try:
        with opener.open(req, timeout=timeout) as r:
            data = r.read(max_bytes + 1)
            if len(data) <= max_bytes and r.length:     # Content-Length said more
                raise FetchFailed(Code.INCOMPLETE, f"URL: {url}: the transfer broke off "
                                  f"after {len(data)} of {len(data) + r.length} bytes")
            return data
    except FetchFailed:
        raise
    except urllib.error.HTTPError as e:
        code = Code.TRANSFER_AUTH if e.code in (401, 407) else Code.CANNOT_ACCESS
        raise FetchFailed(code, f"URL: {url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        why = e.reason
        if isinstance(why, (socket.timeout, TimeoutError)):
            raise FetchFailed(Code.INCOMPLETE, f"URL: {url}: no answer in {timeout:.0f} s") \
                from None
        raise FetchFailed(Code.CANNOT_CONTACT, f"URL: cannot reach {url}: "
                          f"{getattr(why, 'strerror', None) or why}") from None
    except (socket.timeout, TimeoutError):
        raise FetchFailed(Code.INCOMPLETE, f"URL: {url}: the transfer stopped for "
                          f"{timeout:.0f} s") from None
    except (OSError, ValueError) as e:          # http.client.IncompleteRead, a reset...
        raise FetchFailed(Code.INCOMPLETE, f"URL: {url}: the transfer broke off: {e}") from None


def _system(url, username, password, max_bytes, timeout):
    try:
        return sh.fetch(url, max_bytes + 1, timeout, username, password)
    except OSError as e:
        msg = str(e)
        if re.search(r"\b40[17]\b", msg):
            code = Code.TRANSFER_AUTH
        elif re.search(r"\b(403|404|410)\b", msg):
            code = Code.CANNOT_ACCESS
        elif "timed out" in msg or re.search(r"\btime(out|d out)\b", msg, re.I):
            code = Code.INCOMPLETE
        else:
            code = Code.CANNOT_CONTACT
        raise FetchFailed(code, f"URL: {url}: {msg}") from None


def _has_tls():
    try:
        import ssl  # noqa: F401
        return True
    except ImportError:
        return False
