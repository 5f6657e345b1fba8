"""Issue 11 item 8 (first half): a forward of a port the host itself listens on is refused,
naming the process, unless its scope leaves the listener alone or allow_local_port_takeover is
set. A real listener in a namespace, through the module and through the netns connection plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from netlab import COLLECTIONS, REPO


def _host(lab):
    hv = lab.ns("hv")
    up = lab.ns("up")
    lab.veth(hv, "eth0", up, "eth0")
    lab.addr(hv, "eth0", "203.0.113.1/24")
    lab.addr(up, "eth0", "203.0.113.2/24")
    return hv


def _ruleset(lab, ns):
    return lab.run(ns, ["nft", "list", "ruleset"]).stdout, lab.run(ns, ["iptables-save"]).stdout


def test_a_forward_of_a_listened_port_is_refused_naming_the_process(lab):
    hv = _host(lab)
    service = lab.serve_tcp(hv, 2222)
    base = {"persist": False, "lock_file": str(lab.tmp / "lock"), "backend": "nftables"}
    before = _ruleset(lab, hv)
    for check_mode in (True, False):
        result = lab.module(hv, "port_forward", dict(base, config=[{"host_port": "2222", "destination": "10.0.0.5"}]),
                            check_mode=check_mode, expect_fail=True)
        assert result["field"] == "config[0].host_port"
        assert "pid %d" % service.pid in result["msg"] and "python" in result["msg"]
        assert "tcp 0.0.0.0:2222" in result["msg"] and "allow_local_port_takeover" in result["msg"]
    # in_interface does not exclude a listener on every address: it is reachable there too
    result = lab.module(hv, "port_forward", dict(base, config=[
        {"host_port": "2222", "destination": "10.0.0.5", "in_interface": "eth0"}]), expect_fail=True)
    assert "pid %d" % service.pid in result["msg"]
    assert _ruleset(lab, hv) == before
    # The other protocol and other ports are not the listener's.
    lab.module(hv, "port_forward", dict(base, config=[{"host_port": "2222", "protocol": "udp", "destination": "10.0.0.6"},
                                                      {"host_port": "2223", "destination": "10.0.0.5"}]))
    # Said explicitly, it is done, and runs after that leave the existing forward alone.
    result = lab.module(hv, "port_forward", dict(base, allow_local_port_takeover=True, config=[
        {"host_port": "2222", "destination": "10.0.0.5"}]))
    assert result["changed"] and ("2222", "tcp", "10.0.0.5") in [(f["host_port"], f["protocol"], f["destination"]) for f in result["after"]]
    result = lab.module(hv, "port_forward", dict(base, config=[{"host_port": "2222", "destination": "10.0.0.5"}]))
    assert result["changed"] is False, (result["commands"], result["removed_stale"], result["coexistence"])


def test_a_listener_bound_elsewhere_is_left_alone_by_a_scoped_forward(lab):
    hv = _host(lab)
    lab.addr(hv, "lo", "198.51.100.1/32")
    lab.serve_tcp(hv, 8443, address="198.51.100.1")
    base = {"persist": False, "lock_file": str(lab.tmp / "lock"), "backend": "nftables", "state": "overridden"}
    lab.module(hv, "port_forward", dict(base, config=[{"host_port": "8443", "destination": "10.0.0.5", "host_address": "203.0.113.1"}]))
    lab.module(hv, "port_forward", dict(base, config=[{"host_port": "8443", "destination": "10.0.0.6", "in_interface": "eth0"}]))
    result = lab.module(hv, "port_forward", dict(base, config=[{"host_port": "8443", "destination": "10.0.0.7",
                                                                "host_address": "198.51.100.1"}]), expect_fail=True)
    assert "198.51.100.1:8443" in result["msg"]


PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: Forward a port the host listens on
      hypervisor.network.port_forward:
        config:
          - {host_port: 2222, destination: 10.0.0.5}
        persist: false
        lock_file: "{{ lock_file }}"
        allow_local_port_takeover: "{{ allow }}"
"""


