"""The standard-library DNS client and guest_probe's pure parts."""

from __future__ import annotations

import struct
import sys

import pytest

from ansible_collections.hypervisor.network.plugins.module_utils._diagnose import dns
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.probe import (
    choose_styles,
    default_gateway,
    dns_stats,
    evaluate,
    plan_queries,
    style_stats,
)


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


def test_query_styles_plain_edns_and_cookie():
    plain = dns.build_query("example.com", 1, style="plain")
    assert struct.unpack("!HHHHHH", plain[:12])[5] == 0 and plain == dns.build_query("example.com", 1)
    assert dns.build_query("example.com", 1, style="edns") == dns.build_query("example.com", 1, edns=True)
    cookie = dns.build_query("example.com", 1, style="cookie", cookie=b"\x01" * 8)
    assert struct.unpack("!HHHHHH", cookie[:12]) == (1, 0x0100, 1, 0, 0, 1)
    # OPT: root name, type 41, payload 1232, no flags, rdlen 12 = one COOKIE option (10) of 8 bytes
    assert cookie[-23:] == b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 12) + struct.pack("!HH", 10, 8) + b"\x01" * 8
    with pytest.raises(ValueError):
        dns.build_query("example.com", 1, style="tcp")


def test_styles_that_warm_the_cache_are_probed_last():
    assert choose_styles(None, None) == ["cookie", "plain"]
    assert choose_styles(["plain", "edns", "cookie", "plain"], None) == ["cookie", "edns", "plain"]
    assert choose_styles(None, True) == ["edns"] and choose_styles(None, False) == ["plain"]
    assert choose_styles(["plain"], True) == ["plain"]


def test_query_plan_asks_each_name_once_then_uncached_names_under_it():
    tokens = iter("t%d" % i for i in range(100))
    plan = plan_queries(["a.example", "b.example."], ["cookie", "plain"], 5, True, token=lambda: next(tokens))
    assert plan == [("cookie", "a.example"), ("cookie", "b.example."), ("cookie", "hnprobe-t0.a.example"),
                    ("cookie", "hnprobe-t1.b.example"), ("cookie", "hnprobe-t2.a.example"),
                    ("plain", "a.example"), ("plain", "b.example."), ("plain", "hnprobe-t3.a.example"),
                    ("plain", "hnprobe-t4.b.example"), ("plain", "hnprobe-t5.a.example")]
    assert plan_queries(["a.example"], ["plain"], 3, False) == [("plain", "a.example")] * 3


def test_a_refused_cookie_style_is_named_and_explained_while_plain_is_ok():
    results = [{"rcode": "REFUSED", "ms": 1.0, "style": "cookie"}] * 4 + [{"rcode": "NOERROR", "ms": 2.0, "style": "plain"}] * 4
    per_style = style_stats(results, ["cookie", "plain"])
    assert per_style["cookie"]["rcodes"] == {"REFUSED": 4} and per_style["plain"]["success_rate"] == 1.0
    assert "dig" in per_style["cookie"]["clients"] and "glibc" in per_style["plain"]["clients"]
    findings = evaluate("10.0.0.1", "10.0.0.1", dns_stats(results), {"reachable": True}, [], 0.95, per_style)
    dns_findings = {f["subject"]: f for f in findings if f["check"] == "guest_dns"}
    cookie, plain = dns_findings["10.0.0.1 (cookie queries)"], dns_findings["10.0.0.1 (plain queries)"]
    assert cookie["status"] == "fail" and "EDNS options" in cookie["fix"] and "plain style" in cookie["fix"]
    assert plain["status"] == "ok" and "glibc" in plain["summary"]


def test_guest_resolver_gateway_elsewhere_resolved_and_none(tmp_path):
    from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.probe import evaluate_resolver, read_resolver

    conf, resolved = tmp_path / "resolv.conf", tmp_path / "resolved.conf"
    conf.write_text("nameserver 10.0.0.1\nsearch lab.example\n")
    good = evaluate_resolver(read_resolver(str(conf), str(resolved)), "10.0.0.1")
    assert good["status"] == "ok" and "gateway's dnsmasq" in good["summary"]
    conf.write_text("nameserver 198.51.100.10\nnameserver 10.0.0.1\n")
    second = evaluate_resolver(read_resolver(str(conf), str(resolved)), "10.0.0.1")
    assert second["status"] == "warn" and "first to 198.51.100.10" in second["summary"] and "guest_dns" in second["fix"]
    conf.write_text("nameserver 127.0.0.53\noptions edns0 trust-ad\n")
    resolved.write_text("nameserver 203.0.113.53\n")
    stub = read_resolver(str(conf), str(resolved))
    assert stub["via"] == "systemd-resolved" and stub["upstreams"] == ["203.0.113.53"]
    elsewhere = evaluate_resolver(stub, "10.0.0.1")
    assert elsewhere["status"] == "warn" and "through systemd-resolved" in elsewhere["summary"]
    resolved.write_text("nameserver 10.0.0.1\n")
    assert evaluate_resolver(read_resolver(str(conf), str(resolved)), "10.0.0.1")["status"] == "ok"
    conf.write_text("# nothing\n")
    assert evaluate_resolver(read_resolver(str(conf), str(resolved)), "10.0.0.1")["status"] == "fail"
    missing = evaluate_resolver(read_resolver(str(tmp_path / "none"), str(resolved)), "10.0.0.1")
    assert missing["status"] == "warn" and missing["evidence"]
