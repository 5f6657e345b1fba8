"""The netns connection plugin, through a real ansible-playbook run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from netlab import COLLECTIONS, REPO

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: Links seen from inside the namespace
      ansible.builtin.command: ip -j link show
      register: links
      changed_when: false
    - name: Forwards applied inside the namespace
      hypervisor.network.port_forward:
        config:
          - {host_port: 8080, destination: 10.0.0.2, destination_port: 80}
        persist: false
        lock_file: "{{ lock_file }}"
      register: forward
    - name: Hand the results to the test
      ansible.builtin.copy:
        content: "{{ {'links': links.stdout | from_json | map(attribute='ifname') | list, 'forward': forward} | to_json }}"
        dest: "{{ out_file }}"
        mode: "0600"
      delegate_to: localhost
      vars:
        ansible_connection: local
"""


def run_playbook(tmp, inventory, extra):
    (tmp / "play.yml").write_text(PLAYBOOK)
    (tmp / "inv.json").write_text(json.dumps(inventory))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_HOST_KEY_CHECKING="0")
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp / "inv.json"), str(tmp / "play.yml"),
         "-e", json.dumps(extra)], capture_output=True, text=True, env=env, timeout=300, cwd=str(REPO), check=False)


def inventory(host, **hostvars):
    hostvars.setdefault("ansible_connection", "hypervisor.network.netns")
    hostvars.setdefault("ansible_python_interpreter", sys.executable)
    return {"all": {"hosts": {host: hostvars}}}


def test_tasks_run_inside_the_named_namespace(lab):
    hv = lab.ns("hv")
    other = lab.ns("other")
    lab.veth(hv, "uplink0", other, "eth0")
    out = lab.tmp / "out.json"
    proc = run_playbook(lab.tmp, inventory("hv1", ansible_netns_name=hv), {"out_file": str(out), "lock_file": str(lab.tmp / "lock")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert sorted(result["links"]) == ["lo", "uplink0"]
    assert result["forward"]["changed"] is True
    assert "hypervisor_network_port_forward" in lab.run(hv, ["nft", "list", "tables"]).stdout
    assert "hypervisor_network_port_forward" not in lab.run(other, ["nft", "list", "tables"]).stdout


def test_missing_namespace_is_a_clear_error(lab):
    proc = run_playbook(lab.tmp, inventory("ghost", ansible_netns_name="hn-no-such-ns"), {"out_file": "/dev/null", "lock_file": "/dev/null"})
    assert proc.returncode != 0
    assert "network namespace 'hn-no-such-ns' does not exist" in proc.stdout + proc.stderr
    assert "ip netns add hn-no-such-ns" in proc.stdout + proc.stderr
