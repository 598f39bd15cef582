"""UCI config files (OpenWrt's ``/etc/config/*``) read without libuci, and how ``unlite serve
--uci FILE`` takes its settings from one.

- ``parse`` / ``load``      text or file → a list of ``Section`` (type, name, options); a
                            malformed line raises ``UciError`` naming FILE:LINE
- ``truth``                 UCI booleans ('1'/'yes'/'on'/'true'/'enabled' and their opposites)
- ``mark_defaults``         flags the ``serve`` subparser's defaults, so a value the user gave
                            on the command line can be told from one argparse filled in
- ``apply_serve_args``      fills what the command line left open from section
                            ``config unlite 'main'`` and reads the ``config tenant`` sections

The syntax read is what ``uci export`` writes and what people type: ``package NAME``,
``config TYPE ['NAME']``, ``option KEY VALUE``, ``list KEY VALUE``, ``#`` comments; values
unquoted, in '...' or in "..." (shell-like quoting, one line each).
"""
from __future__ import annotations

import re
import shlex

from .settings import BY_NAME as SETTINGS

_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_TRUE = {"1", "yes", "on", "true", "enabled"}
_FALSE = {"0", "no", "off", "false", "disabled"}



class UciError(ValueError):
    pass


class Section:
    """A plain class, not a dataclass: the rpcd exec plugin reads the file at every call,
    and dataclasses costs it an import of inspect."""
    __slots__ = ("type", "name", "line", "options")

    def __init__(self, type, name, line, options=None):
        self.type = type
        self.name = name            # None: an anonymous section (``uci`` calls it @type[n])
        self.line = line
        self.options = {} if options is None else options   # key -> str | list[str]

    def __repr__(self):
        return f"Section({self.type!r}, {self.name!r}, line {self.line}, {self.options!r})"

    def __eq__(self, other):
        return isinstance(other, Section) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)


