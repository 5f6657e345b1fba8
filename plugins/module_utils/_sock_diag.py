# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The listening sockets of this network namespace, asked of the kernel over netlink (sock_diag),
the way `ss -l` asks, without starting a process.

Why not /proc/net/tcp: to print it, the kernel walks every bucket of the established-connection
hash table, whose size follows the host's memory (about 5 ms per file on an idle 24 GiB host, and
more with every open connection), and it shows neither the device a socket is bound to nor
whether an IPv6 socket also takes IPv4. A sock_diag dump filtered to the listening states walks
only the listeners and reports both.

The wire format is the kernel's, in host byte order except ports and addresses (network order):
a request is an ``nlmsghdr`` followed by ``inet_diag_req_v2``; each answer is an ``nlmsghdr``,
an ``inet_diag_msg`` and its attributes, of which only ``INET_DIAG_SKV6ONLY`` is read.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
INET_DIAG_SKV6ONLY = 11

# tcp_states.h: a TCP socket waiting for connections is LISTEN; a UDP socket that is bound and
# not connected is CLOSE (`ss -l` shows it as UNCONN).
TCP_LISTEN = 10
TCP_CLOSE = 7
PROTOCOLS = {"tcp": (socket.IPPROTO_TCP, TCP_LISTEN), "udp": (socket.IPPROTO_UDP, TCP_CLOSE)}
FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}
TIMEOUT = 5.0  # seconds for each answer; a dump of thousands of sockets takes milliseconds

_NLMSGHDR = struct.Struct("=IHHII")
# family, protocol, extensions, pad, states; then inet_diag_sockid: source and destination port,
# source and destination address (16 bytes each), interface index, cookie
_REQUEST = struct.Struct("=BBBxI")
_SOCKID = struct.Struct("!HH16s16s")
_SOCKID_TAIL = struct.Struct("=I8x")
# family, state, timer, retransmits; the sockid; expires, read and write queue, uid, inode
_MSG_HEAD = struct.Struct("=BBBB")
_MSG_TAIL = struct.Struct("=IIIII")
_MSG_SIZE = _MSG_HEAD.size + _SOCKID.size + _SOCKID_TAIL.size + _MSG_TAIL.size
_RTATTR = struct.Struct("=HH")
_ERROR = struct.Struct("=i")


class SockDiagError(OSError):
    """The kernel refused the dump or answered in a form this reader does not know."""


@dataclass(frozen=True)
class Socket:
    """One socket of a dump: ``address`` is the raw bound address (4 or 16 bytes), ``ifindex``
    the device it is bound to (0: none), ``v6only`` None where the kernel does not say (IPv4)."""

    proto: str
    family: int
    address: bytes
    port: int
    ifindex: int
    v6only: bool | None


def request(proto, family, seq=1):
    """The dump request for the listening sockets of ``proto`` ('tcp', 'udp') and IP ``family``."""
    protocol, state = PROTOCOLS[proto]
    body = _REQUEST.pack(FAMILIES[family], protocol, 0, 1 << state) + \
        _SOCKID.pack(0, 0, bytes(16), bytes(16)) + _SOCKID_TAIL.pack(0)
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def parse(data, proto):
    """(sockets, done) from one datagram of a dump's answer. Raises SockDiagError on an error
    message from the kernel or a message cut short."""
    sockets, offset, done = [], 0, False
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            raise SockDiagError("sock_diag: a message of %d bytes at offset %d is cut short" % (length, offset))
        body = data[offset + _NLMSGHDR.size:offset + length]
        offset += (length + 3) & ~3
        if kind == NLMSG_DONE:
            done = True
            break
        if kind == NLMSG_ERROR:
            errno = -_ERROR.unpack_from(body)[0] if len(body) >= _ERROR.size else 0
            if errno:
                raise SockDiagError(errno, "sock_diag refused the dump of %s sockets" % proto)
            continue
        if kind != SOCK_DIAG_BY_FAMILY:
            continue
        if len(body) < _MSG_SIZE:
            raise SockDiagError("sock_diag: an answer of %d bytes, shorter than inet_diag_msg" % len(body))
        family, _state, _timer, _retrans = _MSG_HEAD.unpack_from(body)
        port, _dport, source, _destination = _SOCKID.unpack_from(body, _MSG_HEAD.size)
        ifindex, = _SOCKID_TAIL.unpack_from(body, _MSG_HEAD.size + _SOCKID.size)
        version = 4 if family == socket.AF_INET else 6
        sockets.append(Socket(proto, version, source[:4] if version == 4 else source, port, ifindex,
                              _v6only(body[_MSG_SIZE:]) if version == 6 else None))
    return sockets, done


def _v6only(attributes):
    """The INET_DIAG_SKV6ONLY flag among an answer's attributes, or None where it is missing."""
    offset = 0
    while offset + _RTATTR.size <= len(attributes):
        length, kind = _RTATTR.unpack_from(attributes, offset)
        if length < _RTATTR.size:
            break
        if kind == INET_DIAG_SKV6ONLY and length > _RTATTR.size:
            return bool(attributes[offset + _RTATTR.size])
        offset += (length + 3) & ~3
    return None


def listening_sockets():
    """Every TCP listener and bound, unconnected UDP socket of this network namespace. Raises
    OSError where the kernel offers no sock_diag (the caller then reads /proc/net)."""
    found = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as sock:
        # a dump that never ends is an OSError (socket.timeout) too, and the caller reads /proc/net
        sock.settimeout(TIMEOUT)
        for seq, (proto, family) in enumerate(sorted((p, f) for p in PROTOCOLS for f in FAMILIES), start=1):
            sock.sendall(request(proto, family, seq))
            done = False
            while not done:
                sockets, done = parse(sock.recv(1 << 16), proto)
                found.extend(sockets)
    return found
