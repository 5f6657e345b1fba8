# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A tiny DNS client built from the standard library: one A query over UDP, its answer code.

diagnose and guest_probe must not depend on dig or dnspython on the target host. Only the
header of the answer matters (its ID, its flags and its answer count), so nothing more is parsed.

A query can be sent in the styles real clients use, because a forwarder may answer them
differently: dnsmasq 2.90 with strict-order and a first upstream that answers REFUSED hands that
REFUSED back to a query that carries an EDNS option (dig's and BIND's cookie), while it retries a
query without EDNS, or with an empty EDNS0 record, on the next upstream and answers it.
"""

from __future__ import annotations

import os
import socket
import struct
import time

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
TIMEOUT = "TIMEOUT"
UNREACHABLE = "UNREACHABLE"
# A server that answers NOERROR or NXDOMAIN for a name serves (or forwards) that name; REFUSED,
# SERVFAIL and silence mean a resolver behind it gets nothing useful.
ANSWERED = ("NOERROR", "NXDOMAIN")
QTYPE_A, QTYPE_TXT, QCLASS_IN = 1, 16, 1
OPT_TYPE, EDNS_PAYLOAD = 41, 1232
COOKIE_OPTION, CLIENT_COOKIE_LEN = 10, 8

# Query styles, each named after the clients that ask that way (see build_query).
PLAIN, EDNS, COOKIE = "plain", "edns", "cookie"
STYLES = {
    PLAIN: "no EDNS: glibc's stub resolver by default (getaddrinfo, ping, curl, apt), busybox nslookup",
    EDNS: "EDNS0 without options: glibc with 'options edns0', systemd-resolved towards its upstreams",
    COOKIE: "EDNS0 with a DNS cookie: dig, host, nslookup (BIND tools), BIND and Unbound as resolvers",
}


def build_query(name, query_id, qtype=QTYPE_A, edns=False, style=None, cookie=None, payload=EDNS_PAYLOAD):
    """The bytes of a standard recursive query for ``name`` in ``style``: ``plain`` without an OPT
    record; ``edns`` with an empty EDNS0 OPT record (1232-byte payload); ``cookie`` with an EDNS0
    OPT record carrying an 8-byte client cookie (RFC 7873), as dig sends by default. ``edns=True``
    without a style is the ``edns`` style (the old call)."""
    style = style or (EDNS if edns else PLAIN)
    if style not in STYLES:
        raise ValueError("unknown query style %r" % style)
    with_opt = style != PLAIN
    header = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 1 if with_opt else 0)  # RD, one question, OPT in additional
    labels = [label for label in name.rstrip(".").split(".") if label]
    qname = b"".join(struct.pack("!B", len(label.encode("idna"))) + label.encode("idna") for label in labels) + b"\x00"
    packet = header + qname + struct.pack("!HH", qtype, QCLASS_IN)
    if with_opt:
        options = b""
        if style == COOKIE:
            client = cookie if cookie is not None else os.urandom(CLIENT_COOKIE_LEN)
            options = struct.pack("!HH", COOKIE_OPTION, len(client)) + client
        packet += b"\x00" + struct.pack("!HHIH", OPT_TYPE, payload, 0, len(options)) + options
    return packet


def parse_header(data):
    """(id, rcode name, answer count) of a reply, or None when it is too short to be DNS."""
    if len(data) < 12:
        return None
    query_id, flags, _qd, ancount, _ns, _ar = struct.unpack("!HHHHHH", data[:12])
    if not flags & 0x8000:  # not a response
        return None
    rcode = flags & 0x000F
    return query_id, RCODES.get(rcode, "RCODE%d" % rcode), ancount


def truncated(data):
    """The TC flag of a reply: the answer did not fit and the client must ask over TCP."""
    return len(data) >= 4 and bool(struct.unpack("!H", data[2:4])[0] & 0x0200)


def _exchange(server, port, packet, query_id, timeout, tcp=False):
    """Send ``packet`` to ``server`` and wait up to ``timeout`` in all for the answer that carries
    ``query_id`` (stray or spoofed replies are ignored). Returns a dict: rcode (RCODES' name,
    TIMEOUT or UNREACHABLE: an ICMP error came back, or the address cannot be reached at all) and,
    with an answer, answers (its count), data (its bytes) and ms; with UNREACHABLE, error."""
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    started = time.monotonic()
    deadline = started + timeout
    sock = socket.socket(family, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    try:
        sock.settimeout(timeout)
        sock.connect((server, port))
        if tcp:
            sock.sendall(struct.pack("!H", len(packet)) + packet)
        else:
            sock.send(packet)
        while time.monotonic() < deadline:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            data = _recv_exact(sock, struct.unpack("!H", _recv_exact(sock, 2))[0]) if tcp else sock.recv(65535)
            parsed = parse_header(data)
            if parsed and parsed[0] == query_id:
                return {"rcode": parsed[1], "answers": parsed[2], "data": data,
                        "ms": round((time.monotonic() - started) * 1000.0, 2)}
    except socket.timeout:
        pass
    except OSError as exc:
        return {"rcode": UNREACHABLE, "error": str(exc)}
    finally:
        sock.close()
    return {"rcode": TIMEOUT}


def query_size(server, name, payload, timeout=2.0, port=53, qtype=QTYPE_TXT, tcp=False):
    """Ask ``server`` for ``name`` (TXT by default) with an EDNS0 ``payload`` size, over UDP or
    TCP. Returns {rcode, bytes, truncated, ms}: how large the answer was and whether it came
    whole. A large answer that never arrives over UDP while TCP brings it points at a path that
    drops IP fragments."""
    query_id = struct.unpack("!H", os.urandom(2))[0]
    packet = build_query(name, query_id, qtype=qtype, style=EDNS, payload=payload)
    answer = _exchange(server, port, packet, query_id, timeout, tcp=tcp)
    result = {"server": server, "name": name, "payload": payload, "transport": "tcp" if tcp else "udp",
              "rcode": answer["rcode"], "bytes": None, "truncated": None, "ms": answer.get("ms")}
    if "data" in answer:
        result.update(bytes=len(answer["data"]), truncated=truncated(answer["data"]))
    if "error" in answer:
        result["error"] = answer["error"]
    return result


def _recv_exact(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed after %d of %d bytes" % (len(data), size))
        data += chunk
    return data


def query(server, name, timeout=2.0, port=53, edns=False, style=None):
    """Ask ``server`` for ``name`` once. Returns a dict: server, name, rcode, answers, ms.

    rcode is one of RCODES' names, TIMEOUT, or UNREACHABLE (an ICMP error came back, or the
    address cannot be reached at all), so that a caller never needs to catch anything.
    """
    query_id = struct.unpack("!H", os.urandom(2))[0]
    packet = build_query(name, query_id, edns=edns, style=style)
    answer = _exchange(server, port, packet, query_id, timeout)
    result = {"server": server, "name": name, "rcode": answer["rcode"], "answers": answer.get("answers", 0), "ms": answer.get("ms")}
    if style:
        result["style"] = style
    if "error" in answer:
        result["error"] = answer["error"]
    return result


def parse_resolv_conf(text):
    """nameserver and search/domain entries of a resolv.conf, in file order."""
    nameservers, search = [], []
    for raw in (text or "").splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].split()
        if len(line) < 2:
            continue
        if line[0] == "nameserver":
            nameservers.append(line[1].split("%", 1)[0])
        elif line[0] in ("search", "domain"):
            search = [d.rstrip(".") for d in line[1:]]  # the last of search/domain wins
    return {"nameservers": nameservers, "search": search}


def percentile(values, pct):
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, int(round(pct / 100.0 * len(ordered) + 0.4999)))
    return ordered[min(rank, len(ordered)) - 1]