def parse(text, source="<uci>"):
    """Sections of a UCI file, in file order."""
    sections = []
    for n, raw in enumerate(text.splitlines(), 1):
        try:
            words = shlex.split(raw, comments=True, posix=True)
        except ValueError as e:
            raise UciError(f"{source}:{n}: {e} (values must be quoted on one line)") from None
        if not words:
            continue
        kw, args = words[0], words[1:]
        where = f"{source}:{n}"
        if kw == "package":
            if len(args) != 1:
                raise UciError(f"{where}: 'package' takes one name")
            continue
        if kw == "config":
            if not 1 <= len(args) <= 2:
                raise UciError(f"{where}: expected: config TYPE ['NAME']")
            for a in args:
                if not _NAME.match(a):
                    raise UciError(f"{where}: invalid section type or name {a!r} "
                                   f"(letters, digits and '_' only)")
            if len(args) == 2 and any(s.name == args[1] for s in sections):
                raise UciError(f"{where}: section '{args[1]}' defined twice")
            sections.append(Section(args[0], args[1] if len(args) == 2 else None, n))
            continue
        if kw in ("option", "list"):
            if not sections:
                raise UciError(f"{where}: '{kw}' before any 'config' line")
            if len(args) != 2:
                raise UciError(f"{where}: expected: {kw} KEY 'VALUE' (quote values with "
                               f"spaces)")
            key, value = args
            if not _NAME.match(key):
                raise UciError(f"{where}: invalid option name {key!r}")
            opts = sections[-1].options
            if kw == "option":
                opts[key] = value
            else:
                prev = opts.get(key)
                if isinstance(prev, str):
                    raise UciError(f"{where}: '{key}' is already an option, not a list")
                opts.setdefault(key, []).append(value)
            continue
        raise UciError(f"{where}: unknown statement {kw!r} (config, option, list, package)")
    return sections


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise UciError(f"cannot read UCI file {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise UciError(f"{path}: not UTF-8 text: {e}") from None
    return parse(text, str(path))


def truth(value, where="value"):
    v = str(value).strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise UciError(f"{where}: {value!r} is not a boolean (use '1' or '0')")


# -- unlite serve --uci ----------------------------------------------------------------------
class Default(str):
    """A string default argparse filled in (not typed by the user): UCI may replace it."""


def mark_defaults(subparser):
    """Call after the ``serve`` arguments are added. String defaults become ``Default`` (argparse
    hands them over unchanged), a store_true default becomes None."""
    for action in subparser._actions:              # argparse keeps no public list
        if action.dest not in SETTINGS:
            continue
        if isinstance(action.default, str):
            action.default = Default(action.default)
        elif action.default is False:
            action.default = None


def _given(value):
    return value is not None and not isinstance(value, Default)


def _control_grant(value, where):
    """``ADDR:PORT`` or ``ADDR:PORT-PORT`` (a tenant's ``list control``: the node IPv4
    address and TCP ports its NFs' unify-control may take) → [addr, first, last]."""
    m = re.fullmatch(r"(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})(?:-(\d{1,5}))?", value)
    lo = int(m.group(2)) if m else 0
    hi = int(m.group(3) or lo) if m else 0
    if not (m and all(int(b) <= 255 for b in m.group(1).split(".")) and 1 <= lo <= hi <= 65535):
        raise UciError(f"{where}: {value!r} is not ADDR:PORT or ADDR:PORT-PORT (an IPv4 "
                       "address of the node, TCP ports 1-65535)")
    return [m.group(1), lo, hi]


def apply_serve_args(a):
    """Fill ``a`` (parsed ``serve`` arguments) from UCI file ``a.uci``; flags given win.
    Sets ``a.tenants`` ({name: [tokens]}) and returns a list of warnings."""
    sections = load(a.uci)
    warnings = []
    mains = [s for s in sections if s.type == "unlite"]
    main = next((s for s in mains if s.name == "main"), mains[0] if mains else None)
    if main is None:
        warnings.append(f"{a.uci}: no 'config unlite' section; using the defaults")
    for key, value in (main.options.items() if main else ()):
        where = f"{a.uci}:{main.line}: option '{key}'"
        setting = SETTINGS.get(key)
        if setting is None:
            warnings.append(f"{where} is unknown and ignored (known: "
                            f"{', '.join(sorted(SETTINGS))})")
            continue
        if isinstance(value, list):
            raise UciError(f"{where} must be an option, not a list")
        if _given(getattr(a, key, None)):
            continue                                  # the command line wins
        setattr(a, key, check(setting, value, where))
    return _tenants(a, sections, warnings)


def check(setting, value, where):
    """A UCI value of ``setting`` as ``unlite serve`` takes it, or UciError saying why not."""
    if setting.kind == "bool":
        return truth(value, where)
    if setting.kind == "path-or-off" and not value:
        return None                                   # '' : no unix socket, no USP
    if setting.choices and value not in setting.choices:
        raise UciError(f"{where}: {value!r} is not one of {', '.join(setting.choices)}")
    if setting.pattern and not re.fullmatch(setting.pattern, value):
        raise UciError(f"{where}: {value!r} is not {setting.metavar}")
    return value


def _tenants(a, sections, warnings):
    from .tenants import RESERVED       # here: the rpcd plugin reads UCI without dataclasses
    tenants = {}
    for s in sections:
        if s.type != "tenant":
            continue
        if s.name is None:
            raise UciError(f"{a.uci}:{s.line}: a tenant section needs a name "
                           f"(config tenant 'NAME')")
        tokens = s.options.get("token", [])
        tokens = [tokens] if isinstance(tokens, str) else list(tokens)
        where = f"{a.uci}:{s.line}: tenant '{s.name}'"
        if s.name in RESERVED:
            raise UciError(f"{where}: the name '{s.name}' is reserved (it was the unix "
                           "socket's caller, root, whose graphs it would get): rename the "
                           "section")
        if not tokens:
            warnings.append(f"{where} has no token: it cannot log in")
        for tok in tokens:
            if len(tok) < 16:
                raise UciError(f"{where}: a token must be at least 16 characters")
        ifaces = s.options.get("interface", [])
        grants = s.options.get("control", [])
        grants = [grants] if isinstance(grants, str) else list(grants)
        tenants[s.name] = {
            "control": [_control_grant(g, f"{where} control") for g in grants],
            "tokens": tokens,
            "interfaces": [ifaces] if isinstance(ifaces, str) else list(ifaces),
            "admin": truth(s.options.get("admin", "0"), f"{where} option admin")}
    a.tenants = tenants
    return warnings
