# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kvm_host's NIC tuning (kvm_host_interfaces) and kernel keys (kvm_host_sysctl), through the real
role run by ansible-playbook over the netns connection against a real libvirtd in a test namespace.

The keys here are per network namespace (the socket buffer limits the role sets by default are
global: tests/hostlab/test_host_kvm_sysctl.py sets them in a VM), and the test checks that this
machine's own values stay as they were.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from libvirt_lab import libvirt_host
from netlab import COLLECTIONS, REPO, Lab

pytestmark = pytest.mark.slow

RANGE = "net.ipv4.ip_local_port_range"
SOMAXCONN = "net.core.somaxconn"

DOMAIN = """<domain type='qemu'>
  <name>tuned</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <interface type='network'><mac address='52:54:00:66:00:10'/><source network='kvmrole'/><model type='e1000'/></interface>
    <interface type='network'><mac address='52:54:00:66:00:11'/><source network='kvmrole'/><model type='virtio'/></interface>
  </devices>
</domain>
"""

PLAY = [{"hosts": "hv", "gather_facts": False, "roles": ["hypervisor.network.kvm_host"]}]


def host_value(key):
    with open(os.path.join("/proc/sys", *key.split("."))) as handle:
        return " ".join(handle.read().split())


@pytest.fixture(scope="module")
def hv():
    lab = Lab(tag="kvmr")
    try:
        with libvirt_host(lab) as (host, _upstream):
            host.virsh(["define", "/dev/stdin"], input=DOMAIN)
            yield host
    finally:
        lab.close()


def run_role(host, extra, check=False):
    tmp = host.lab.tmp
    hostvars = dict({
        "ansible_connection": "hypervisor.network.netns", "ansible_netns_name": host.ns,
        "ansible_netns_mount_namespace": "/proc/%d/ns/mnt" % host.libvirtd_pid,
        "ansible_python_interpreter": sys.executable,
        "kvm_host_install_packages": False, "kvm_host_service_manager": "none",
        "kvm_host_sysctl_persist": False, "kvm_host_netfilter_persist": False,
        "kvm_host_networks": [{
            "name": "kvmrole", "bridge": {"name": "virbr66", "stp": False, "delay": 0},
            "ips": [{"address": "10.66.0.1", "prefix": 24,
                     "dhcp_ranges": [{"start": "10.66.0.100", "end": "10.66.0.199"}]}],
        }],
    }, **extra)
    (tmp / "kvm-inv.json").write_text(json.dumps({"all": {"hosts": {"hv": hostvars}}}))
    (tmp / "kvm-play.yml").write_text(yaml.safe_dump(PLAY))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp / "cp"),
               PATH="%s:%s" % (Path(sys.executable).parent, os.environ["PATH"]))
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp / "kvm-inv.json"),
            str(tmp / "kvm-play.yml")] + (["--check"] if check else [])
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, cwd=str(REPO), check=False)


def recap(proc):
    line = [x for x in proc.stdout.split("PLAY RECAP", 1)[1].splitlines() if x.startswith("hv")][0]
    return dict(part.split("=") for part in line.split(":", 1)[1].split())


def nic_driver(host, mac):
    root = ET.fromstring(host.virsh(["dumpxml", "--inactive", "tuned"]).stdout)
    for nic in root.findall("devices/interface"):
        if nic.find("mac").get("address") == mac:
            driver = nic.find("driver")
            return nic.find("model").get("type"), (dict(driver.attrib) if driver is not None else {})
    raise AssertionError("no NIC %s" % mac)


def test_the_role_tunes_nics_and_sets_keys_and_a_second_run_changes_nothing(hv):
    before_host = {key: host_value(key) for key in (RANGE, SOMAXCONN, "net.core.rmem_max", "net.core.wmem_max")}
    extra = {
        "kvm_host_interfaces": [{"domain": "tuned", "network": "kvmrole", "mac": "52:54:00:66:00:10",
                                 "model": "virtio", "queues": 2, "rx_queue_size": 1024}],
        "kvm_host_sysctl": {RANGE: [20000, 50000], SOMAXCONN: 1000},
    }
    dry = run_role(hv, extra, check=True)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert nic_driver(hv, "52:54:00:66:00:10") == ("e1000", {}), "check mode tuned the NIC"

    proc = run_role(hv, extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert nic_driver(hv, "52:54:00:66:00:10") == ("virtio", {"queues": "2", "rx_queue_size": "1024"})
    assert nic_driver(hv, "52:54:00:66:00:11") == ("virtio", {}), "the other NIC was touched"
    values = {key: " ".join(hv.run(["sysctl", "-n", key]).stdout.split()) for key in (RANGE, SOMAXCONN)}
    assert values == {RANGE: "20000 50000", SOMAXCONN: "1000"}
    assert "TASK [hypervisor.network.kvm_host : Set the kernel keys (socket buffer limits)]" in proc.stdout

    again = run_role(hv, extra)
    assert again.returncode == 0, again.stdout + again.stderr
    assert recap(again)["changed"] == "0", again.stdout
    # the guest is not running: nothing to restart, so the role says nothing about it
    assert "shut down" not in again.stdout
    assert {key: host_value(key) for key in before_host} == before_host, "the role changed this machine's sysctls"


def test_a_bad_key_stops_the_role_naming_it_before_the_networks(hv):
    proc = run_role(hv, {"kvm_host_sysctl": {"net.ipv4.no_such_key": 1},
                         "kvm_host_networks": [{"name": "notyet", "bridge": {"name": "virbr67"},
                                                "ips": [{"address": "10.67.0.1", "prefix": 24}]}]})
    assert proc.returncode != 0
    assert "values[net.ipv4.no_such_key]: '1' is not valid" in proc.stdout, proc.stdout
    assert hv.virsh(["net-info", "notyet"], check=False).returncode != 0, "the role went on past the bad key"
