"""diagnose's edns_size check against a real libvirtd + dnsmasq: an upstream whose answer for a
name is larger than the network dnsmasq's edns-packet-max reaches the guest truncated; the check
says so and proposes the dnsmasq option, and after libvirt_network applied it the guest gets the
answer whole over UDP."""

from __future__ import annotations

import pytest

from libvirt_lab import attach_guest_ns, libvirt_host

pytestmark = pytest.mark.slow

BIG_DNS = "203.0.113.54"
BIG_NAME = "big.example"
GATEWAY = "10.77.1.1"
NETWORK = dict(name="edns", bridge=dict(name="virbr83"), ips=[dict(address=GATEWAY, prefix=24)])


def start_big_dns(lab, upstream):
    """A server whose TXT answer for big.example is about 2 KB (eight 250-byte strings)."""
    lab.addr(upstream, "eth0", BIG_DNS + "/24")
    strings = ",".join('"%s"' % (chr(ord("a") + i) * 250) for i in range(8))
    lab.spawn(upstream, ["dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
                         "--pid-file=", "--user=root", "--port=53", "--listen-address=" + BIG_DNS, "--edns-packet-max=4096",
                         "--txt-record=%s,%s" % (BIG_NAME, strings)])


def guest_txt(lab, guest):
    """(flags line, answer size) of a UDP-only TXT query through the gateway, as a guest asks."""
    out = lab.run(guest, ["dig", "@" + GATEWAY, BIG_NAME, "TXT", "+bufsize=4096", "+notcp", "+ignore", "+time=2",
                          "+tries=3", "+noall", "+comments", "+stats"], check=False).stdout
    flags = next((line for line in out.splitlines() if "flags:" in line), "")
    size = next((int(line.split("rcvd:")[1]) for line in out.splitlines() if "MSG SIZE" in line), 0)
    return flags, size


def edns_findings(result):
    return [f for f in result["findings"] if f["check"] == "edns_size"]


def test_large_answers_beyond_edns_packet_max_are_found_and_fixed(lab):
    with libvirt_host(lab, resolv_conf="nameserver %s\n" % BIG_DNS) as (host, upstream):
        start_big_dns(lab, upstream)
        host.module("libvirt_network", NETWORK)
        guest = attach_guest_ns(lab, host, "virbr83", "g1", "gport1")
        lab.addr(guest, "eth0", "10.77.1.10/24")
        flags, size = guest_txt(lab, guest)
        assert " tc" in flags and size <= 1232, (flags, size)  # truncated to dnsmasq's default

        args = {"public_test_name": BIG_NAME, "large_answer_name": BIG_NAME, "probe_timeout": 1.0, "log_files": [],
                "checks": ["edns_size"]}
        (bad,) = edns_findings(host.module("diagnose", args))
        assert bad["status"] == "warn" and "more than edns-packet-max 1232" in bad["summary"], bad
        assert bad["fix_module"] == {"module": "hypervisor.network.libvirt_network",
                                     "args": {"name": "edns", "dnsmasq_options": ["edns-packet-max=4096"]}}
        assert host.module("libvirt_network", dict(NETWORK, **bad["fix_module"]["args"]))["changed"]
        lab.run(host.ns, ["ip", "link", "set", "gport1", "master", "virbr83"])  # the restart dropped the port

        (good,) = edns_findings(host.module("diagnose", args))
        assert good["status"] == "ok" and "fits edns-packet-max 4096" in good["summary"], good
        flags, size = guest_txt(lab, guest)
        assert " tc" not in flags and size > 1232, (flags, size)
