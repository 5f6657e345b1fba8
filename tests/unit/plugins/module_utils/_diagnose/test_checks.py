"""diagnose's checks as pure functions: facts in (fixtures), findings out."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import foreign as nf
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.module import CHECKS, run_checks, select_networks
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.checks_dns import (
    check_dhcp_duplicates,
    check_dnsmasq_listening,
    check_nameservers,
    check_port53,
)
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.checks_host import (
    check_bridges,
    check_firewalld,
    check_forwarding,
    check_libvirt,
    check_libvirtd_log,
    check_tap_drops,
)
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.checks_nat import (
    check_forward_duplicates,
    check_forward_path,
    check_masquerade,
)
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.gather import host_network, log_lines, parse_proc_net

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diagnose"

LIBVIRT_NET = {
    "name": "default", "source": "libvirt", "bridge": "virbr0", "active": True, "forward_mode": "nat",
    "domain": "lab.example", "mtu": None, "dns_enabled": True, "forwarders": [], "leases": [],
    "ips": [{"address": "192.168.122.1", "prefix": 24, "dhcp_ranges": [{"start": "192.168.122.2", "end": "192.168.122.254"}],
             "dhcp_hosts": [{"mac": "52:54:00:00:00:10", "ip": "192.168.122.10", "name": "web"}]}],
}


def netfilter_chains():
    save = (FIXTURES / "libvirt-iptables-nft-save.txt").read_text()
    document = json.loads((FIXTURES / "libvirt-nft-ruleset.json").read_text())
    chains = nf.chains_from_save(save, "ip", "nft")
    chains.update(nf.chains_from_nft(document, skip_tables=nf.save_tables(save, "ip")))
    return chains


@pytest.fixture
def facts():
    """A healthy libvirt host: the default NAT network with one guest, libvirt's own rules."""
    chains = netfilter_chains()
    return {
        "libvirt": {"uri": "qemu:///system", "enabled": True, "reachable": True, "count": 1},
        "networks": [copy.deepcopy(LIBVIRT_NET)],
        "links": {
            "virbr0": {"up": True, "operstate": "UP", "mtu": 1500, "master": None, "kind": "bridge", "txqlen": 1000},
            "vnet0": {"up": True, "operstate": "UNKNOWN", "mtu": 1500, "master": "virbr0", "kind": "tun", "txqlen": 1000},
            "eth0": {"up": True, "operstate": "UP", "mtu": 1500, "master": None, "kind": None, "txqlen": 1000},
        },
        "default_route_dev": "eth0",
        "sysctl": {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 0},
        "listeners": [
            {"proto": "tcp", "address": "192.168.122.1", "port": 53, "pid": 700, "process": "dnsmasq"},
            {"proto": "udp", "address": "192.168.122.1", "port": 53, "pid": 700, "process": "dnsmasq"},
            {"proto": "udp", "address": "0.0.0.0", "port": 67, "pid": 700, "process": "dnsmasq"},
            {"proto": "udp", "address": "127.0.0.53", "port": 53, "pid": 300, "process": "systemd-resolve"},
        ],
        "counters": {"vnet0": {"rx_dropped": 0, "tx_dropped": 0, "rx_packets": 10, "tx_packets": 20}},
        "baseline": {},
        "chains": {" ".join(key): body for key, body in chains.items()},
        "nat_rules": nf.nat_rules(chains),
        "port_forwards": [],
        "resolv": {"path": "/etc/resolv.conf", "nameservers": ["198.51.100.53", "203.0.113.53"], "search": ["corp.example"]},
        "dns_names": {"public": "www.example.com", "domains": ["lab.example", "corp.example"]},
        "dns_probes": [
            {"server": "198.51.100.53", "name": "www.example.com", "rcode": "NOERROR", "ms": 1.0},
            {"server": "198.51.100.53", "name": "lab.example", "rcode": "NXDOMAIN", "ms": 1.0},
            {"server": "198.51.100.53", "name": "corp.example", "rcode": "NOERROR", "ms": 1.0},
        ],
        "log_lines": [], "log_files_read": ["/var/log/libvirt/libvirtd.log"],
        "firewalld": {"running": False},
        "neighbours": {"virbr0": [{"dst": "192.168.122.10", "lladdr": "52:54:00:00:00:10", "state": ["REACHABLE"]}]},
    }


def statuses(findings, check=None):
    return sorted({f["status"] for f in findings if check is None or f["check"] == check})


