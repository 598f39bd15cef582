"""The daemon's settings in one table: each has one name, one default and one check.

A row is a setting of ``unlite serve``: its UCI option in ``config unlite 'main'`` (the
same word as its flag, ``_`` for ``-``), the default the daemon uses when neither the
command line nor the file sets it, the value the shipped ``/etc/config/unlite`` gives it on
a router when that differs, and what a value may be. Everything else reads this table:

- ``cli.parser``        the ``serve`` flags, their defaults and their help;
- ``uci``               which options a file may set, how each is checked (choices,
                        ADDR:PORT, booleans, '' for off);
- ``ubus.rpcd``         the unix socket and the ubus mode when the file says nothing;
- ``files/etc/config/unlite``  a unit test checks that every setting is there, each with
                        the router value below (or commented out: the default applies).

Import-free on purpose: the rpcd exec plugin runs a process per ubus call and reads it.
"""
from __future__ import annotations

import os

ROUTER_NNF_DIR = "/usr/share/unlite/nnf"


class Setting:
    """One setting. ``kind``: 'text' (a string), 'bool' (a flag; UCI '1'/'0'), 'path-or-off'
    (a path; '' in UCI and no flag: off). ``default`` None: unset (off). ``router``: the
    shipped file's value where it differs from ``default``. ``pattern``: a regular
    expression a UCI value must match whole (its ``metavar`` says what it is)."""
    __slots__ = ("name", "default", "router", "kind", "choices", "metavar", "help", "short",
                 "pattern")

    def __init__(self, name, default, help, kind="text", choices=None, metavar=None,
                 router=None, short=None, pattern=None):
        self.name, self.default, self.help, self.kind = name, default, help, kind
        self.choices, self.metavar, self.short = choices, metavar, short
        self.pattern = pattern
        self.router = default if router is None else router

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")

    def value(self):
        """The default as the daemon uses it (``nnf_dir``'s depends on the machine)."""
        return self.default() if callable(self.default) else self.default


def default_nnf_dir():
    """The packed catalog: ``$UNLITE_NNF_DIR``, on a router /usr/share/unlite/nnf, in a
    checkout build/nnf (``make nnf``)."""
    checkout = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "build", "nnf")
    for d in (os.environ.get("UNLITE_NNF_DIR"), ROUTER_NNF_DIR, checkout):
        if d and os.path.isdir(d):
            return d
    return ROUTER_NNF_DIR


SETTINGS = (
    Setting("listen", "127.0.0.1:8080", "the REST API's ADDR:PORT (keep it on a loopback "
            "address unless tenants are configured)", metavar="ADDR:PORT",
            pattern=r"(\[[0-9A-Fa-f:.]+\]|[^:\s]+):\d{1,5}"),
    Setting("backend", "nft", "steering backend", choices=("nft", "tc", "ovs")),
    Setting("state_dir", "/etc/unlite", "desired graphs (flash; written only on change)",
            metavar="DIR"),
    Setting("run_dir", "/var/run/unlite", "runtime records (RAM)", metavar="DIR"),
    Setting("nnf_dir", default_nnf_dir, "NNF repository (the packed catalog)",
            metavar="DIR", router=ROUTER_NNF_DIR),
    Setting("prefer", None, "flavour preference of the VNF resolver (default: "
            "nftables,linux-bridge,ebtables,iptables)", metavar="FLAVOUR,..."),
    Setting("ovs_datapath", "system", "OVS datapath type: system (kernel module) or netdev "
            "(userspace)", choices=("system", "netdev")),
    Setting("verbose", False, "log every command", kind="bool", short="-v"),
    Setting("socket", None, "also serve the API on this unix socket (root only: the rpcd "
            "plugin, local tools)", kind="path-or-off", metavar="PATH",
            router="/var/run/unlite/unlite.sock"),
    Setting("ubus", "daemon", "ubus object unlite: registered by the daemon, by rpcd's exec "
            "plugin (the daemon only sends events), or none", choices=("daemon", "rpcd", "off")),
    Setting("ubus_socket", "/var/run/ubus/ubus.sock", "ubusd's socket", metavar="PATH"),
    Setting("usp", None, "be a USP (TR-369) Service: connect to a USP Broker's controller Unix "
            "domain socket (obuspa's) and register Device.SoftwareModules.",
            kind="path-or-off", metavar="SOCKET"),
    Setting("usp_tenant", None, "the tenant (config tenant NAME) the USP face acts as: its "
            "graphs only, its interfaces; unset: root, every graph (the operator's "
            "controller is admin; which controllers reach it is the Broker's roles)",
            metavar="NAME"),
    Setting("on_exit", "stop", "at SIGTERM: 'stop' every NF and remove what unlite made, or "
            "'keep' it running for the next start to adopt (restarts and upgrades cut no "
            "traffic; SIGUSR1 before SIGTERM stops them this once)", choices=("stop", "keep"),
            router="keep"),
    Setting("nf_memory", "64M", "memory cap of an NF whose template sets none (its cgroup; the "
            "OOM killer acts inside it); 0: none", metavar="SIZE"),
    Setting("nf_pids", "128", "process cap of an NF whose template sets none; 0: none",
            metavar="N"),
)
BY_NAME = {s.name: s for s in SETTINGS}


def router(name):
    """The value a router's /etc/config/unlite gives setting ``name`` (None: off)."""
    return BY_NAME[name].router


def url():
    """The client commands' daemon: ``$UNLITE_URL`` or the default listen address."""
    return os.environ.get("UNLITE_URL") or "http://" + BY_NAME["listen"].default
