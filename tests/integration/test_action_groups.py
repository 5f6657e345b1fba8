"""module_defaults groups (meta/runtime.yml action_groups) reach the modules, through a real
ansible-playbook run with the netns connection: the libvirt group against a real libvirtd in a
test namespace, the netfilter group against real nftables in another."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from libvirt_lab import libvirt_host
from netlab import COLLECTIONS, REPO, Lab

pytestmark = pytest.mark.slow

PLAYBOOK = """
- name: Libvirt modules take uri from their group
  hosts: hv
  gather_facts: false
  module_defaults:
    group/hypervisor.network.libvirt:
      uri: "{{ libvirt_uri }}"
  tasks:
    - name: A network, with no uri in the task
      hypervisor.network.libvirt_network:
        name: grp
        bridge: {name: virbr79}
        ips:
          - {address: 10.79.0.1, prefix: 24}
      register: network
      ignore_errors: true
    - name: Diagnose, with no uri in the task
      hypervisor.network.diagnose:
        checks: [libvirt_connection]
      register: diagnose
      ignore_errors: true

- name: Netfilter modules take persist and lock_file from their group
  hosts: fw
  gather_facts: false
  module_defaults:
    group/hypervisor.network.netfilter:
      persist: false
      lock_file: "{{ lock_file }}"
  tasks:
    - name: A forward, with no persist in the task
      hypervisor.network.port_forward:
        config:
          - {host_port: 8080, destination: 10.0.0.2, destination_port: 80}
      register: forward
    - name: A masquerade, with no persist in the task
      hypervisor.network.masquerade:
        config:
          - {source: 10.0.0.0/24}
      register: masquerade

- name: Hand the results to the test
  hosts: localhost
  gather_facts: false
  connection: local
  tasks:
    - name: Write them
      ansible.builtin.copy:
        content: "{{ {'network': hostvars.hv.network, 'diagnose': hostvars.hv.diagnose,
                      'forward': hostvars.fw.forward, 'masquerade': hostvars.fw.masquerade} | to_json }}"
        dest: "{{ out_file }}"
        mode: "0600"
"""


@pytest.fixture(scope="module")
def hosts():
    lab = Lab(tag="agr")
    try:
        with libvirt_host(lab) as (host, _upstream):
            yield host, lab.ns("fw")
    finally:
        lab.close()


def run_playbook(lab, host, fw, uri, name):
    tmp = lab.tmp / name
    tmp.mkdir()
    common = {"ansible_connection": "hypervisor.network.netns", "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"hosts": {
        "hv": dict(common, ansible_netns_name=host.ns, ansible_netns_mount_namespace="/proc/%d/ns/mnt" % host.libvirtd_pid),
        "fw": dict(common, ansible_netns_name=fw),
        "localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
    }}}
    (tmp / "play.yml").write_text(PLAYBOOK)
    (tmp / "inv.json").write_text(json.dumps(inventory))
    out = tmp / "out.json"
    extra = {"libvirt_uri": uri, "lock_file": str(tmp / "lock"), "out_file": str(out)}
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp / "cp"))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp / "inv.json"), str(tmp / "play.yml"),
         "-e", json.dumps(extra)], capture_output=True, text=True, env=env, timeout=300, cwd=str(REPO), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


def test_module_defaults_groups_reach_the_modules(hosts):
    host, fw = hosts
    lab = host.lab
    # A uri that leads nowhere: if the group's default reached the module, the module names it.
    # (Without it, the module's own default qemu:///system would find this libvirtd and succeed.)
    nowhere = "qemu:///system?socket=/run/libvirt/no-socket-here"
    result = run_playbook(lab, host, fw, nowhere, "nowhere")
    assert result["network"]["failed"] and nowhere in result["network"]["msg"], result["network"]
    assert host.virsh(["net-info", "grp"], check=False).returncode != 0
    assert nowhere in json.dumps(result["diagnose"]["findings"]), result["diagnose"]
    # persist=false and lock_file from the netfilter group: applied in the namespace, nothing
    # written for boot (persist defaults to true, and would have written to this machine's /etc).
    for name in ("forward", "masquerade"):
        assert result[name]["changed"] and result[name].get("persisted") is None, result[name]
    tables = lab.run(fw, ["nft", "list", "tables"]).stdout
    assert "hypervisor_network_port_forward" in tables and "hypervisor_network_masquerade" in tables
    assert (lab.tmp / "nowhere" / "lock").exists()

    # The same socket libvirtd listens on, spelled out: the network is created through it.
    real = "qemu:///system?socket=/run/libvirt/libvirt-sock"
    result = run_playbook(lab, host, fw, real, "real")
    assert result["network"]["changed"] and not result["network"].get("failed"), result["network"]
    assert "10.79.0.1" in host.virsh(["net-dumpxml", "grp"]).stdout
    assert not result["diagnose"].get("failed") and real in json.dumps(result["diagnose"]["findings"]), result["diagnose"]
