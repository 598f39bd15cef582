"""Tenants: who may call the API, which graphs they see, which interfaces they may steer.

Configured in UCI (``config tenant 'NAME'`` with ``list token``, ``list interface`` and
``option admin``). With no tenant configured the API is open (a loopback-only laptop or
demo); with one or more, every call but ``/healthz``, ``/openapi.json`` and ``POST /login``
needs a token, as ``X-Auth-Token: T`` (the Universal Node's header) or
``Authorization: Bearer T``. ``POST /login`` {"username": NAME, "password": TOKEN} returns a
session token (the UN's way), valid for ``SESSION_TTL``.

A tenant sees and changes only its own graphs (others' do not exist for it: 404), steers
only the interfaces it is given (``list interface``; none listed = none), cannot use the
node's own stack (``host-stack`` end-points), and its ``internal`` groups are its own. An
admin tenant sees everything.

Calls over the daemon's unix socket (mode 0600: root only, the rpcd plugin) and the daemon's
ubus object are ``ROOT``: an identity, not a name. Its graphs have no owner record, so no
tenant, whatever its name, can own, list or join them (their ``internal`` groups are the
node's). ``admin`` is refused as a tenant name (``RESERVED``): it is what older versions
called the socket's caller, and their owner records saying ``admin`` are root's.
"""
from __future__ import annotations

import hmac
import os
import threading
import time
from dataclasses import dataclass

SESSION_TTL = 12 * 3600
MAX_SESSIONS = 1024


@dataclass(frozen=True)
class Tenant:
    name: str
    tokens: tuple[str, ...] = ()
    interfaces: tuple[str, ...] | None = ()   # None: any interface
    admin: bool = False
    root: bool = False              # the unix socket's caller: no tenant can be it

    def may_use(self, ifname):
        return self.admin or self.interfaces is None or ifname in self.interfaces

    @property
    def owner(self):
        """What an owner record says for a graph this caller makes: its name, or None for
        root (root's graphs are nobody's: no record)."""
        return None if self.root else self.name


# The unix socket's and the ubus object's caller. Its name is not a UCI section name (those
# are letters, digits and '_'), and it is never compared: ``root`` is.
ROOT = Tenant("(root)", admin=True, interfaces=None, root=True)
LEGACY_ROOT = "admin"             # the socket's caller's name in older owner records
RESERVED = (LEGACY_ROOT,)


def owner_of(tenant):
    """The owner a change by ``tenant`` (None: no tenancy) records."""
    return tenant.owner if tenant is not None else None


class Tenants:
    def __init__(self, tenants=()):
        self.by_name = {t.name: t for t in tenants}
        self._sessions: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self):
        return bool(self.by_name)

    def _match_token(self, token):
        found = None
        for t in self.by_name.values():
            for known in t.tokens:
                if hmac.compare_digest(known.encode(), token.encode()):
                    found = t
        return found

    def authenticate(self, token):
        """The tenant a token (configured or from /login) stands for, or None."""
        if not token:
            return None
        t = self._match_token(token)
        if t:
            return t
        with self._lock:
            name, expires = self._sessions.get(token, (None, 0))
            if name and expires > time.monotonic():
                return self.by_name.get(name)
            self._sessions.pop(token, None)
        return None

    def login(self, username, password):
        """A new session token for tenant ``username`` whose token is ``password``."""
        t = self.by_name.get(username) if isinstance(username, str) else None
        if not (t and isinstance(password, str)
                and any(hmac.compare_digest(k.encode(), password.encode()) for k in t.tokens)):
            return None
        token = os.urandom(24).hex()
        with self._lock:
            now = time.monotonic()
            for k, (_, exp) in list(self._sessions.items()):
                if exp <= now:
                    del self._sessions[k]
            if len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[token] = (t.name, now + SESSION_TTL)
        return token


def from_config(sections):
    """Tenants from parsed UCI ``{name: {"token": [...], "interface": [...], "admin": "1"}}``."""
    out = []
    for name, opts in sections.items():
        tokens = tuple(opts.get("tokens") or ())
        ifaces = opts.get("interfaces")
        admin = bool(opts.get("admin"))
        out.append(Tenant(name, tokens, None if admin else tuple(ifaces or ()), admin))
    return Tenants(out)
