"""The standard-library DNS client and guest_probe's pure parts."""

from __future__ import annotations

import struct
import sys

import pytest

from ansible_collections.hypervisor.network.plugins.module_utils._diagnose import dns
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.probe import default_gateway, dns_stats, evaluate


def test_query_bytes_are_a_standard_recursive_a_query():
    packet = dns.build_query("db.corp.example.", 0x1234)
    assert packet[:12] == struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    assert packet[12:] == b"\x02db\x04corp\x07example\x00" + b"\x00\x01\x00\x01"


@pytest.mark.parametrize("rcode, name", [(0, "NOERROR"), (3, "NXDOMAIN"), (5, "REFUSED"), (2, "SERVFAIL"), (9, "RCODE9")])
def test_answer_header(rcode, name):
    reply = struct.pack("!HHHHHH", 7, 0x8180 | rcode, 1, 2, 0, 0)
    assert dns.parse_header(reply) == (7, name, 2)


def test_a_query_or_a_short_packet_is_no_answer():
    assert dns.parse_header(struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0)) is None
    assert dns.parse_header(b"\x00\x01") is None


def test_resolv_conf_order_comments_and_last_search_wins():
    text = "# generated\nsearch a.example\nnameserver 198.51.100.53 # private\nnameserver fe80::1%eth0\noptions edns0\ndomain b.example\n"
    assert dns.parse_resolv_conf(text) == {"nameservers": ["198.51.100.53", "fe80::1"], "search": ["b.example"]}


def test_percentiles():
    values = [float(v) for v in range(1, 101)]
    assert (dns.percentile(values, 50), dns.percentile(values, 90), dns.percentile(values, 99)) == (50.0, 90.0, 99.0)
    assert dns.percentile([3.0], 99) == 3.0


@pytest.mark.skipif(sys.byteorder != "little", reason="/proc/net/route prints addresses in host byte order")
def test_default_gateway_from_proc_net_route():
    text = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
            "eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"
            "eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\n")
    assert default_gateway(text) == "10.0.0.1"
    assert default_gateway(text.splitlines()[0] + "\n") is None


def test_dns_stats_and_findings():
    results = [{"rcode": "NOERROR", "ms": float(i)} for i in range(1, 9)] + [{"rcode": "REFUSED", "ms": 1.0}, {"rcode": "TIMEOUT", "ms": None}]
    stats = dns_stats(results)
    assert stats["success_rate"] == 0.8 and stats["rcodes"] == {"NOERROR": 8, "REFUSED": 1, "TIMEOUT": 1}
    assert stats["latency_ms"]["p50"] == 4.0 and stats["latency_ms"]["max"] == 8.0
    findings = evaluate("10.0.0.1", "10.0.0.1", stats, {"reachable": True, "rtt_ms": 0.1},
                        [{"address": "203.0.113.10", "reachable": False}], 0.95)
    by_check = {f["check"]: f for f in findings}
    assert by_check["guest_dns"]["status"] == "fail" and "nameservers" in by_check["guest_dns"]["fix"]
    assert by_check["guest_gateway"]["status"] == "ok" and by_check["guest_upstream"]["status"] == "fail"
    assert evaluate(None, None, None, {}, [], 0.95)[0]["check"] == "guest_route"


def test_edns_query_carries_one_opt_record_in_the_additional_section():
    packet = dns.build_query("example.com", 1, edns=True)
    assert struct.unpack("!HHHHHH", packet[:12]) == (1, 0x0100, 1, 0, 0, 1)
    assert packet[-11:] == b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
