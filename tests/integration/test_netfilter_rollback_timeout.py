"""rollback_timeout of masquerade and port_forward (issue 11, item 8), through ansible-playbook
with the netns connection plugin: applied, then confirmed over a fresh connection -> the rules
stay and are persisted; the confirmation cannot reach the host -> the host puts the previous
rules back by itself and nothing is persisted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from netfilter_topology import BACKENDS, G1, G2, build, persist_args
from netlab import COLLECTIONS, REPO

HERE = Path(__file__).resolve().parent
WEB = {"host_port": 8080, "destination": G1, "destination_port": 80}
SSH = {"host_port": 2222, "destination": G2, "destination_port": 22}

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: Forward with a rollback timeout
      hypervisor.network.port_forward:
        backend: "{{ backend }}"
        config: "{{ config }}"
        rollback_timeout: 3
        persist_dir: "{{ paths.persist_dir }}"
        nftables_conf: "{{ paths.nftables_conf }}"
        systemd_unit_dir: "{{ paths.systemd_unit_dir }}"
        lock_file: "{{ paths.lock_file }}"
      register: forward
      ignore_errors: true
    - name: Hand the result to the test
      ansible.builtin.copy:
        content: "{{ forward | to_json }}"
        dest: "{{ out_file }}"
        mode: "0600"
      delegate_to: localhost
      vars:
        ansible_connection: local
"""