def test_a_healthy_host_is_all_ok(facts):
    findings = run_checks(facts, {"drop_threshold": 0, "checks": None})
    assert statuses(findings) == ["ok"], [f for f in findings if f["status"] != "ok"]
    assert {f["check"] for f in findings} >= {"bridge_exists", "bridge_up", "bridge_ports", "bridge_mtu", "ip_forward",
                                              "masquerade", "dnsmasq_listening", "port53", "nameservers", "tap_drops",
                                              "libvirtd_log", "dhcp_duplicates", "firewalld_zone", "libvirt_connection",
                                              "input_path", "outbound_path", "neighbours", "edns_size"}
    assert set(CHECKS) == {"libvirt_connection", "bridge", "ip_forward", "masquerade", "forward_path", "port_forward_duplicates",
                           "dnsmasq_listening",
                           "port53", "nameservers", "tap_drops", "libvirtd_log", "dhcp_duplicates", "firewalld_zone",
                           "input_path", "outbound_path", "neighbours", "edns_size"}


def test_bridge_missing_down_portless_and_mtu(facts):
    links = facts["links"]
    del links["virbr0"]
    (missing,) = check_bridges(facts)
    assert missing["status"] == "fail" and missing["fix_module"]["args"] == {"name": "default", "active": True}
    links["virbr0"] = {"up": False, "operstate": "DOWN", "mtu": 1500, "master": None, "kind": "bridge"}
    links["vnet0"]["mtu"] = 9000
    found = {f["check"]: f for f in check_bridges(facts)}
    assert found["bridge_up"]["status"] == "fail" and "ip link set dev virbr0 up" in found["bridge_up"]["fix"]
    assert found["bridge_mtu"]["status"] == "warn" and "ip link set dev vnet0 mtu 1500" in found["bridge_mtu"]["fix"]
    del links["vnet0"]
    assert {f["check"]: f["status"] for f in check_bridges(facts)}["bridge_ports"] == "warn"


def test_forwarding_off(facts):
    facts["sysctl"]["net.ipv4.ip_forward"] = 0
    (ipv4, ipv6) = check_forwarding(facts)
    assert ipv4["status"] == "fail" and ipv4["fix_module"] == {"module": "hypervisor.network.ip_forward", "args": {"ipv4": True}}
    assert ipv6["status"] == "ok"  # no IPv6 on the network
    facts["networks"][0]["ips"].append({"address": "fd00:1::1", "prefix": 64})
    assert check_forwarding(facts)[1]["status"] == "fail"


def test_masquerade_from_libvirt_rules_and_missing(facts):
    (found,) = check_masquerade(facts)
    assert found["status"] == "ok" and "LIBVIRT_PRT" in found["evidence"][0]
    facts["networks"][0]["ips"][0]["address"] = "192.168.100.1"
    (missing,) = check_masquerade(facts)
    assert missing["status"] == "fail"
    assert missing["fix_module"]["args"] == {"config": [{"source": "192.168.100.0/24", "out_interface": "eth0"}]}


def test_forward_path_libvirt_reject_then_our_accept_first(facts):
    facts["port_forwards"] = nf.port_forwards(netfilter_chains())
    assert facts["port_forwards"][0]["destination"] == "192.168.122.10"
    (blocked,) = check_forward_path(facts)
    assert blocked["status"] == "fail" and "LIBVIRT_FWI" in blocked["summary"] and "REJECT" in blocked["summary"]
    assert blocked["fix_module"]["args"]["backend"] == "iptables"
    assert blocked["fix_module"]["args"]["config"][0]["destination_port"] == "80"
    # what port_forward's iptables backend adds: its chain first in FORWARD
    save = (FIXTURES / "libvirt-iptables-nft-save.txt").read_text().replace(
        ":LIBVIRT_FWI - [0:0]", ":LIBVIRT_FWI - [0:0]\n:HNET-PF-FORWARD - [0:0]").replace(
        "-A FORWARD -j LIBVIRT_FWX", "-A FORWARD -j HNET-PF-FORWARD\n-A FORWARD -j LIBVIRT_FWX\n"
        "-A HNET-PF-FORWARD -d 192.168.122.10/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT")
    for key, body in nf.chains_from_save(save, "ip", "nft").items():
        facts["chains"][" ".join(key)] = body
    (ok,) = check_forward_path(facts)
    assert ok["status"] == "ok", ok


