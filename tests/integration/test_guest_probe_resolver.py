"""guest_probe in a namespace guest says where the guest's DNS goes: to the gateway's dnsmasq or
elsewhere, read from the guest's resolv.conf (and systemd-resolved's upstreams)."""

from __future__ import annotations

from netfilter_topology import GATEWAY, UPSTREAM, build


def resolver_finding(lab, guest, **paths):
    probe = lab.module(guest, "guest_probe", dict({"count": 1, "timeout": 0.3, "names": ["example.com"]}, **paths))
    (found,) = [f for f in probe["findings"] if f["check"] == "guest_resolver"]
    return probe, found


def test_guest_resolver_pointing_away_from_the_gateway_then_fixed(lab):
    topo = build(lab)
    conf, resolved = lab.tmp / "resolv.conf", lab.tmp / "resolved.conf"
    paths = {"resolv_conf": str(conf), "resolved_resolv_conf": str(resolved)}
    conf.write_text("nameserver %s\n" % UPSTREAM)
    probe, bad = resolver_finding(lab, topo.g1, **paths)
    assert bad["status"] == "warn" and "not to the gateway's dnsmasq %s" % GATEWAY in bad["summary"], bad
    assert probe["resolver"]["nameservers"] == [UPSTREAM] and probe["resolver"]["via"] == "resolv.conf"

    conf.write_text("nameserver 127.0.0.53\n")  # systemd-resolved's stub, whose upstream is the gateway
    resolved.write_text("nameserver %s\n" % GATEWAY)
    probe, good = resolver_finding(lab, topo.g1, **paths)
    assert good["status"] == "ok" and "through systemd-resolved" in good["summary"], good
    assert probe["resolver"]["upstreams"] == [GATEWAY]