def play(lab, ns, connection, config, backend="nftables"):
    out = lab.tmp / "out.json"
    (lab.tmp / "play.yml").write_text(PLAYBOOK)
    inventory = {"all": {"hosts": {"hv1": {"ansible_connection": connection, "ansible_netns_name": ns,
                                           "ansible_python_interpreter": sys.executable}}}}
    (lab.tmp / "inv.json").write_text(json.dumps(inventory))
    extra = {"out_file": str(out), "config": config, "paths": persist_args(lab),
             "backend": BACKENDS[backend]["backend"]}
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_CONNECTION_PLUGINS=str(HERE / "connection_plugins"),
               ANSIBLE_SSH_CONTROL_PATH_DIR=str(lab.tmp / "cp"))
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(lab.tmp / "inv.json"),
                           str(lab.tmp / "play.yml"), "-e", json.dumps(extra)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=str(REPO), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(predicate, limit=60.0):
    """Poll ``predicate``; the limit only keeps a broken run from hanging, it asserts no speed."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def gathered(lab, ns):
    args = dict(BACKENDS["nftables"], state="gathered", **persist_args(lab))
    return [(f["host_port"], f["destination"]) for f in lab.module(ns, "port_forward", args)["gathered"]]


def rollback_files(lab):
    return sorted(p.name.split(".rollback-")[1].split("-", 1)[0] + p.name[p.name.index(".json"):]
                  for p in lab.tmp.iterdir() if ".rollback-" in p.name)


def test_confirmed_over_a_fresh_connection_keeps_and_persists(lab):
    topo = build(lab)
    result = play(lab, topo.hv, "hypervisor.network.netns", [WEB])
    assert not result.get("failed"), result
    assert result["rollback"]["confirmed"] is True and result["rollback"]["pending"] is False
    assert result["persisted"]["file"], "the confirming run wrote the boot file"
    boot_file = Path(result["persisted"]["file"])
    assert "10.0.0.2" in boot_file.read_text()
    lab.track_pid(result["rollback"]["watcher_pid"])
    assert wait_until(lambda: not alive(result["rollback"]["watcher_pid"])), "the watcher ends once confirmed"
    assert gathered(lab, topo.hv) == [("8080", G1)], "confirmed rules stay after the watcher is gone"
    assert rollback_files(lab) == [], "no rollback state is left behind"


def test_unconfirmed_change_is_rolled_back_by_the_host(lab):
    topo = build(lab)
    lab.module(topo.hv, "port_forward", dict(BACKENDS["nftables"], config=[WEB], **persist_args(lab)))
    persist_dir = Path(persist_args(lab)["persist_dir"])
    boot_before = {p.name: p.read_text() for p in persist_dir.iterdir()}
    ruleset_before = lab.run(topo.hv, ["nft", "list", "ruleset"]).stdout

    result = play(lab, topo.hv, "lossy_netns", [SSH])
    assert result["failed"] and "could not be reached again to confirm" in result["msg"], result
    assert result["rollback"]["pending"] is True
    lab.track_pid(result["rollback"]["watcher_pid"])
    assert wait_until(lambda: not alive(result["rollback"]["watcher_pid"]))
    assert gathered(lab, topo.hv) == [("8080", G1)], "the earlier forward alone, as before the task"
    assert lab.run(topo.hv, ["nft", "list", "ruleset"]).stdout == ruleset_before
    assert {p.name: p.read_text() for p in persist_dir.iterdir()} == boot_before, "nothing was persisted"
    done = json.loads(Path(result["rollback"]["state"] + ".done").read_text())
    assert done["status"] == "rolled_back" and all(step["rc"] == 0 for step in done["steps"]), done


def test_late_confirmation_fails_and_keeps_the_previous_rules(lab):
    """A confirmation after the watcher put the previous rules back fails, and persists nothing."""
    topo = build(lab)
    args = dict(BACKENDS["iptables-nft"], config=[dict(WEB, host_port="8080", destination_port="80")],
                rollback_timeout=1, **persist_args(lab))
    armed = lab.module(topo.hv, "port_forward", args)
    assert armed["rollback"]["pending"] is True and armed["persisted"] is None
    lab.track_pid(armed["rollback"]["watcher_pid"])
    assert wait_until(lambda: not alive(armed["rollback"]["watcher_pid"]))
    confirm = dict(args, _rollback_confirm=armed["rollback"]["token"])
    del confirm["rollback_timeout"]
    late = lab.module(topo.hv, "port_forward", confirm, expect_fail=True)
    assert "came after rollback_timeout" in late["msg"]
    assert "HNET-PF" not in lab.run(topo.hv, ["iptables-nft-save"]).stdout
    assert not Path(persist_args(lab)["persist_dir"]).exists()


def test_a_pending_rollback_blocks_other_runs_of_the_module(lab):
    topo = build(lab)
    args = dict(BACKENDS["nftables"], config=[WEB], rollback_timeout=30, **persist_args(lab))
    armed = lab.module(topo.hv, "port_forward", args)
    lab.track_pid(armed["rollback"]["watcher_pid"])
    plain = dict(BACKENDS["nftables"], config=[SSH], **persist_args(lab))
    refused = lab.module(topo.hv, "port_forward", plain, expect_fail=True)
    assert "is not confirmed yet" in refused["msg"]
    confirm = dict(args, _rollback_confirm=armed["rollback"]["token"])
    del confirm["rollback_timeout"]
    confirmed = lab.module(topo.hv, "port_forward", confirm)
    assert confirmed["rollback"]["confirmed"] and confirmed["persisted"]["file"]
    assert wait_until(lambda: not alive(armed["rollback"]["watcher_pid"]))
    assert lab.module(topo.hv, "port_forward", plain)["changed"]


def test_confirmed_backend_switch_removes_the_old_backends_boot_files(lab):
    """Switching from iptables-nft to nftables with rollback_timeout: the first run removes the
    old chains but writes no boot file; the confirming run must still drop the old boot files,
    although no rule of the old backend is left by then."""
    topo = build(lab)
    lab.module(topo.hv, "port_forward", dict(BACKENDS["iptables-nft"], config=[WEB], **persist_args(lab)))
    persist_dir = Path(persist_args(lab)["persist_dir"])
    assert (persist_dir / "hypervisor-network-port-forward.nft-v4").exists()
    args = dict(BACKENDS["nftables"], config=[WEB], rollback_timeout=30, **persist_args(lab))
    armed = lab.module(topo.hv, "port_forward", args)
    lab.track_pid(armed["rollback"]["watcher_pid"])
    assert armed["removed_stale"] == ["port_forward (iptables-nft)"]
    assert (persist_dir / "hypervisor-network-port-forward.nft-v4").exists(), "nothing persisted before confirmation"
    confirm = dict(args, _rollback_confirm=armed["rollback"]["token"])
    del confirm["rollback_timeout"]
    confirmed = lab.module(topo.hv, "port_forward", confirm)
    assert "remove %s" % (persist_dir / "hypervisor-network-port-forward.nft-v4") in confirmed["commands"]
    assert sorted(p.name for p in persist_dir.iterdir()) == ["hypervisor-network-port-forward.nft"]
    assert wait_until(lambda: not alive(armed["rollback"]["watcher_pid"]))


def test_check_mode_with_rollback_timeout_arms_nothing(lab):
    topo = build(lab)
    before = lab.run(topo.hv, ["nft", "list", "ruleset"]).stdout
    args = dict(BACKENDS["nftables"], config=[WEB], rollback_timeout=5, **persist_args(lab))
    preview = lab.module(topo.hv, "port_forward", args, check_mode=True)
    assert preview["changed"] and preview["rollback"] == {"pending": False, "timeout": 5}
    assert lab.run(topo.hv, ["nft", "list", "ruleset"]).stdout == before
    assert rollback_files(lab) == [] and not (lab.tmp / "persist").exists()


def test_a_watcher_that_died_blocks_no_later_run(lab):
    """A watcher killed before its timeout (kill -9, out of memory) never puts anything back:
    its state file must not refuse every later run until the next reboot. The next run warns,
    removes it and goes on from the rules in place; a live watcher still blocks (above)."""
    topo = build(lab)
    args = dict(BACKENDS["nftables"], config=[WEB], rollback_timeout=600, **persist_args(lab))
    armed = lab.module(topo.hv, "port_forward", args)
    watcher = armed["rollback"]["watcher_pid"]
    lab.track_pid(watcher)
    os.kill(watcher, signal.SIGKILL)
    assert wait_until(lambda: not alive(watcher))
    assert Path(armed["rollback"]["state"]).exists(), "the dead watcher left its state file"

    plain = dict(BACKENDS["nftables"], config=[SSH], **persist_args(lab))
    checked = lab.module(topo.hv, "port_forward", plain, check_mode=True)
    assert checked["changed"] and Path(armed["rollback"]["state"]).exists(), "check mode removes nothing"
    result = lab.module(topo.hv, "port_forward", plain)
    assert result["changed"], result
    warnings = str(result.get("warnings"))
    assert "is gone without putting the previous rules back" in warnings and armed["rollback"]["state"] in warnings, warnings
    assert rollback_files(lab) == []
    assert sorted(gathered(lab, topo.hv)) == [("2222", G2), ("8080", G1)]
