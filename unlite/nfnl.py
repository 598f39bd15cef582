"""nfnetlink spoken by the daemon itself, for the nf_tables requests that ``nft`` makes costly.

``nft`` first reads every table of the namespace into its cache, whatever it was asked: the
O(N) of a change or a status read among N graphs. The kernel needs nothing of the sort, so
the requests whose answer is one table's go from here (linux/netfilter/nfnetlink.h,
linux/netfilter/nf_tables.h; numbers, never code, from those headers):

- ``attrs(data)`` / ``attr_list(data)``  netlink attributes: the first of each type / all
- ``batch(msgs)``        an nf_tables transaction (BATCH_BEGIN … END); the kernel's errno
- ``rules(family, table)``  one GETRULE dump of a table (or, ``table=None``, of the family):
                         each rule's table, chain, handle, comment (the TLV ``nft`` writes in
                         the rule's userdata), counter and output devices (``fwd``/``dup``)
- ``tables(family)`` / ``chains(family)``  one GETTABLE / GETCHAIN dump of the family

Everything here raises ``Unusable`` (an OSError) when the socket cannot be used or the kernel
answers something this module does not expect: callers then execute ``nft`` (``sh``).
"""
from __future__ import annotations

import errno
import os
import socket
import struct
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
BATCH_BEGIN, BATCH_END = 0x10, 0x11             # NFNL_MSG_BATCH_BEGIN / _END
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_DUMP_INTR = 1, 2, 4, 0x10
NLM_F_DUMP = 0x300                              # NLM_F_ROOT | NLM_F_MATCH
FAMILIES = {"ip": 2, "netdev": 5, "inet": 1, "ip6": 10, "bridge": 7, "arp": 3}

# enum nf_tables_msg_types, as nfnetlink message types (subsystem << 8 | message)
NEWTABLE = NFNL_SUBSYS_NFTABLES << 8 | 0
GETTABLE = NFNL_SUBSYS_NFTABLES << 8 | 1
DELTABLE = NFNL_SUBSYS_NFTABLES << 8 | 2
NEWCHAIN = NFNL_SUBSYS_NFTABLES << 8 | 3
GETCHAIN = NFNL_SUBSYS_NFTABLES << 8 | 4
NEWRULE = NFNL_SUBSYS_NFTABLES << 8 | 6
GETRULE = NFNL_SUBSYS_NFTABLES << 8 | 7
# attributes: table (NFTA_TABLE_NAME), rule (NFTA_RULE_*), list, expression, counter
TABLE_NAME = 1
RULE_TABLE, RULE_CHAIN, RULE_HANDLE, RULE_EXPRESSIONS, RULE_USERDATA = 1, 2, 3, 4, 7
LIST_ELEM, EXPR_NAME, EXPR_DATA = 1, 1, 2
COUNTER_BYTES, COUNTER_PACKETS = 1, 2
CHAIN_TABLE, CHAIN_NAME = 1, 3
IMMEDIATE_DREG, IMMEDIATE_DATA, DATA_VALUE = 1, 2, 1
FWD_SREG_DEV, DUP_SREG_DEV = 1, 2               # NFTA_FWD_SREG_DEV, NFTA_DUP_SREG_DEV
UDATA_RULE_COMMENT = 0                          # libnftnl's NFTNL_UDATA_RULE_COMMENT

_seq = [int(time.time()) & 0xFFFFFF]


class Unusable(OSError):
    """The socket cannot be used here, or the kernel answered something unexpected."""


class Interrupted(Unusable):
    """The ruleset changed while the kernel dumped it (NLM_F_DUMP_INTR): ask again."""


def next_seq(n=1):
    """The first of ``n`` sequence numbers of our own."""
    seq = _seq[0] = (_seq[0] + n) & 0xFFFFFFF
    return seq


def msg(kind, flags, seq, family=0, res_id=0, attrs=b""):
    """One nfnetlink message: nlmsghdr, nfgenmsg (version 0), then ``attrs``."""
    body = struct.pack("=BBH", family, 0, socket.htons(res_id)) + attrs
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


