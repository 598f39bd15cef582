"""The blobmsg codec and the ubus message framing (unlite/ubus/blobmsg.py, wire.py) as pure
data: no root, no ubusd (tests/test_ubus_real.py runs them against the real ubusd)."""
from __future__ import annotations

import random
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlite.ubus import blobmsg, wire

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 63), (1 << 63) - 1)
    | st.floats(allow_nan=False) | st.text(alphabet=st.characters(blacklist_characters="\0",
                                                                  blacklist_categories=("Cs",))),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: "\0" not in k and
                                                              k.isprintable()),
                      inner, max_size=4), max_leaves=20)


@settings(max_examples=120, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: "\0" not in k and
                                                              k.isprintable()), JSON, max_size=6))
def test_round_trip(obj):
    assert blobmsg.decode(blobmsg.encode(obj)) == obj


def test_names_past_the_header_cache_and_long_names_encode_alike():
    """Name headers are cached (field names repeat across a ``list`` of many graphs); names
    the cache does not keep (past its size, longer than 64 bytes) encode the same way."""
    many = {f"graph-{i}": {"id": f"graph-{i}", "vnfs": i} for i in range(blobmsg._NAMES_MAX + 10)}
    long = {"n" * 300: 1, "é" * 40: "x"}
    for obj in (many, long):
        data = blobmsg.encode(obj)
        assert blobmsg.decode(data) == obj and blobmsg.encode(obj) == data
    assert len(blobmsg._NAMES) <= blobmsg._NAMES_MAX


def test_types_are_libubox_choices():
    """As blobmsg_add_json_from_string makes them: INT32 when it fits, else INT64; booleans
    INT8; null UNSPEC; and the 4-byte padding of every attribute."""
    def first_type(v):
        (t, ext, _), = blobmsg.attrs(blobmsg.encode({"k": v}))
        assert ext
        return t
    assert first_type(1) == first_type(-(1 << 31)) == blobmsg.INT32
    assert first_type(1 << 31) == first_type(-(1 << 31) - 1) == blobmsg.INT64
    assert first_type(True) == blobmsg.BOOL and first_type(None) == blobmsg.UNSPEC
    assert first_type(1.5) == blobmsg.DOUBLE and first_type("x") == blobmsg.STRING
    assert first_type([1]) == blobmsg.ARRAY and first_type({}) == blobmsg.TABLE
    data = blobmsg.encode({"id": "g1"})
    # header: extended | STRING << 24 | 4 + namelen hdr (2 + 2 + 1 → 8) + "g1\0" (3) = 15
    assert struct.unpack(">I", data[:4])[0] == 0x80000000 | (blobmsg.STRING << 24) | 15
    assert len(data) == 16 and data[4:10] == b"\0\2id\0\0" and data[12:15] == b"g1\0"
    with pytest.raises(blobmsg.BlobError, match="64 bits"):
        blobmsg.encode({"k": 1 << 64})
    with pytest.raises(blobmsg.BlobError, match="cannot carry"):
        blobmsg.encode({"k": object()})


def test_hostile_data_gives_blob_errors_only():
    rnd = random.Random(7)
    good = blobmsg.encode({"a": [1, "x", {"b": None}], "c": 2.5})
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rnd.randint(1, 4)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        data = bytes(data[:rnd.randint(0, len(data))])
        try:
            blobmsg.decode(data)
        except blobmsg.BlobError:
            pass
    nested = b""
    for _ in range(blobmsg.MAX_DEPTH + 2):
        nested = blobmsg._named(blobmsg.TABLE, "n", nested)
    with pytest.raises(blobmsg.BlobError, match="deeper"):
        blobmsg.decode(nested)


def test_malformed_frames_from_the_peer_are_refused():
    a, b = socket.socketpair()
    conn = wire.Connection("/nonexistent")
    conn._sock = a
    try:
        b.sendall(struct.pack(">BBHI", 1, wire.HELLO, 0, 5) + blobmsg.attr(0))   # version 1
        with pytest.raises(wire.UbusError, match="malformed"):
            conn._read()
        b.sendall(struct.pack(">BBHI", 0, wire.DATA, 0, 5) + struct.pack(">I", 64 << 20))
        with pytest.raises(wire.UbusError, match="malformed"):
            conn._read()                     # 64 MiB claimed: over ubusd's 1 MiB, not read
        b.close()
        with pytest.raises(wire.UbusError, match="closed"):
            conn._read()
    finally:
        a.close()


def test_connect_to_no_ubusd_names_the_socket(tmp_path):
    with pytest.raises(wire.UbusError, match=f"cannot connect to ubusd at {tmp_path}/none"):
        wire.Connection(str(tmp_path / "none")).connect()


def test_a_lone_surrogate_is_carried_replaced():
    """JSON allows "\\ud800"; UTF-8 does not: it goes as '?' instead of failing the answer."""
    assert blobmsg.decode(blobmsg.encode({"n": "a\ud800b"})) == {"n": "a?b"}
