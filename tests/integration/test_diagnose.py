"""diagnose in namespaces: break one thing, see the finding and its fix, apply the fix, see ok.

The hypervisor is the netfilter topology's "hv" namespace (br0 10.0.0.1/24 with two guests). DNS
probes only go to the upstream namespace these tests create.
"""

from __future__ import annotations

import sys
import time

import pytest

from netfilter_topology import G1, HV_UPLINK, UPSTREAM, build, persist_args

WEB = {"protocol": "tcp", "host_port": "8080", "destination": G1, "destination_port": "80"}


def diagnose(lab, ns, checks=None, **args):
    base = {"libvirt": False, "probe_dns": False, "resolv_conf": str(lab.tmp / "resolv.conf"),
            "log_files": [str(lab.tmp / "libvirtd.log")], "probe_timeout": 1.0}
    if checks:
        base["checks"] = checks
    base.update(args)
    result = lab.module(ns, "diagnose", base)
    assert result["changed"] is False
    return result


def only(result, check, subject=None):
    found = [f for f in result["findings"] if f["check"] == check and (subject is None or subject in f["subject"])]
    assert found, "no %s finding in %s" % (check, result["findings"])
    return found


def apply_fix(lab, ns, fix, **extra):
    """Run the module the finding names, with its arguments."""
    name = fix["module"].rsplit(".", 1)[1]
    return lab.module(ns, name, dict(fix["args"], **extra))


def test_ip_forward_off_is_found_and_fixed_by_ip_forward(lab):
    topo = build(lab)
    lab.sysctl(topo.hv, "net.ipv4.ip_forward", 0)
    (bad,) = only(diagnose(lab, topo.hv, ["ip_forward"]), "ip_forward", "ipv4")
    assert bad["status"] == "fail" and "br0" in bad["summary"]
    assert bad["fix_module"] == {"module": "hypervisor.network.ip_forward", "args": {"ipv4": True}}
    apply_fix(lab, topo.hv, bad["fix_module"], persist=False)
    (good,) = only(diagnose(lab, topo.hv, ["ip_forward"]), "ip_forward", "ipv4")
    assert good["status"] == "ok"


def test_bridge_missing_down_and_mtu_are_found_and_fixed(lab):
    topo = build(lab)
    bridge_args = {"persist": "none"}
    lab.run(topo.hv, ["ip", "link", "set", "br0", "down"])
    lab.run(topo.hv, ["ip", "link", "set", "vg2", "mtu", "1400"])
    found = {f["check"]: f for f in diagnose(lab, topo.hv, ["bridge"])["findings"]}
    assert found["bridge_up"]["status"] == "fail" and found["bridge_mtu"]["status"] == "warn"
    assert "ip link set dev vg2 mtu 1500" in found["bridge_mtu"]["fix"]
    apply_fix(lab, topo.hv, found["bridge_up"]["fix_module"], **bridge_args)
    lab.run(topo.hv, ["ip", "link", "set", "vg2", "mtu", "1500"])  # the words of the MTU fix
    assert {f["status"] for f in diagnose(lab, topo.hv, ["bridge"])["findings"]} == {"ok"}

    (missing,) = only(diagnose(lab, topo.hv, ["bridge"], bridges=["br9"]), "bridge_exists")
    assert missing["status"] == "fail"
    assert missing["fix_module"] == {"module": "hypervisor.network.bridge", "args": {"name": "br9", "state": "present"}}
    apply_fix(lab, topo.hv, missing["fix_module"], **bridge_args)
    result = diagnose(lab, topo.hv, ["bridge"], bridges=["br9"])
    assert [(f["check"], f["status"]) for f in result["findings"]] == [("bridge_ports", "warn"), ("bridge_exists", "ok"), ("bridge_up", "ok")]


def test_missing_masquerade_is_found_and_fixed_by_masquerade(lab):
    topo = build(lab)
    lab.serve_tcp(topo.upstream, 9000)
    (bad,) = only(diagnose(lab, topo.hv, ["masquerade"]), "masquerade")
    assert bad["status"] == "warn" and bad["subject"].startswith("10.0.0.0/24")
    # hv has no default route here, so no out_interface is proposed
    assert bad["fix_module"] == {"module": "hypervisor.network.masquerade", "args": {"config": [{"source": "10.0.0.0/24"}]}}
    apply_fix(lab, topo.hv, bad["fix_module"], **persist_args(lab))
    (good,) = only(diagnose(lab, topo.hv, ["masquerade"]), "masquerade")
    assert good["status"] == "ok"
    assert lab.connect(topo.g1, UPSTREAM, 9000) == "peer=%s" % HV_UPLINK
    # a masquerade removed afterwards is found again
    lab.module(topo.hv, "masquerade", dict(state="deleted", **persist_args(lab)))
    assert only(diagnose(lab, topo.hv, ["masquerade"]), "masquerade")[0]["status"] == "warn"