def test_forward_path_policy_drop_blocks_replies(facts):
    facts["port_forwards"] = nf.port_forwards(netfilter_chains())
    save = ("*filter\n:FORWARD DROP [0:0]\n:HNET-PF-FORWARD - [0:0]\n-A FORWARD -j HNET-PF-FORWARD\n"
            "-A HNET-PF-FORWARD -d 192.168.122.10/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT\nCOMMIT\n")
    facts["chains"] = {" ".join(k): v for k, v in nf.chains_from_save(save, "ip", "nft").items()}
    (finding,) = check_forward_path(facts)
    assert finding["status"] == "fail" and "replies" in finding["summary"] and finding["fix_module"] is None
    # an accept for the guest's replies by their source port lets them out
    save = save.replace("COMMIT", "-A HNET-PF-FORWARD -s 192.168.122.10/32 -p tcp -m tcp --sport 80 -m conntrack --ctstate DNAT -j ACCEPT\nCOMMIT")
    facts["chains"] = {" ".join(k): v for k, v in nf.chains_from_save(save, "ip", "nft").items()}
    assert check_forward_path(facts)[0]["status"] == "ok"


def test_forward_path_legacy_iptables_reject_gets_the_legacy_backend(facts):
    facts["port_forwards"] = nf.port_forwards(netfilter_chains())
    save = (FIXTURES / "libvirt-iptables-nft-save.txt").read_text()
    facts["chains"] = {" ".join(k): v for k, v in nf.chains_from_save(save, "ip", "legacy", table_prefix="legacy-").items()}
    (blocked,) = check_forward_path(facts)
    assert "iptables-legacy -t filter LIBVIRT_FWI" in blocked["summary"]
    assert blocked["fix_module"]["args"]["iptables_variant"] == "legacy"


def test_port_forward_written_twice_or_to_two_guests():
    web = {"protocol": "tcp", "host_port": 8080, "destination": "10.0.0.2", "destination_port": 80, "in_interface": None,
           "where": "nft inet hypervisor_network_port_forward prerouting"}
    twice = [web, dict(web, where="iptables-nft -t nat HNET-PF-PREROUTING")]
    (dup,) = check_forward_duplicates({"port_forwards": twice})
    assert dup["status"] == "warn" and len(dup["evidence"]) == 2
    (clash,) = check_forward_duplicates({"port_forwards": [web, dict(web, destination="10.0.0.3")]})
    assert clash["status"] == "fail" and "2 destinations" in clash["summary"]
    assert check_forward_duplicates({"port_forwards": [web]})[0]["status"] == "ok"


def test_rules_that_could_not_be_read_are_a_warning(facts):
    facts["netfilter_errors"] = ["nft -j list ruleset failed (rc=1): Operation not permitted"]
    (warning,) = check_forward_path(facts)
    assert warning["status"] == "warn" and warning["subject"] == "netfilter" and "become" in warning["fix"]


def test_forward_path_native_nft_drop_gets_an_nft_fix(facts):
    facts["port_forwards"] = [{"protocol": "tcp", "host_port": 2222, "destination": "192.168.122.10", "destination_port": 22,
                               "in_interface": None}]
    facts["chains"] = {"inet filter forward": {"hook": "forward", "policy": "drop", "prio": 0, "type": "filter", "rules": [
        nf.rule([("ct", False, ["established", "related"])], "accept")]}}
    (finding,) = check_forward_path(facts)
    assert finding["status"] == "fail" and "policy of inet filter forward" in finding["summary"]
    assert "nft insert rule inet filter forward ct status dnat ip daddr 192.168.122.10 tcp dport 22 accept" in finding["fix"]


def test_dnsmasq_not_listening_and_port53_taken(facts):
    facts["listeners"] = [{"proto": "udp", "address": "0.0.0.0", "port": 53, "pid": 42, "process": "named"}]
    bad = [f for f in check_dnsmasq_listening(facts) if f["status"] == "fail"]
    assert {f["subject"].split()[0] for f in bad} == {"192.168.122.1:53/tcp", "192.168.122.1:67/udp"}
    (taken,) = check_port53(facts)
    assert taken["status"] == "fail" and "named" in taken["summary"] and "stop named" in taken["fix"]
    facts["listeners"] = [{"proto": "udp", "address": "0.0.0.0", "port": 53, "pid": 1, "process": "systemd-resolve"}]
    assert "DNSStubListener" in check_port53(facts)[0]["fix"]
    facts["listeners"] = [{"proto": "udp", "address": "0.0.0.0", "port": 53, "pid": 1, "process": "dnsmasq"}]
    assert check_port53(facts)[0]["status"] == "warn"


