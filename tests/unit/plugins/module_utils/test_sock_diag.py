"""The sock_diag reader of the host's listeners: the request it sends and the parse of what the
kernel answers, from a dump captured on this project's lab kernel (6.1). That the reader sees
what `ss -l` sees on real sockets is tests/integration/test_netfilter_local_ports.py."""

from __future__ import annotations

import struct

import pytest
from ansible_collections.hypervisor.network.plugins.module_utils import _sock_diag as sd
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import coexist

# `request("tcp", 6, 7)` answered in a namespace with a dual-stack [::]:2223 listener and an
# IPv6-only [::1]:2224 listener bound to lo (ifindex 1): two SOCK_DIAG_BY_FAMILY messages with
# NLM_F_MULTI, then the NLMSG_DONE of the dump in a datagram of its own.
ANSWER = bytes.fromhex(
    "840000001400020007000000624500000a0a000008af00000000000000000000000000000000000000000000"
    "0000000000000000000000000000000060110000000000000000000000000000800000000000000081602800"
    "050008000000000005000b000000000008000f00000000000c00150001000000000000000600160012000000"
    "840000001400020007000000624500000a0a000008b000000000000000000000000000000000000100000000"
    "0000000000000000000000000100000061110000000000000000000000000000800000000000000082602800"
    "050008000000000005000b000100000008000f00000000000c00150001000000000000000600160012000000"
)
DONE = bytes.fromhex("1400000003000200070000006245000000000000")


def test_the_request_asks_for_a_dump_of_one_family_protocol_and_listening_state():
    assert sd.request("udp", 4, 3).hex() == (
        "48000000" "1400" "0103" "03000000" "00000000"  # 72 bytes, SOCK_DIAG_BY_FAMILY, REQUEST|DUMP, seq 3
        "02" "11" "00" "00" "80000000"  # AF_INET, IPPROTO_UDP, no extensions, states 1 << TCP_CLOSE
        + "00" * 48  # any socket id
    )
    family, protocol, _ext, states = struct.unpack_from("=BBBxI", sd.request("tcp", 6), 16)
    assert (family, protocol, states) == (10, 6, 1 << 10)


def test_a_captured_answer_reads_as_the_sockets_with_device_and_v6only():
    sockets, done = sd.parse(ANSWER, "tcp")
    assert not done
    assert sockets == [
        sd.Socket("tcp", 6, bytes(16), 2223, 0, False),
        sd.Socket("tcp", 6, bytes(15) + b"\x01", 2224, 1, True),
    ]
    assert sd.parse(DONE, "tcp") == ([], True)
    assert [(lst.address, lst.family, lst.port) for lst in map(coexist._listener_of, sockets)] == [
        (None, None, 2223), ("::1", 6, 2224)]
    assert coexist._listener_of(sockets[1]).device == "lo"


def test_an_error_answer_or_a_message_cut_short_is_an_oserror():
    refused = struct.pack("=IHHII", 36, sd.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -22) + bytes(16)
    with pytest.raises(OSError) as error:
        sd.parse(refused, "udp")
    assert error.value.errno == 22 and "udp" in str(error.value)
    acknowledged = struct.pack("=IHHII", 36, sd.NLMSG_ERROR, 0, 1, 0) + bytes(20)
    assert sd.parse(acknowledged + DONE, "udp") == ([], True)
    with pytest.raises(OSError, match="cut short"):
        sd.parse(ANSWER[:100], "tcp")
    short = struct.pack("=IHHII", 20, sd.SOCK_DIAG_BY_FAMILY, 2, 1, 0) + bytes(4)
    with pytest.raises(OSError, match="shorter than inet_diag_msg"):
        sd.parse(short, "tcp")


def test_without_sock_diag_the_listeners_come_from_proc_net(monkeypatch):
    def refused():
        raise OSError(93, "Protocol not supported")

    monkeypatch.setattr(sd, "listening_sockets", refused)
    monkeypatch.setattr(coexist, "read_proc_listeners", lambda: [coexist.Listener("tcp", 22)])
    assert coexist.read_kernel_listeners() == [coexist.Listener("tcp", 22)]
