"""Tenants: who may call the API, which graphs they see, which interfaces they may steer.

Configured in UCI (``config tenant 'NAME'`` with ``list token``, ``list interface`` and
``option admin``). With no tenant configured the API is open (a loopback-only laptop or
demo); with one or more, every call but ``/healthz``, ``/openapi.json`` and ``POST /login``
needs a token, as ``X-Auth-Token: T`` (the Universal Node's header) or
``Authorization: Bearer T``. ``POST /login`` {"username": NAME, "password": TOKEN} returns a
session token (the UN's way), valid for ``SESSION_TTL``.

Logins cannot hurt other tenants: each tenant holds at most ``SESSIONS_PER_TENANT`` sessions
(its new login ends its own oldest, nobody else's), and failed logins are throttled
(``Throttle``) per user name and, more loosely, per client address: after a few failures the
name (or address) is refused for a while that doubles with each further failure (429 with
Retry-After), without the password being looked at. A name locked by someone guessing does
not lock out any other name, nor its own tenant's configured tokens and live sessions.

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
import math
import os
import threading
import time
from dataclasses import dataclass

SESSION_TTL = 12 * 3600
SESSIONS_PER_TENANT = 32        # a browser, LuCI, a script or two: each login is one


@dataclass(frozen=True)
class Tenant:
    name: str
    tokens: tuple[str, ...] = ()
    interfaces: tuple[str, ...] | None = ()   # None: any interface
    admin: bool = False
    root: bool = False              # the unix socket's caller: no tenant can be it
    control: tuple[tuple[str, int, int], ...] = ()   # unify-control: (node address, ports)

    def may_use(self, ifname):
        return self.admin or self.interfaces is None or ifname in self.interfaces

    def control_addresses(self, port):
        """The node addresses on which this tenant's NFs may take TCP ``port`` for
        ``unify-control`` (``list control 'ADDR:PORT[-PORT]'``); none unless granted."""
        return sorted({a for a, lo, hi in self.control if lo <= port <= hi})

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


class Throttled(Exception):
    """A login refused unseen: its name or address failed too often; try after ``retry``
    seconds."""

    def __init__(self, retry):
        super().__init__(f"too many failed logins: try again in {retry} s")
        self.retry = retry


class Throttle:
    """Failed attempts per key (``user:NAME``, ``addr:IP``): the first ``free`` failures
    cost nothing, each one after locks the key for 1, 2, 4 ... ``LOCK_MAX`` seconds. A key
    forgets its failures ``FORGET`` seconds after the last one; the table holds at most
    ``KEYS`` keys (the stalest go first), so guessing from many addresses costs memory once.
    """
    LOCK_MAX, FORGET, KEYS = 300, 900, 4096

    def __init__(self):
        self._keys: dict[str, list] = {}       # key → [failures, locked until, last failure]

    def wait(self, keys, now):
        """Seconds until every key may try again (0: now)."""
        until = max((self._keys[k][1] for k in keys if k in self._keys), default=0)
        return max(0, math.ceil(until - now))

    def failed(self, key, free, now):
        e = self._keys.get(key)
        if e is None or now - e[2] > self.FORGET:
            if len(self._keys) >= self.KEYS:
                self._keys.pop(min(self._keys, key=lambda k: self._keys[k][2]))
            e = self._keys[key] = [0, 0.0, now]
        e[0], e[2] = e[0] + 1, now
        if e[0] >= free:
            e[1] = now + min(self.LOCK_MAX, 2 ** (e[0] - free))

    def forget(self, key):
        self._keys.pop(key, None)


USER_FREE = 5       # failures of one name before it waits
ADDR_FREE = 10      # of one address (several names: a spray), before it waits


class Tenants:
    def __init__(self, tenants=()):
        self.by_name = {t.name: t for t in tenants}
        self._sessions: dict[str, tuple[str, float]] = {}     # token → (tenant, expires)
        self._lock = threading.Lock()
        self.throttle = Throttle()

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

    def login(self, username, password, addr=None):
        """A new session token for tenant ``username`` whose token is ``password``; None
        for a wrong one; ``Throttled`` when the name or ``addr`` must wait first."""
        t = self.by_name.get(username) if isinstance(username, str) else None
        # names that are no tenant's share one key: guessing them fills no table
        keys = [f"user:{t.name}" if t else "user:", f"addr:{addr}"]
        with self._lock:
            now = time.monotonic()
            retry = self.throttle.wait(keys, now)
            if retry:
                raise Throttled(retry)
            if not (t and isinstance(password, str) and any(
                    hmac.compare_digest(k.encode(), password.encode()) for k in t.tokens)):
                self.throttle.failed(keys[0], USER_FREE, now)
                self.throttle.failed(keys[1], ADDR_FREE, now)
                return None
            self.throttle.forget(keys[0])
            token = os.urandom(24).hex()
            for k, (_, exp) in list(self._sessions.items()):
                if exp <= now:
                    del self._sessions[k]
            own = [k for k, (name, _) in self._sessions.items() if name == t.name]
            for k in own[:max(0, len(own) - SESSIONS_PER_TENANT + 1)]:   # its oldest only
                del self._sessions[k]
            self._sessions[token] = (t.name, now + SESSION_TTL)
        return token


def from_config(sections):
    """Tenants from parsed UCI ``{name: {"token": [...], "interface": [...], "admin": "1"}}``."""
    out = []
    for name, opts in sections.items():
        tokens = tuple(opts.get("tokens") or ())
        ifaces = opts.get("interfaces")
        admin = bool(opts.get("admin"))
        out.append(Tenant(name, tokens, None if admin else tuple(ifaces or ()), admin,
                          control=tuple(tuple(c) for c in opts.get("control") or ())))
    return Tenants(out)
