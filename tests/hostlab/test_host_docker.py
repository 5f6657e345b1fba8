# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real dockerd on a Debian 12 VM: docker.io installed from the lab's package repository, so
its FORWARD policy DROP and its chains are the ones Docker makes, not a copy.

- port_forward on the nftables and on the iptables backend: Docker's DROP swallows the forward
  when coexistence is only reported; with the default the forward reaches a guest namespace
  inside the VM from the lab's upstream, and it still does after ``systemctl restart docker``.
- the guest_dns role on the same host: resolv.conf pointed at the gateway (a DNS server on the
  lab's upstream address answers a name only it knows), Docker's daemon.json gets ``dns`` merged
  with its other keys kept, dockerd restarted once on the change and not on the second run
  (its MainPID and ActiveEnterTimestamp stay)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from hostlab.fixtures import bookworm_image  # noqa: F401  # pylint: disable=unused-import
from hostlab.lab import UPLINK_NET, HostLab
from hostlab.remote import HOST, RemoteLab
from hostlab.test_host_netfilter_reboot import guest

pytestmark = pytest.mark.hostlab

GATEWAY = UPLINK_NET + ".1"


@pytest.fixture(scope="module")
def docker_vm(bookworm_image):  # noqa: F811
    """A Debian 12 VM with docker.io installed and dockerd running: (hostlab, vm)."""
    hostlab = HostLab(bookworm_image)
    try:
        vm = hostlab.start(hostlab.add_vm())
        hostlab.serve_packages()
        # Docker sets FORWARD's policy to DROP when it turns ip_forward on itself: it is off here.
        assert hostlab.ssh(vm, "sysctl -n net.ipv4.ip_forward").stdout.strip() == "0"
        hostlab.ssh(vm, "DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends install docker.io", timeout=1500)
        wait_docker(hostlab, vm)
        yield hostlab, vm
    finally:
        hostlab.close()


def wait_docker(hostlab, vm):
    hostlab.ssh(vm, "for i in $(seq 120); do docker info >/dev/null 2>&1 && exit 0; sleep 1; done; "
                    "systemctl status docker --no-pager; exit 1", timeout=200)


def unit(hostlab, vm, name):
    """(MainPID, ActiveEnterTimestamp) of a systemd unit."""
    shown = hostlab.ssh(vm, "systemctl show -p MainPID -p ActiveEnterTimestamp %s" % name).stdout
    values = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    return values["MainPID"], values["ActiveEnterTimestamp"]


def forward_chain(remote):
    return remote.run(HOST, ["iptables", "-S", "FORWARD"]).stdout.splitlines()


def test_port_forward_lives_with_a_real_docker(docker_vm):
    hostlab, vm = docker_vm
    remote = RemoteLab(hostlab, vm)
    try:
        docker_rules = forward_chain(remote)
        assert docker_rules[0] == "-P FORWARD DROP" and "-A FORWARD -j DOCKER-USER" in docker_rules, docker_rules
        guest(remote)  # 10.20.0.11 serving 7301, the forward's target
        config = [{"host_port": 8086, "destination": "10.20.0.11", "destination_port": 7301, "in_interface": "eth0"}]
        for backend in ("nftables", "iptables"):
            if backend == "nftables":  # the baseline: Docker's real DROP policy swallows a forward nobody opened
                ignored = remote.module(HOST, "port_forward", dict(backend=backend, config=config, coexistence="ignore"))
                assert any(e.get("outcome") == "blocked" for e in ignored["coexistence"]), ignored["coexistence"]
                assert hostlab.connect(vm.address, 8086, timeout=3) is None
            opened = remote.module(HOST, "port_forward", dict(backend=backend, config=config))
            assert {"managers": ["docker"]} in opened["coexistence"], opened["coexistence"]
            assert hostlab.connect(vm.address, 8086) == "peer=%s" % GATEWAY, (backend, forward_chain(remote))

            before = unit(hostlab, vm, "docker")
            remote.sh("systemctl restart docker")
            wait_docker(hostlab, vm)
            assert unit(hostlab, vm, "docker") != before  # dockerd really restarted and rewrote its chains
            assert forward_chain(remote)[0] == "-P FORWARD DROP"
            assert hostlab.connect(vm.address, 8086) == "peer=%s" % GATEWAY, (backend, forward_chain(remote))
            again = remote.module(HOST, "port_forward", dict(backend=backend, config=config))
            assert again["changed"] is False, again["commands"]
        remote.module(HOST, "port_forward", dict(backend="iptables", config=config, state="deleted"))
    finally:
        remote.close()


def test_guest_dns_points_the_resolver_and_docker_at_the_gateway(docker_vm):
    hostlab, vm = docker_vm
    # The gateway's DNS: a server on the lab's upstream address that knows one name.
    dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    server = subprocess.Popen(["ip", "netns", "exec", hostlab.ns, dnsmasq, "--keep-in-foreground", "--no-resolv", "--no-hosts",
                               "--bind-interfaces", "--listen-address=%s" % GATEWAY, "--port=53", "--pid-file=",
                               "--user=root", "--address=/gw.hostlab.test/203.0.113.7"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    hostlab.services.append(server)
    deadline = time.monotonic() + 10
    while ":53 " not in hostlab.run(["ss", "-Hulnp"]).stdout and time.monotonic() < deadline:
        time.sleep(0.1)

    hostlab.ssh(vm, "printf '# kept\\noptions timeout:1 attempts:1\\nnameserver 203.0.113.53\\n' > /etc/resolv.conf && "
                    "mkdir -p /etc/docker && echo '{\"log-driver\": \"json-file\", \"log-opts\": {\"max-size\": \"10m\"}}' "
                    "> /etc/docker/daemon.json && systemctl restart docker")
    wait_docker(hostlab, vm)
    assert hostlab.ssh(vm, "getent hosts gw.hostlab.test", check=False).returncode != 0  # the baseline: not the gateway
    started = unit(hostlab, vm, "docker")

    play = json.dumps([{"hosts": vm.name, "gather_facts": True, "roles": ["hypervisor.network.guest_dns"]}])
    _proc, first = hostlab.playbook(play)
    assert first[vm.name]["changed"] >= 2 and first[vm.name]["failed"] == 0, first
    assert hostlab.ssh(vm, "cat /etc/resolv.conf").stdout == "# kept\noptions timeout:1 attempts:1\nnameserver %s\n" % GATEWAY
    assert hostlab.ssh(vm, "getent hosts gw.hostlab.test").stdout.split()[0] == "203.0.113.7"
    daemon = json.loads(hostlab.ssh(vm, "cat /etc/docker/daemon.json").stdout)
    assert daemon == {"log-driver": "json-file", "log-opts": {"max-size": "10m"}, "dns": [GATEWAY]}, daemon
    wait_docker(hostlab, vm)
    restarted = unit(hostlab, vm, "docker")
    assert restarted[0] != started[0] and restarted[1] != started[1], (started, restarted)  # restarted on the change
    assert "json-file" in hostlab.ssh(vm, "docker info --format '{{.LoggingDriver}}'").stdout  # and it read the merged file

    _proc, second = hostlab.playbook(play)
    assert second[vm.name]["changed"] == 0, second
    assert unit(hostlab, vm, "docker") == restarted  # no restart without a change