def test_refused_first_nameserver_proposes_per_domain_forwarders(facts):
    facts["dns_probes"] = [
        {"server": "198.51.100.53", "name": "www.example.com", "rcode": "REFUSED", "ms": 1.0},
        {"server": "198.51.100.53", "name": "lab.example", "rcode": "REFUSED", "ms": 1.0},
        {"server": "198.51.100.53", "name": "corp.example", "rcode": "NOERROR", "ms": 1.0},
        {"server": "203.0.113.53", "name": "www.example.com", "rcode": "NOERROR", "ms": 2.0},
        {"server": "203.0.113.53", "name": "lab.example", "rcode": "NXDOMAIN", "ms": 2.0},
        {"server": "203.0.113.53", "name": "corp.example", "rcode": "REFUSED", "ms": 2.0},
    ]
    (refused,) = check_nameservers(facts)
    assert refused["status"] == "fail" and "REFUSED" in refused["summary"]
    assert refused["fix_module"] == {"module": "hypervisor.network.libvirt_network", "args": {
        "name": "default", "dns": {"forwarders": [{"domain": "corp.example", "addr": "198.51.100.53"}, {"addr": "203.0.113.53"}]}}}
    facts["networks"][0]["forwarders"] = refused["fix_module"]["args"]["dns"]["forwarders"]
    (fixed,) = check_nameservers(facts)
    assert fixed["status"] == "ok" and "no network uses resolv.conf" in fixed["summary"]


def test_first_nameserver_refusing_a_private_domain_gets_a_domain_forwarder(facts):
    facts["dns_probes"] = [
        {"server": "198.51.100.53", "name": "www.example.com", "rcode": "NOERROR", "ms": 1.0},
        {"server": "198.51.100.53", "name": "corp.example", "rcode": "REFUSED", "ms": 1.0},
        {"server": "203.0.113.53", "name": "www.example.com", "rcode": "NOERROR", "ms": 1.0},
        {"server": "203.0.113.53", "name": "corp.example", "rcode": "NOERROR", "ms": 1.0},
    ]
    facts["dns_names"]["domains"] = ["corp.example"]
    (refused,) = check_nameservers(facts)
    assert refused["status"] == "fail" and "does not answer corp.example (REFUSED)" in refused["summary"]
    assert refused["fix_module"]["args"]["dns"] == {"forwarders": [{"domain": "corp.example", "addr": "203.0.113.53"}]}
    facts["networks"][0]["forwarders"] = [{"domain": "corp.example", "addr": "203.0.113.53"}]
    assert check_nameservers(facts)[0]["status"] == "ok"


def test_no_nameserver_answers_and_not_probed(facts):
    for probe in facts["dns_probes"]:
        probe["rcode"] = "TIMEOUT"
    assert statuses(check_nameservers(facts)) == ["fail", "warn"]
    facts["dns_probes"] = []
    assert check_nameservers(facts)[0]["summary"].startswith("not probed")


def test_tap_drops_and_baseline(facts):
    facts["counters"]["vnet0"]["tx_dropped"] = 500
    (drops,) = check_tap_drops(facts)
    assert drops["status"] == "warn" and "queues=" in drops["fix"] and "500" in drops["summary"]
    facts["baseline"] = copy.deepcopy(facts["counters"])
    assert check_tap_drops(facts)[0]["status"] == "ok"
    assert check_tap_drops(dict(facts, baseline={}), threshold=1000)[0]["status"] == "ok"


def test_libvirtd_log_patterns(tmp_path):
    log = tmp_path / "libvirtd.log"
    log.write_text("2026-01-01 10:00:00.000+0000: 1: error : nl_recv: No buffer space available\n"
                   "2026-01-01 10:00:01.000+0000: 1: info : all fine\n"
                   "2020-01-01 10:00:00.000+0000: 1: error : Address already in use\n")
    now = 1767261600.0  # 2026-01-01 10:00:00 UTC
    hits, read = log_lines([str(log), str(tmp_path / "missing")], ["No buffer space available", "Address already in use"], 24, now)
    assert read == [str(log)] and len(hits) == 1
    (warn,) = check_libvirtd_log({"log_lines": hits})
    assert warn["status"] == "warn" and "rmem_max" in warn["fix"]
    # issue 13: nothing read (no file, no journal) is not "ok", it is a blind spot to report
    (blind,) = check_libvirtd_log({"log_lines": [], "log_files_read": [], "journal_read": False})
    assert blind["status"] == "warn" and "nothing to read" in blind["summary"]
    assert check_libvirtd_log({"log_lines": [], "log_files_read": [], "journal_read": True})[0]["status"] == "ok"