# libvirt's own rules for a NAT network (libvirt 9, iptables-nft): replies in, everything else rejected.
LIBVIRT_FWI = (
    ["-N", "LIBVIRT_FWI"],
    ["-I", "FORWARD", "1", "-j", "LIBVIRT_FWI"],
    ["-A", "LIBVIRT_FWI", "-d", "10.0.0.0/24", "-o", "br0", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
    ["-A", "LIBVIRT_FWI", "-o", "br0", "-j", "REJECT", "--reject-with", "icmp-port-unreachable"],
)


@pytest.mark.parametrize("iptables", ["iptables-nft", "iptables-legacy"])
def test_libvirt_reject_is_found_and_fixed_by_port_forward(lab, iptables):
    topo = build(lab)
    lab.serve_tcp(topo.g1, 80)
    lab.module(topo.hv, "port_forward", dict(config=[WEB], backend="nftables", **persist_args(lab)))
    (good,) = only(diagnose(lab, topo.hv, ["forward_path"]), "forward_path")
    assert good["status"] == "ok", good
    for argv in LIBVIRT_FWI:
        lab.run(topo.hv, [iptables] + argv)
    assert lab.connect(topo.upstream, HV_UPLINK, 8080, timeout=1) is None

    (bad,) = only(diagnose(lab, topo.hv, ["forward_path"]), "forward_path")
    assert bad["status"] == "fail"
    assert "LIBVIRT_FWI" in bad["summary"] and "REJECT" in bad["summary"]
    assert bad["fix_module"]["module"] == "hypervisor.network.port_forward"
    assert bad["fix_module"]["args"]["backend"] == "iptables"
    assert bad["fix_module"]["args"]["iptables_variant"] == iptables.split("-")[1]
    apply_fix(lab, topo.hv, bad["fix_module"], **persist_args(lab))
    (fixed,) = only(diagnose(lab, topo.hv, ["forward_path"]), "forward_path")
    assert fixed["status"] == "ok", fixed
    assert lab.connect(topo.upstream, HV_UPLINK, 8080) == "peer=%s" % UPSTREAM


def test_host_port_forwarded_to_two_guests(lab):
    topo = build(lab)
    lab.serve_tcp(topo.g1, 80)
    lab.module(topo.hv, "port_forward", dict(config=[WEB], backend="nftables", **persist_args(lab)))
    (once,) = only(diagnose(lab, topo.hv, ["port_forward_duplicates"]), "port_forward_duplicates")
    assert once["status"] == "ok"
    stray = ["PREROUTING", "-p", "tcp", "--dport", "8080", "-j", "DNAT", "--to-destination", "10.0.0.3:80"]
    lab.run(topo.hv, ["iptables-nft", "-t", "nat", "-I"] + stray)
    (clash,) = only(diagnose(lab, topo.hv, ["port_forward_duplicates"]), "port_forward_duplicates")
    assert clash["status"] == "fail" and "2 destinations" in clash["summary"], clash
    lab.run(topo.hv, ["iptables-nft", "-t", "nat", "-D"] + stray)  # the fix: remove the other one
    assert only(diagnose(lab, topo.hv, ["port_forward_duplicates"]), "port_forward_duplicates")[0]["status"] == "ok"
    assert lab.connect(topo.upstream, HV_UPLINK, 8080) == "peer=%s" % UPSTREAM


def test_forward_policy_drop_also_drops_replies(lab):
    topo = build(lab)
    # a hand-made port forward that accepts the new connection only
    for argv in (["-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "8080", "-j", "DNAT", "--to-destination", G1 + ":80"],
                 ["-A", "FORWARD", "-d", G1, "-p", "tcp", "--dport", "80", "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT"],
                 ["-P", "FORWARD", "DROP"]):
        lab.run(topo.hv, ["iptables-nft"] + argv)
    lab.serve_tcp(topo.g1, 80)
    assert lab.connect(topo.upstream, HV_UPLINK, 8080, timeout=1) is None
    (bad,) = only(diagnose(lab, topo.hv, ["forward_path"]), "forward_path")
    assert bad["status"] == "fail" and "replies" in bad["summary"] and "ESTABLISHED" in bad["fix"], bad
    lab.run(topo.hv, ["iptables-nft", "-I", "FORWARD", "1", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"])
    (fixed,) = only(diagnose(lab, topo.hv, ["forward_path"]), "forward_path")
    assert fixed["status"] == "ok", fixed
    assert lab.connect(topo.upstream, HV_UPLINK, 8080) == "peer=%s" % UPSTREAM


def start_dnsmasq(lab, ns):
    """A dnsmasq bound to the bridge address, standing in for libvirt's."""
    proc = lab.spawn(ns, ["dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
                          "--listen-address=10.0.0.1", "--except-interface=lo", "--pid-file=", "--user=root",
                          "--dhcp-range=10.0.0.100,10.0.0.150,1h", "--dhcp-leasefile=%s" % (lab.tmp / "leases")])
    wait_for(lambda: ":53 " in lab.run(ns, ["ss", "-Hlnu"]).stdout)
    return proc


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_dnsmasq_stopped_and_port53_taken(lab):
    topo = build(lab)
    dnsmasq = start_dnsmasq(lab, topo.hv)
    result = diagnose(lab, topo.hv, ["dnsmasq_listening", "port53"])
    assert {f["status"] for f in only(result, "dnsmasq_listening")} == {"ok"}
    assert any("dnsmasq" in e for f in only(result, "dnsmasq_listening") for e in f["evidence"])

    dnsmasq.terminate()
    dnsmasq.wait(5)
    stopped = only(diagnose(lab, topo.hv, ["dnsmasq_listening"]), "dnsmasq_listening")
    assert {f["subject"].split(" ")[0] for f in stopped if f["status"] == "warn"} == {
        "10.0.0.1:53/udp", "10.0.0.1:53/tcp", "10.0.0.1:67/udp"}
    assert all(f["fix"] for f in stopped)

    squatter = lab.spawn(topo.hv, ["python3", "-c", "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                                   "s.bind(('0.0.0.0',53))\ntime.sleep(60)"])
    wait_for(lambda: "0.0.0.0:53 " in lab.run(topo.hv, ["ss", "-Hlnu"]).stdout)
    taken = [f for f in only(diagnose(lab, topo.hv, ["port53"]), "port53") if f["status"] == "fail"]
    assert taken and "python3" in taken[0]["summary"] and "stop python3" in taken[0]["fix"]

    squatter.terminate()  # the fix: stop the other server, start dnsmasq again
    squatter.wait(5)
    start_dnsmasq(lab, topo.hv)
    result = diagnose(lab, topo.hv, ["dnsmasq_listening", "port53"])
    assert {f["status"] for f in result["findings"]} == {"ok"}, result["findings"]


def test_resolved_stub_is_fine_resolved_on_all_addresses_is_not(lab):
    hv = lab.ns("hv")
    lab.run(hv, ["ip", "link", "add", "br0", "type", "bridge"])
    lab.addr(hv, "br0", "10.0.0.1/24")
    lab.addr(hv, "lo", "127.0.0.53/8")
    # a listener whose process is called what systemd-resolved's is
    fake = lab.tmp / "bin" / "systemd-resolved"
    fake.parent.mkdir()
    fake.symlink_to(sys.executable)
    listen = ("import socket,sys,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
              "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind((sys.argv[1],53))\ntime.sleep(60)")
    lab.spawn(hv, [str(fake), "-c", listen, "127.0.0.53"])
    wait_for(lambda: "127.0.0.53:53 " in lab.run(hv, ["ss", "-Hlnu"]).stdout)
    (stub,) = only(diagnose(lab, hv, ["port53"]), "port53")
    assert stub["status"] == "ok" and "stub" in stub["summary"] and "systemd-resolve" in stub["evidence"][0]
    lab.spawn(hv, [str(fake), "-c", listen, "0.0.0.0"])
    wait_for(lambda: "0.0.0.0:53 " in lab.run(hv, ["ss", "-Hlnu"]).stdout)
    (taken,) = [f for f in only(diagnose(lab, hv, ["port53"]), "port53") if f["status"] == "fail"]
    assert "DNSStubListener" in taken["fix"] and taken["subject"] == "0.0.0.0:53/udp"


def test_tap_drops_are_found_and_gone_after_queue_tuning(lab):
    topo = build(lab)
    holder = lab.spawn(topo.hv, ["python3", "-c", TAP_HOLDER, "tapg1"])
    wait_for(lambda: lab.run(topo.hv, ["ip", "link", "show", "tapg1"], check=False).returncode == 0)
    lab.run(topo.hv, ["ip", "link", "set", "tapg1", "txqueuelen", "4", "master", "br0", "up"])
    burst(lab, topo.hv)
    first = diagnose(lab, topo.hv, ["tap_drops"])
    (bad,) = only(first, "tap_drops", "tapg1")
    assert bad["status"] == "warn" and "tx_queue_size" in bad["fix"] and "txqueuelen" in bad["fix"]

    lab.run(topo.hv, ["ip", "link", "set", "tapg1", "txqueuelen", "10000"])  # the host side of the fix
    # Counters only grow: the fix is verified by the drops since a baseline taken after it.
    baseline = diagnose(lab, topo.hv, ["tap_drops"])["counters"]
    burst(lab, topo.hv)
    (good,) = only(diagnose(lab, topo.hv, ["tap_drops"], counters_baseline=baseline), "tap_drops", "tapg1")
    assert good["status"] == "ok", good
    assert holder.poll() is None


# Holds a tap device open without reading it, like a guest whose virtio queue is full.
TAP_HOLDER = (
    "import fcntl,os,struct,sys,time\n"
    "fd=os.open('/dev/net/tun',os.O_RDWR)\n"
    "fcntl.ioctl(fd,0x400454ca,struct.pack('16sH',sys.argv[1].encode(),0x0002|0x1000))\n"
    "time.sleep(120)\n"
)


def burst(lab, ns, count=200):
    code = ("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "s.setsockopt(socket.SOL_SOCKET,socket.SO_BROADCAST,1)\n"
            "[s.sendto(b'x'*100,('10.0.0.255',9)) for _ in range(%d)]\n" % count)
    lab.run(ns, ["python3", "-c", code])


def test_libvirtd_log_lines(lab):
    hv = lab.ns("hv")
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    (lab.tmp / "libvirtd.log").write_text(
        "2020-01-01 10:00:00.000+0000: 12: error : old news: No buffer space available\n"
        "%s.123+0000: 34: error : virNetlinkEventCallback:862 : nl_recv returned with error: No buffer space available\n" % now)
    (bad,) = only(diagnose(lab, hv, ["libvirtd_log"]), "libvirtd_log")
    assert bad["status"] == "warn" and len(bad["evidence"]) == 1 and "nl_recv" in bad["evidence"][0]
    (lab.tmp / "libvirtd.log").write_text("")
    assert only(diagnose(lab, hv, ["libvirtd_log"]), "libvirtd_log")[0]["status"] == "ok"


def test_check_mode_is_the_same_run_and_libvirt_down_is_a_finding(lab):
    topo = build(lab)
    before = lab.run(topo.hv, ["nft", "list", "ruleset"]).stdout
    args = {"probe_dns": False, "uri": "qemu+unix:///system?socket=%s" % (lab.tmp / "none.sock"),
            "resolv_conf": str(lab.tmp / "none"), "log_files": []}
    normal = lab.module(topo.hv, "diagnose", args)
    checked = lab.module(topo.hv, "diagnose", args, check_mode=True)
    strip = [(f["check"], f["status"], f["subject"]) for f in normal["findings"]]
    assert strip == [(f["check"], f["status"], f["subject"]) for f in checked["findings"]]
    assert normal["changed"] is checked["changed"] is False
    (libvirt,) = only(normal, "libvirt_connection")
    assert libvirt["status"] == "warn" and libvirt["fix"]
    assert [n["bridge"] for n in normal["networks"]] == ["br0"]
    assert normal["networks"][0]["ports"] == ["vg1", "vg2"]
    assert lab.run(topo.hv, ["nft", "list", "ruleset"]).stdout == before


def test_refused_first_nameserver_is_found_and_fixed_by_reordering(lab):
    from libvirt_lab import PUBLIC_DNS, PUBLIC_NAME, REFUSING_RESOLV_CONF, start_upstream

    hv = lab.ns("hv")
    start_upstream(lab, hv)
    lab.run(hv, ["ip", "link", "add", "br0", "type", "bridge"])
    lab.addr(hv, "br0", "10.0.0.1/24")
    resolv = lab.tmp / "resolv.conf"
    resolv.write_text("search corp.example\n" + REFUSING_RESOLV_CONF)
    result = diagnose(lab, hv, ["nameservers"], probe_dns=True, public_test_name=PUBLIC_NAME)
    (bad,) = only(result, "nameservers")
    assert bad["status"] == "fail" and "REFUSED" in bad["summary"] and "br0" in bad["summary"]
    assert "198.51.100.53 for corp.example; 203.0.113.53 for everything else" in bad["fix"]
    assert bad["fix_module"] is None  # no libvirt network to give forwarders to
    assert {(p["server"], p["name"]): p["rcode"] for p in result["dns_probes"]}[("198.51.100.53", "corp.example")] != "REFUSED"

    # diagnose cannot read a plain dnsmasq's server= lines, so the fix applied here is the other
    # one it names: the answering server first. That only holds while no private domain is
    # needed (the private server is then never asked), hence no search domain below.
    resolv.write_text("nameserver %s\n" % PUBLIC_DNS + REFUSING_RESOLV_CONF.splitlines()[0] + "\n")
    (good,) = only(diagnose(lab, hv, ["nameservers"], probe_dns=True, public_test_name=PUBLIC_NAME), "nameservers")
    assert good["status"] == "ok", good
