"""Issue 11 item 8 (first half): which forwards would take a port the host itself listens on.
Parsers from captured `ss -H -l -n -p -t -u` and /proc/net/tcp6 output; the decision is pure."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import coexist
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import model

# Captured in a namespace with sockets on 0.0.0.0%lo:53/udp, 127.0.0.1:5353/udp, 0.0.0.0:2222/tcp
# and a dual-stack [::]:2223/tcp, plus sshd's two IPv4/IPv6-only sockets.
SS = '''udp UNCONN 0      0      0.0.0.0%lo:53   0.0.0.0:* users:(("python3",pid=2147,fd=6))
udp UNCONN 0      0       127.0.0.1:5353 0.0.0.0:* users:(("python3",pid=2147,fd=5))
tcp LISTEN 0      128       0.0.0.0:2222 0.0.0.0:* users:(("python3",pid=2147,fd=3))
tcp LISTEN 0      128             *:2223       *:* users:(("python3",pid=2147,fd=4))
tcp LISTEN 0      128       0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=501,fd=3),("sshd",pid=900,fd=3))
tcp LISTEN 0      128          [::]:22    [::]:* users:(("sshd",pid=501,fd=4))
tcp LISTEN 0      128      203.0.113.10:8443 0.0.0.0:*
tcp LISTEN 0      128      [::ffff:127.0.0.1]:631 *:* users:(("cupsd",pid=77,fd=7))
'''
# /proc/net/tcp6 of a namespace with a dual-stack [::]:2223 listener, an IPv4-mapped
# 127.0.0.1:53 listener and a socket in state 01 (established, not a listener).
PROC_TCP6 = (Path(__file__).resolve().parents[1] / "fixtures" / "proc_net_tcp6.txt").read_text()


def forward(**raw):
    raw.setdefault("destination", "10.0.0.5")
    return model.complete_port_forward("config[0]", model.parse_port_forward(0, raw), None, ())


def test_ss_output_is_read_with_addresses_devices_and_processes():
    found = coexist.parse_ss(SS)
    assert found[0] == coexist.Listener("udp", 53, None, 4, "lo", (("python3", 2147),))
    assert found[1] == coexist.Listener("udp", 5353, "127.0.0.1", 4, None, (("python3", 2147),))
    assert found[3] == coexist.Listener("tcp", 2223, None, None, None, (("python3", 2147),))
    assert found[4].processes == (("sshd", 501), ("sshd", 900))
    assert found[5] == coexist.Listener("tcp", 22, None, 6, None, (("sshd", 501),))
    assert found[6] == coexist.Listener("tcp", 8443, "203.0.113.10", 4)
    assert found[7] == coexist.Listener("tcp", 631, "127.0.0.1", 4, None, (("cupsd", 77),))
    assert "socket (no process named by ss or /proc/net) listening on tcp 203.0.113.10:8443" in found[6].describe()
    assert "sshd (pid 501), sshd (pid 900) listening on tcp 0.0.0.0:22" in found[4].describe()


def test_proc_net_fallback():
    found = coexist.parse_proc_net(PROC_TCP6, "tcp", 6)
    assert found == [coexist.Listener("tcp", 2223, None, None), coexist.Listener("tcp", 53, "127.0.0.1", 4)]


LISTENERS = {listener.port: listener for listener in coexist.parse_ss(SS) if listener.proto == "tcp" and listener.family != 6}
ADDRESSES = {"eth0": {"203.0.113.10"}, "eth1": {"198.51.100.10"}}


@pytest.mark.parametrize("fwd, port, taken", [
    (forward(host_port="22"), 22, True),                                  # the case of the issue
    (forward(host_port="20-30"), 22, True),                               # a range over it
    (forward(host_port="22", protocol="udp"), 22, False),                 # other protocol
    (forward(host_port="22", in_interface="eth0"), 22, True),             # wildcard: reachable on eth0 too
    (forward(host_port="22", host_address="203.0.113.10"), 22, True),     # wildcard: reachable there too
    (forward(host_port="2223", destination="fd00::5"), 2223, True),       # dual-stack socket, IPv6 forward
    (forward(host_port="2223"), 2223, True),                              # dual-stack socket, IPv4 forward
    (forward(host_port="8443", host_address="198.51.100.10"), 8443, False),  # bound elsewhere
    (forward(host_port="8443", host_address="203.0.113.10"), 8443, True),
    (forward(host_port="8443", in_interface="eth1"), 8443, False),        # its address is not on eth1
    (forward(host_port="8443", in_interface="eth0"), 8443, True),
])
def test_which_forwards_take_a_listener(fwd, port, taken):
    assert coexist.takes_over(fwd, LISTENERS[port], lambda ifname: ADDRESSES.get(ifname, set())) is taken


def test_loopback_and_device_bound_listeners():
    udp = coexist.parse_ss(SS)
    on_lo, on_localhost = udp[0], udp[1]

    def nobody(_ifname):
        return set()

    assert not coexist.takes_over(forward(host_port="53", protocol="udp"), on_lo, nobody)
    assert not coexist.takes_over(forward(host_port="5353", protocol="udp"), on_localhost, nobody)
    # hairpin DNATs the host's own connections too, loopback included
    hairpin = forward(host_port="5353", protocol="udp", hairpin=True, hairpin_sources=["10.0.0.0/24"])
    assert coexist.takes_over(hairpin, on_localhost, nobody)
    ipv6_only = coexist.parse_ss(SS)[5]
    assert not coexist.takes_over(forward(host_port="22"), ipv6_only, nobody)


class _ListenerRunner:
    """`ss` answered with ``ss``, counted; `ip -j addr show` with no addresses."""

    def __init__(self, ss):
        self.ss = ss
        self.reads = []

    def has(self, name):
        return True

    def read(self, argv, check_rc=True, cached=False):
        self.reads.append(argv[0])
        return 0, self.ss, ""

    def read_json(self, argv):
        self.reads.append(argv[0])
        return []


def _proc(monkeypatch, listeners):
    monkeypatch.setattr(coexist, "read_kernel_listeners", lambda: list(listeners))


def test_no_listener_in_the_kernel_s_list_means_no_ss(monkeypatch):
    """The kernel's list (sock_diag, or /proc/net, which flags a superset) holds every takeover
    that ss finds: with none there, the run never starts ss (whose -p walks every process's file
    descriptors)."""
    _proc(monkeypatch, [coexist.Listener("tcp", 9999, None, None)])
    runner = _ListenerRunner(SS)
    coexist.refuse_local_takeover(runner, [forward(host_port="22"), forward(host_port="8000-8100")], {})
    assert runner.reads == []


def test_a_takeover_seen_in_the_kernel_s_list_is_decided_and_named_by_ss(monkeypatch):
    # /proc/net shows no device: the UDP socket bound to lo looks like a wildcard there
    _proc(monkeypatch, [coexist.Listener("udp", 53, None, 4), coexist.Listener("tcp", 22, None, None)])
    runner = _ListenerRunner(SS)
    coexist.refuse_local_takeover(runner, [forward(host_port="53", protocol="udp")], {})
    assert runner.reads == ["ss"], "ss knows it is bound to lo: no takeover"
    with pytest.raises(coexist.ValidationError) as refused:
        coexist.refuse_local_takeover(_ListenerRunner(SS), [forward(host_port="10-30")], {forward(host_port="10-30").key: 3})
    assert refused.value.field == "config[3].host_port" and "sshd (pid 501)" in str(refused.value)


def test_a_first_apply_compiles_no_forward_for_the_guard(monkeypatch):
    """With none of our rules loaded, no forward can have all of its rules in place: the guard
    hands every new forward to the listener check without compiling each one (1000 compiles at
    1000 forwards); with rules loaded, a forward whose rules are all there is left out."""
    from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import port_forward_module as pfm
    from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import rules as rules_ir

    items = [forward(host_port=str(port)) for port in (80, 81)]
    partials = [model.parse_port_forward(i, {"host_port": str(port), "destination": "10.0.0.5"})
                for i, port in enumerate((80, 81))]
    compiled, checked = [], []
    real_rules = rules_ir.port_forward_rules
    monkeypatch.setattr(rules_ir, "port_forward_rules", lambda fwd: compiled.append(fwd) or real_rules(fwd))
    monkeypatch.setattr(coexist, "refuse_local_takeover", lambda runner, forwards, places: checked.append(forwards))
    params = {"state": "merged", "allow_local_port_takeover": False}
    pfm.KIND.guard(None, params, partials, items, [], [])
    assert compiled == [] and checked == [items]
    pfm.KIND.guard(None, params, partials, items, [], real_rules(items[0]))
    assert checked[-1] == [items[1]]