def test_dhcp_duplicates(facts):
    hosts = facts["networks"][0]["ips"][0]["dhcp_hosts"]
    hosts.append({"mac": "52:54:00:00:00:11", "ip": "192.168.122.10", "name": "db"})
    facts["networks"][0]["leases"] = [{"mac": "52:54:00:00:00:99", "ip": "192.168.122.50"},
                                      {"mac": "52:54:00:00:00:98", "ip": "192.168.122.50"}]
    (dup,) = check_dhcp_duplicates(facts)
    assert dup["status"] == "fail"
    assert any("IP 192.168.122.10 in 2 static hosts" in e for e in dup["evidence"])
    assert any("192.168.122.50 leased to 2 MACs" in e for e in dup["evidence"])


def test_firewalld_zone(facts):
    facts["firewalld"] = {"running": True, "zones": {"virbr0": "public"}}
    (wrong,) = check_firewalld(facts)
    assert wrong["status"] == "warn" and "--zone=libvirt --change-interface=virbr0" in wrong["fix"]
    facts["firewalld"]["zones"]["virbr0"] = "libvirt"
    assert check_firewalld(facts)[0]["status"] == "ok"


def test_libvirt_unreachable_unreadable_and_missing_networks():
    (finding,) = check_libvirt({"libvirt": {"uri": "qemu:///system", "reachable": False, "error": "no socket"}})
    assert finding["status"] == "warn" and finding["evidence"] == ["no socket"]
    missing, unreadable = check_libvirt({"libvirt": {"uri": "qemu:///system", "reachable": True, "count": 1,
                                                     "missing": ["lab"], "errors": ["odd: unknown forward mode"]}})
    assert (missing["status"], missing["subject"]) == ("fail", "lab")
    assert unreadable["status"] == "warn" and unreadable["evidence"] == ["odd: unknown forward mode"]


def test_host_bridges_are_networks_unless_libvirt_has_them():
    addrs = {"br0": ["10.0.0.1/24"], "virbr0": ["192.168.122.1/24"]}
    params = {"networks": None, "bridges": None}
    chosen = select_networks([copy.deepcopy(LIBVIRT_NET)], ["br0", "virbr0"], addrs, params)
    assert [(n["name"], n["source"]) for n in chosen] == [("default", "libvirt"), ("br0", "host")]
    assert select_networks([LIBVIRT_NET], ["br0"], addrs, {"networks": ["default"], "bridges": None}) == [LIBVIRT_NET]
    assert [n["name"] for n in select_networks([LIBVIRT_NET], ["br0"], addrs, {"networks": None, "bridges": ["br0"]})] == ["br0"]
    assert host_network("br0", addrs)["ips"][0] == {"address": "10.0.0.1", "prefix": 24, "dhcp_ranges": [], "dhcp_hosts": []}


def test_a_bridge_carrying_the_default_route_is_not_a_nat_network(facts):
    lan = dict(host_network("br0", {"br0": ["192.168.1.10/24"]}), uplink=True)
    facts["networks"] = [lan]
    facts["links"]["br0"] = {"up": True, "operstate": "UP", "mtu": 1500, "master": None, "kind": "bridge"}
    assert check_masquerade(facts) == [] and check_dnsmasq_listening(facts) == []
    assert [f["status"] for f in check_forwarding(facts)] == ["ok", "ok"]
    lan["uplink"] = False
    assert [f["status"] for f in check_masquerade(facts)] == ["warn"]


@pytest.mark.skipif(sys.byteorder != "little", reason="/proc/net prints addresses in host byte order")
def test_proc_net_listeners():
    udp = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
           "  1: 0100000A:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1234 2 0 0\n"
           "  2: 00000000:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1235 2 0 0\n"
           "  3: 0100000A:0035 0200000A:9999 01 00000000:00000000 00:00000000 00000000     0        0 1236 2 0 0\n")
    assert parse_proc_net(udp, "udp", 4) == [
        {"proto": "udp", "address": "10.0.0.1", "port": 53, "inode": 1234},
        {"proto": "udp", "address": "0.0.0.0", "port": 67, "inode": 1235},
    ]
    tcp6 = ("  sl  local_address                         remote_address                        st ...\n"
            "   0: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 0A 0 0 0 0 0 0 0 99 1\n")
    assert parse_proc_net(tcp6, "tcp", 6)[0]["address"] == "::"
