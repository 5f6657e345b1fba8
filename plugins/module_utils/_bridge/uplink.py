# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reachability check after an uplink move: ICMP echo from a raw socket.

Done in Python rather than with ``ping`` because minimal hosts (and containers) often lack
iputils, and the module already runs as root, which is what a raw socket needs.
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import struct
import time

_ECHO = {4: (8, 0), 6: (128, 129)}  # (request type, reply type) per IP version


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _request(version, ident, seq):
    kind = _ECHO[version][0]
    payload = b"hypervisor.network uplink check"
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if version == 4:
        header = struct.pack("!BBHHH", kind, 0, _checksum(header + payload), ident, seq)
    # For ICMPv6 the kernel fills in the checksum (it covers a pseudo-header we do not see).
    return header + payload


def _is_reply(version, packet, ident):
    if version == 4:
        packet = packet[(packet[0] & 0x0F) * 4:]  # a raw IPv4 socket hands over the IP header too
    if len(packet) < 8:
        return False
    kind, _code, _sum, got_ident, _seq = struct.unpack("!BBHHH", packet[:8])
    return kind == _ECHO[version][1] and got_ident == ident


def answers(target, timeout, interval=0.5):
    """True as soon as ``target`` answers an ICMP echo, False if it did not within ``timeout`` s."""
    version = ipaddress.ip_address(target).version
    family, proto = (socket.AF_INET, socket.IPPROTO_ICMP) if version == 4 else (socket.AF_INET6, socket.IPPROTO_ICMPV6)
    ident = os.getpid() & 0xFFFF
    deadline = time.monotonic() + timeout
    seq = 0
    with socket.socket(family, socket.SOCK_RAW, proto) as sock:
        while time.monotonic() < deadline:
            seq += 1
            try:
                sock.sendto(_request(version, ident, seq), (target, 0))
            except OSError:
                pass  # no route or neighbour yet: retry until the deadline
            wait_until = min(deadline, time.monotonic() + interval)
            while True:
                left = wait_until - time.monotonic()
                if left <= 0:
                    break
                ready, _w, _x = select.select([sock], [], [], left)
                if not ready:
                    break
                packet, source = sock.recvfrom(2048)
                if ipaddress.ip_address(source[0].split("%")[0]) == ipaddress.ip_address(target) and _is_reply(version, packet, ident):
                    return True
    return False
