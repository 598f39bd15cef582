"""libubox's blob and blobmsg formats, which carry every ubus message (pure data, no I/O).

A *blob attribute* is a 4-byte big-endian header — bit 31 "extended" (a blobmsg, which has a
name), bits 24-30 the id, bits 0-23 the length including the header — then its payload,
padded to 4 bytes. A *blobmsg* is an extended attribute whose id is its type (below) and
whose payload starts with a name: a 16-bit length, the bytes, a NUL, padded to 4.
Tables and arrays nest blobmsgs (an array's elements have empty names).

- ``attr(id, payload)`` / ``attrs(data)``       plain blob attributes (the ubus envelope)
- ``encode(obj)`` / ``decode(data)``            a JSON-like dict <-> the blobmsgs of a table,
                                                with the type choices libubox's JSON
                                                conversion makes (ints as INT32 when they fit)

Reference: libubox blob.h, blobmsg.h, blobmsg_json.c (read for the format, nothing copied).
"""
from __future__ import annotations

import struct

# blobmsg types (blobmsg.h); BOOL is INT8
UNSPEC, ARRAY, TABLE, STRING, INT64, INT32, INT16, INT8, DOUBLE = range(9)
BOOL = INT8
TYPE_NAMES = {UNSPEC: "unspec", ARRAY: "array", TABLE: "table", STRING: "string",
              INT64: "int64", INT32: "int32", INT16: "int16", INT8: "boolean",
              DOUBLE: "double"}

EXTENDED = 0x80000000
ID_SHIFT, ID_MASK, LEN_MASK = 24, 0x7F000000, 0x00FFFFFF
MAX_DEPTH = 32              # nesting a decoder follows before it calls the data hostile


class BlobError(ValueError):
    """Data that is not a well-formed blob (from a peer that is broken or hostile)."""


def _pad(n):
    return (n + 3) & ~3


def attr(id_, payload=b"", extended=False):
    """One blob attribute (header + payload + padding)."""
    size = 4 + len(payload)
    if size > LEN_MASK:
        raise BlobError(f"a blob attribute of {size} bytes is over the format's 16 MiB")
    head = (EXTENDED if extended else 0) | (id_ << ID_SHIFT) | size
    return struct.pack(">I", head) + payload + b"\0" * (_pad(size) - size)


def attrs(data):
    """[(id, extended, payload)] of the attributes packed in ``data``."""
    out, i, n = [], 0, len(data)
    while i < n:
        if n - i < 4:
            raise BlobError("a blob attribute header is cut short")
        (head,) = struct.unpack_from(">I", data, i)
        size = head & LEN_MASK
        if size < 4 or i + size > n:
            raise BlobError(f"a blob attribute claims {size} bytes, {n - i} are left")
        out.append(((head & ID_MASK) >> ID_SHIFT, bool(head & EXTENDED),
                    bytes(data[i + 4:i + size])))
        i += _pad(size)
    return out


def u32(id_, value):
    return attr(id_, struct.pack(">I", value & 0xFFFFFFFF))


def string(id_, value):
    return attr(id_, value.encode() + b"\0")


def get_u32(payload):
    if len(payload) < 4:
        raise BlobError("an int32 attribute is cut short")
    return struct.unpack_from(">I", payload)[0]


def get_string(payload):
    return payload.split(b"\0", 1)[0].decode("utf-8", "replace")


# -- blobmsg ---------------------------------------------------------------------------------
def _text(s):
    """UTF-8 bytes of a str (a lone surrogate, which JSON allows, becomes '?')."""
    return s.encode("utf-8", "replace")


_HEAD = struct.Struct(">I")
_NAMES: dict[str, bytes] = {}   # name → its padded name header: the few field names repeat
_NAMES_MAX = 4096               # (a table keyed by data, e.g. graph ids, fills it only so far)


def _name_header(name):
    hdr = _NAMES.get(name)
    if hdr is None:
        raw = _text(name)
        if len(raw) > 0xFFFF:
            raise BlobError("a blobmsg name is longer than 65,535 bytes")
        hdr = struct.pack(">H", len(raw)) + raw + b"\0"
        hdr += b"\0" * (_pad(len(hdr)) - len(hdr))
        if len(_NAMES) < _NAMES_MAX and len(raw) <= 64:
            _NAMES[name] = hdr
    return hdr


def _named(type_, name, value):
    """A blobmsg: ``attr(type_, name header + value, extended=True)``, in one go (a ``list``
    answer of many graphs is thousands of them)."""
    hdr = _name_header(name)
    size = 4 + len(hdr) + len(value)
    if size > LEN_MASK:
        raise BlobError(f"a blob attribute of {size} bytes is over the format's 16 MiB")
    pad = -size & 3
    return b"".join((_HEAD.pack(EXTENDED | (type_ << ID_SHIFT) | size), hdr, value,
                     b"\0" * pad))


def _value(name, v):
    if v is None:
        return _named(UNSPEC, name, b"")
    if v is True or v is False:
        return _named(BOOL, name, b"\1" if v else b"\0")
    if isinstance(v, int):
        if -(1 << 31) <= v < (1 << 31):
            return _named(INT32, name, struct.pack(">i", v))
        if -(1 << 63) <= v < (1 << 63):
            return _named(INT64, name, struct.pack(">q", v))
        raise BlobError(f"integer {v} does not fit 64 bits")
    if isinstance(v, float):
        return _named(DOUBLE, name, struct.pack(">d", v))
    if isinstance(v, str):
        return _named(STRING, name, _text(v) + b"\0")
    if isinstance(v, dict):
        return _named(TABLE, name, encode(v))
    if isinstance(v, (list, tuple)):
        return _named(ARRAY, name, b"".join(_value("", x) for x in v))
    raise BlobError(f"cannot carry a {type(v).__name__} over ubus")


def encode(obj):
    """The blobmsgs of a table (what a ubus message's DATA attribute holds)."""
    return b"".join(_value(str(k), v) for k, v in obj.items())


def _decode_one(type_, payload, depth):
    if type_ in (TABLE, ARRAY):
        return decode(payload, array=type_ == ARRAY, depth=depth + 1)
    if type_ == STRING:
        return payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    fmt = {INT8: ">b", INT16: ">h", INT32: ">i", INT64: ">q", DOUBLE: ">d"}.get(type_)
    if fmt is None:
        return None                             # UNSPEC (JSON null) and unknown types
    if len(payload) < struct.calcsize(fmt):
        raise BlobError(f"a {TYPE_NAMES.get(type_)} blobmsg is cut short")
    v = struct.unpack_from(fmt, payload)[0]
    return bool(v) if type_ == INT8 else v


def decode(data, array=False, depth=0):
    """A dict (or list, for an array's payload) from packed blobmsgs."""
    if depth > MAX_DEPTH:
        raise BlobError(f"blobmsg nesting deeper than {MAX_DEPTH}")
    out = [] if array else {}
    for type_, ext, payload in attrs(data):
        if not ext or len(payload) < 3:
            raise BlobError("a blobmsg without a name header")
        (nlen,) = struct.unpack_from(">H", payload)
        start = _pad(2 + nlen + 1)
        if start > len(payload):
            raise BlobError("a blobmsg name runs past its attribute")
        value = _decode_one(type_, payload[start:], depth)
        if array:
            out.append(value)
        else:
            out[payload[2:2 + nlen].decode("utf-8", "replace")] = value
    return out