def _playbook(lab, ns, allow):
    (lab.tmp / "play.yml").write_text(PLAYBOOK)
    host = {"ansible_connection": "hypervisor.network.netns", "ansible_netns_name": ns,
            "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"hosts": {"hv1": host}}}
    (lab.tmp / "inv.json").write_text(json.dumps(inventory))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_SSH_CONTROL_PATH_DIR=str(lab.tmp / "cp"))
    extra = {"lock_file": str(lab.tmp / "lock"), "allow": allow}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(lab.tmp / "inv.json"),
                           str(lab.tmp / "play.yml"), "-e", json.dumps(extra)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=str(REPO), check=False)


def test_refusal_and_explicit_takeover_through_the_netns_connection(lab):
    hv = _host(lab)
    service = lab.serve_tcp(hv, 2222)
    proc = _playbook(lab, hv, False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "config[0].host_port" in output and "pid %d" % service.pid in output, output
    assert "hypervisor_network_port_forward" not in lab.run(hv, ["nft", "list", "tables"]).stdout
    proc = _playbook(lab, hv, True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dport 2222" in lab.run(hv, ["nft", "list", "table", "inet", "hypervisor_network_port_forward"]).stdout


# Sockets of every kind the guard tells apart, made in the namespace; then the guard's reading
# of the kernel (sock_diag) and ss's own view of the same sockets, printed as JSON.
_SOCKETS = r"""
import json, socket, subprocess, sys
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import coexist
from ansible_collections.hypervisor.network.plugins.module_utils import _sock_diag
kept = []
def bound(family, kind, address, v6only=None, device=None):
    sock = socket.socket(family, kind)
    if v6only is not None:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    if device:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
    sock.bind(address)
    if kind == socket.SOCK_STREAM:
        sock.listen()
    kept.append(sock)
    return sock
bound(socket.AF_INET, socket.SOCK_STREAM, ("0.0.0.0", 2222))
bound(socket.AF_INET6, socket.SOCK_STREAM, ("::", 2223), v6only=False)
bound(socket.AF_INET6, socket.SOCK_STREAM, ("::", 2224), v6only=True)
bound(socket.AF_INET, socket.SOCK_STREAM, ("203.0.113.1", 8443), device="eth0")
bound(socket.AF_INET6, socket.SOCK_STREAM, ("::ffff:127.0.0.1", 631), v6only=False)
bound(socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 5353))
bound(socket.AF_INET, socket.SOCK_DGRAM, ("0.0.0.0", 53), device="lo")
bound(socket.AF_INET6, socket.SOCK_DGRAM, ("::", 547))
server = bound(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 7000))
client = socket.create_connection(("127.0.0.1", 7000))  # established: no listener
accepted = server.accept()[0]
sending = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sending.connect(("127.0.0.1", 5353))  # connected UDP: not waiting for anyone
kept += [client, accepted, sending]
def view(listeners):
    return sorted([lst.proto, lst.port, lst.address, lst.family, lst.device] for lst in listeners)
ss = subprocess.run(["ss", "-H", "-l", "-n", "-t", "-u"], capture_output=True, text=True, check=True).stdout
print(json.dumps({"kernel": view(coexist.read_kernel_listeners()), "ss": view(coexist.parse_ss(ss)),
                  "raw": len(_sock_diag.listening_sockets())}))
"""


def test_the_kernel_s_listener_list_is_what_ss_lists(lab):
    """The guard's first look (sock_diag, no process) sees exactly the sockets ss sees, with
    their bound device and IPv6-only flag; established and connected sockets are not in it."""
    hv = _host(lab)
    lab.run(hv, ["ip", "link", "set", "lo", "up"])
    proc = lab.run(hv, ["env", "PYTHONPATH=%s" % COLLECTIONS, sys.executable, "-c", _SOCKETS])
    views = json.loads(proc.stdout)
    assert views["kernel"] == views["ss"]
    assert views["raw"] == 9  # the eight sockets above and the server of the connection
    assert ["tcp", 2223, None, None, None] in views["kernel"]  # dual-stack wildcard
    assert ["tcp", 2224, None, 6, None] in views["kernel"]  # IPv6-only wildcard
    assert ["tcp", 8443, "203.0.113.1", 4, "eth0"] in views["kernel"]
    assert ["tcp", 631, "127.0.0.1", 4, None] in views["kernel"]  # IPv4-mapped
    assert ["udp", 53, None, 4, "lo"] in views["kernel"]
