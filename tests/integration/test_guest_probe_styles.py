"""guest_probe asks the way real clients ask, against a real libvirtd and its dnsmasq.

The host's first nameserver refuses public names. libvirt's dnsmasq (strict-order) hands that
REFUSED to a query that carries an EDNS option (dig's cookie) and retries a plain query on the
next server: dig fails where glibc succeeds. guest_probe must say so per style, also when the
public name is already in dnsmasq's cache from a plain client, and say ok after the fix.
"""

from __future__ import annotations

import pytest

from libvirt_lab import (
    PUBLIC_NAME,
    REFUSING_RESOLV_CONF,
    attach_guest_ns,
    dig,
    fix_refusing_nameserver,
    libvirt_host,
    wait_dns_ready,
)
from test_diagnose_libvirt import GATEWAY, NETWORK

pytestmark = pytest.mark.slow

PROBE = {"names": [PUBLIC_NAME], "count": 6, "timeout": 1.0}


def dig_style(lab, guest, name, *options):
    """dig's status for ``name`` through the gateway with extra dig ``options``."""
    out = lab.run(guest, ["dig", "@" + GATEWAY, name, "A", "+time=2", "+tries=1", "+noall", "+comments"] + list(options),
                  check=False).stdout
    for line in out.splitlines():
        if "status:" in line:
            return line.split("status:")[1].split(",")[0].strip()
    return "TIMEOUT"


def by_style(probe):
    return {f["subject"].split("(")[-1].split()[0]: f for f in probe["findings"] if f["check"] == "guest_dns"}


def test_guest_probe_reports_refused_for_cookie_clients_even_with_a_warm_cache_then_ok_after_fix(lab):
    # Answers with a TTL, so that dnsmasq caches them as it does on a real host.
    with libvirt_host(lab, upstream_ttl=300, resolv_conf=REFUSING_RESOLV_CONF) as (host, _upstream):
        host.module("libvirt_network", NETWORK)
        guest = attach_guest_ns(lab, host, "virbr81", "g1", "gport1")
        lab.addr(guest, "eth0", "10.78.1.10/24")
        lab.route(guest, "default", "via", GATEWAY)
        wait_dns_ready(lab, guest, GATEWAY)

        # The two client styles as the real tools ask, with names no cache holds yet.
        assert dig_style(lab, guest, "a." + PUBLIC_NAME) == "REFUSED"  # dig: EDNS0 + cookie
        assert dig_style(lab, guest, "b." + PUBLIC_NAME, "+noedns") in ("NOERROR", "NXDOMAIN")  # glibc-like: retried
        # A plain client puts the public name in dnsmasq's cache; from there it answers every style.
        assert dig_style(lab, guest, PUBLIC_NAME, "+noedns") == "NOERROR"
        assert dig_style(lab, guest, PUBLIC_NAME) == "NOERROR"  # masked: the cached answer
        assert dig_style(lab, guest, "c." + PUBLIC_NAME, "+nocookie") == "NOERROR"  # empty EDNS0: retried too

        resolv = lab.tmp / "guest-resolv.conf"
        resolv.write_text("nameserver %s\n" % GATEWAY)  # the guest asks the gateway, as a DHCP client sets it
        probe_args = dict(PROBE, resolv_conf=str(resolv))
        before = lab.module(guest, "guest_probe", probe_args)
        assert before["summary"]["fail"] == 1, before["dns"]
        styles = by_style(before)
        assert set(styles) == {"cookie", "plain"} and before["dns"]["order"] == ["cookie", "plain"]
        assert styles["cookie"]["status"] == "fail", styles
        assert before["dns"]["styles"]["cookie"]["rcodes"].get("REFUSED", 0) >= 5, before["dns"]
        assert "EDNS options" in styles["cookie"]["fix"] and "plain" in styles["cookie"]["fix"]
        assert styles["plain"]["status"] == "ok", styles

        fix_refusing_nameserver(lab, host, NETWORK, guest)

        after = lab.module(guest, "guest_probe", dict(probe_args, styles=["plain", "edns", "cookie"]))
        assert after["dns"]["order"] == ["cookie", "edns", "plain"]
        assert {s: f["status"] for s, f in by_style(after).items()} == {"cookie": "ok", "edns": "ok", "plain": "ok"}
        assert after["dns"]["success_rate"] == 1.0 and after["summary"]["fail"] == 0, after["findings"]
        assert dig(lab, guest, GATEWAY, PUBLIC_NAME)[0] == "NOERROR"
