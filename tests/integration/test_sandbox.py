"""The sandbox lab behind make demo and the Molecule scenarios: it builds, and teardown leaves nothing.

The full guest checks run in Molecule (make molecule); these are the fast guarantees around it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SANDBOX = REPO / "playbooks" / "sandbox" / "sandbox.py"


def sandbox(*args, check=True):
    return subprocess.run([sys.executable, str(SANDBOX)] + list(args), capture_output=True, text=True,
                          check=check, timeout=300)


def namespaces(lab):
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.startswith("hnsb%s-" % lab))


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_bridge_lab_builds_and_leaves_nothing():
    lab = "p" + uuid.uuid4().hex[:5]
    try:
        sandbox("up", "--lab", lab, "--kvm", "0", "--bridge", "1", "--qemu-guests", "0")
        state = json.loads((REPO / "build" / "sandbox" / lab / "state.json").read_text())
        inventory = json.loads(sandbox("inventory", "--lab", lab).stdout)
        hv = "hnsb%s-bridge1" % lab
        assert inventory["bridge_hosts"]["hosts"] == [hv]
        assert inventory["_meta"]["hostvars"][hv]["ansible_netns_name"] == hv
        assert namespaces(lab) == sorted(["hnsb%s-up" % lab, hv, hv + "-g1"])
        resolv = Path("/etc/netns") / hv / "resolv.conf"
        assert resolv.read_text().splitlines()[0] == "nameserver 198.51.100.53"
        # the hypervisor reaches upstream's public DNS and HTTP through its uplink, nothing else
        out = subprocess.run(["ip", "netns", "exec", hv, "dig", "@203.0.113.53", "www.example.com", "+short"],
                             capture_output=True, text=True, timeout=30, check=False).stdout
        assert out.strip() == "203.0.113.80"
        refused = subprocess.run(["ip", "netns", "exec", hv, "dig", "@198.51.100.53", "www.example.com"],
                                 capture_output=True, text=True, timeout=30, check=False).stdout
        assert "status: REFUSED" in refused
        pids = state["pids"]
        assert pids and all(alive(pid) for pid in pids)
    finally:
        sandbox("down", "--lab", lab, check=False)
    assert namespaces(lab) == []
    assert not any(p.name.startswith("hnsb%s" % lab) for p in Path("/etc/netns").glob("*")) if Path("/etc/netns").exists() else True
    assert not any(alive(pid) for pid in pids)
    assert not (REPO / "build" / "sandbox" / lab).exists()


def test_down_of_a_lab_that_does_not_exist_is_harmless():
    sandbox("down", "--lab", "nolab")
    assert json.loads(sandbox("inventory", "--lab", "nolab").stdout)["sandbox"] == {"children": []}


def test_role_readmes_list_every_argument():
    for role in ("kvm_host", "bridge_host"):
        spec = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())
        readme = (REPO / "roles" / role / "README.md").read_text()
        for name in spec["argument_specs"]["main"]["options"]:
            assert "| `%s` |" % name in readme, (role, name)
        defaults = yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text())
        assert set(defaults) <= set(spec["argument_specs"]["main"]["options"]), (role, set(defaults) - set(spec["argument_specs"]["main"]["options"]))
        assert all(name.startswith(role + "_") for name in defaults)


def test_site_yml_applies_only_roles_that_exist():
    plays = yaml.safe_load((REPO / "playbooks" / "site.yml").read_text())
    names = []
    for play in plays:
        names += [role["role"] for role in play.get("roles", [])]
        names += [task["ansible.builtin.include_role"]["name"] for task in play.get("tasks", [])
                  if "ansible.builtin.include_role" in task]
    assert "hypervisor.network.kvm_host" in names and "hypervisor.network.bridge_host" in names
    for name in names:
        assert (REPO / "roles" / name.split(".")[-1] / "tasks" / "main.yml").exists(), name
    assert os.path.exists(REPO / "extensions" / "molecule" / "kvm_host" / "molecule.yml")


def test_bridge_host_refuses_a_newline_in_dnsmasq_settings(tmp_path):
    """Nothing user-given reaches dnsmasq's configuration with a newline; the role stops first."""
    ns = "hnsbv" + uuid.uuid4().hex[:6]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        inventory = tmp_path / "inv.yml"
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {ns: {
            "ansible_connection": "hypervisor.network.netns",
            "ansible_python_interpreter": sys.executable}}}}))
        play = tmp_path / "play.yml"
        play.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "roles": [{
            "role": "hypervisor.network.bridge_host",
            "vars": {"bridge_host_install_packages": False, "bridge_host_service_manager": "none",
                     "bridge_host_dnsmasq": [{"bridge": "br0", "options": ["log-queries\nconf-file=/etc/evil"]}]}}]}]))
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / "build" / "collections"),
                   ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   PATH="%s:%s" % (Path(sys.executable).parent, os.environ["PATH"]))
        proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(play)],
                              capture_output=True, text=True, env=env, timeout=300, check=False)
        assert proc.returncode != 0
        assert "no value may contain a newline" in proc.stdout
        assert "Set IP forwarding" not in proc.stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