def attr(kind, payload):
    """One netlink attribute, padded to 4 bytes."""
    return struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * (-len(payload) & 3)


def attr_str(kind, text):
    return attr(kind, text.encode() + b"\0")


def attr_list(data):
    """Every (type, payload) of a run of netlink attributes, in order (flag bits off)."""
    out, i = [], 0
    while i + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, i)
        if length < 4:
            break
        out.append((kind & 0x3FFF, data[i + 4:i + length]))
        i += (length + 3) & ~3
    return out


def attrs(data):
    """{type: payload} of a run of netlink attributes (the first of each type)."""
    out = {}
    for kind, payload in attr_list(data):
        out.setdefault(kind, payload)
    return out


def _socket():
    try:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    except (OSError, AttributeError) as e:
        raise Unusable(f"no nfnetlink socket: {e}") from e
    try:
        s.settimeout(5)
        s.bind((0, 0))
    except OSError as e:
        s.close()
        raise Unusable(f"nfnetlink socket: {e}") from e
    return s


def _messages(data):
    """(type, flags, seq, payload) of each netlink message in one datagram."""
    off = 0
    while off + 16 <= len(data):
        length, kind, flags, seq, _ = struct.unpack_from("=IHHII", data, off)
        if length < 16 or off + length > len(data):
            raise Unusable(f"a netlink message of {length} bytes in {len(data) - off}")
        yield kind, flags, seq, data[off + 16:off + length]
        off += (length + 3) & ~3


def batch(msgs):
    """Send ``msgs`` ([(type, family, attributes)], each asking an ACK) as one nf_tables
    batch; return the first errno the kernel answers (0 when every message went through)."""
    seq = next_seq(len(msgs) + 2)
    last = seq + len(msgs) + 1
    data = (msg(BATCH_BEGIN, NLM_F_REQUEST, seq, 0, NFNL_SUBSYS_NFTABLES)
            + b"".join(msg(kind, NLM_F_REQUEST | NLM_F_ACK, seq + 1 + i, family, 0, a)
                       for i, (kind, family, a) in enumerate(msgs))
            + msg(BATCH_END, NLM_F_REQUEST, last, 0, NFNL_SUBSYS_NFTABLES))
    acked = set()
    try:
        with _socket() as s:
            s.send(data)
            while len(acked) < len(msgs):
                for kind, _, mseq, payload in _messages(s.recv(65536)):
                    if kind == NLMSG_ERROR and seq <= mseq <= last:
                        code = -struct.unpack_from("=i", payload)[0]
                        if code:
                            return code         # the kernel stops at the first error
                        acked.add(mseq)
    except Unusable:
        raise
    except (OSError, struct.error) as e:
        raise Unusable(f"nfnetlink: {e}") from e
    return 0


def dump(kind, family, attrs_=b""):
    """(type, payload after nfgenmsg) of each message a dump request answers, in order."""
    seq = next_seq()
    out = []
    try:
        with _socket() as s:
            s.send(msg(kind, NLM_F_REQUEST | NLM_F_DUMP, seq, family, 0, attrs_))
            while True:
                for mkind, flags, mseq, payload in _messages(s.recv(65536)):
                    if mseq != seq:
                        continue
                    if flags & NLM_F_DUMP_INTR:
                        raise Interrupted("the ruleset changed during the dump")
                    if mkind in (NLMSG_DONE, NLMSG_ERROR):
                        code = -struct.unpack_from("=i", payload)[0]
                        if mkind == NLMSG_DONE and not code:
                            return out          # a dump's own error comes in its DONE
                        e = Unusable(f"the kernel refused the dump: {os.strerror(code)}")
                        e.errno = code
                        raise e
                    out.append((mkind, payload[4:]))
    except Unusable:
        raise
    except (OSError, struct.error) as e:
        raise Unusable(f"nfnetlink: {e}") from e


def _comment(udata):
    """The comment ``nft`` stored in a rule's userdata: TLVs of u8 type, u8 length, value
    (the comment's is type 0, NUL-terminated)."""
    i = 0
    while i + 2 <= len(udata):
        kind, length = udata[i], udata[i + 1]
        if kind == UDATA_RULE_COMMENT:
            return udata[i + 2:i + 2 + length].split(b"\0", 1)[0].decode(errors="replace")
        i += 2 + length
    return None


def _dump(kind, family, attrs_=b""):
    """``dump``, asked again once when a change interrupted it; an absent table: []."""
    for attempt in (1, 2):
        try:
            return dump(kind, FAMILIES[family], attrs_)
        except Interrupted:
            if attempt == 2:
                raise
        except Unusable as e:
            if e.errno == errno.ENOENT:
                return []
            raise


def _name(a, kind):
    return a.get(kind, b"").rstrip(b"\0").decode(errors="replace")


def tables(family):
    """The names of every table of ``family``, from one GETTABLE dump. Raises Unusable."""
    return [_name(attrs(p), TABLE_NAME) for k, p in _dump(GETTABLE, family) if k == NEWTABLE]


def chains(family):
    """(table, chain) of every chain of ``family``, from one GETCHAIN dump."""
    out = []
    for kind, payload in _dump(GETCHAIN, family):
        if kind == NEWCHAIN:
            a = attrs(payload)
            out.append((_name(a, CHAIN_TABLE), _name(a, CHAIN_NAME)))
    return out


def _outputs(exprs):
    """The devices a rule's ``fwd``/``dup`` send to: the interface index an ``immediate``
    loaded into the register they read (host order), as its name here, or the index as text
    when no interface has it any more (as ``nft`` shows it)."""
    regs, out = {}, []
    for name, data in exprs:
        if name == b"immediate" and IMMEDIATE_DREG in data:
            value = attrs(data.get(IMMEDIATE_DATA, b"")).get(DATA_VALUE)
            if value is not None and len(value) == 4:
                regs[data[IMMEDIATE_DREG]] = struct.unpack("=I", value)[0]
        elif name in (b"fwd", b"dup"):
            reg = data.get(FWD_SREG_DEV if name == b"fwd" else DUP_SREG_DEV)
            if reg in regs:
                try:
                    out.append(socket.if_indextoname(regs[reg]))
                except OSError:
                    out.append(str(regs[reg]))
    return out


def rules(family, table=None):
    """Every rule of ``table`` (None: of the whole family) in dump order (chain by chain, as
    ``nft list table`` shows them), from one NFT_MSG_GETRULE dump (asked again once when a
    change interrupted it): [{"table", "chain", "handle", "comment" (or None), "counter":
    (packets, bytes) of its last counter expression, or None, "outputs": the devices it
    sends to}]. An absent table has none. Raises Unusable."""
    msgs = _dump(GETRULE, family, attr_str(RULE_TABLE, table) if table else b"")
    out = []
    for kind, payload in msgs:
        if kind != NEWRULE:
            raise Unusable(f"a message of type {kind:#x} in a rule dump")
        a = attrs(payload)
        in_table = _name(a, RULE_TABLE)
        if table and in_table != table:
            continue                            # a kernel without the dump's table filter
        try:
            counter, exprs = None, []
            for _, elem in attr_list(a.get(RULE_EXPRESSIONS, b"")):
                e = attrs(elem)
                name, data = e.get(EXPR_NAME, b"").rstrip(b"\0"), attrs(e.get(EXPR_DATA, b""))
                exprs.append((name, data))
                if name == b"counter":
                    counter = (struct.unpack(">Q", data[COUNTER_PACKETS])[0],
                               struct.unpack(">Q", data[COUNTER_BYTES])[0])
            out.append({"table": in_table, "chain": _name(a, RULE_CHAIN),
                        "handle": struct.unpack(">Q", a[RULE_HANDLE])[0],
                        "comment": _comment(a.get(RULE_USERDATA, b"")),
                        "counter": counter, "outputs": _outputs(exprs)})
        except (KeyError, struct.error) as e:
            raise Unusable(f"a rule of {in_table} the kernel described oddly: {e!r}") from e
    return out
