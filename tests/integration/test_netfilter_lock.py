"""Issue 11 item 4: one lock over read -> plan -> apply. Two `merged` runs at once, each with a
forward of its own, must both be there afterwards: a run that read the table before the other
applied would write it back without the other's forward."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest
from netlab import COLLECTIONS, PYTHON, ensure_collection_link

ROUNDS = 20


def _start(lab, ns, args):
    """A module run in ``ns`` like lab.module, started and not waited for."""
    ensure_collection_link()
    argsfile = lab.tmp / ("args-%s.json" % uuid.uuid4().hex[:8])
    argsfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=False, _ansible_diff=False)}))
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    argv = ["ip", "netns", "exec", ns, PYTHON, "-m", "ansible_collections.hypervisor.network.plugins.modules.port_forward",
            str(argsfile)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _finish(proc):
    out, err = proc.communicate(timeout=300)
    result = json.loads(out) if out.strip() else {"failed": True, "msg": err}
    assert not result.get("failed"), result
    return result


@pytest.mark.parametrize("backend, drop_policy", [("nftables", False), ("iptables", False), ("nftables", True)])
def test_two_concurrent_merged_runs_keep_both_forwards(lab, backend, drop_policy):
    """With ``drop_policy`` the iptables FORWARD policy is DROP (as Docker sets it), so each run
    also writes our companion chain HNET-PFA-FORWARD and its jump: the case where a lost round
    left two jumps behind and `state: deleted` then failed with CHAIN_DEL busy."""
    hv = lab.ns("hv")
    if drop_policy:
        lab.run(hv, ["iptables", "-P", "FORWARD", "DROP"])
    common = {"state": "merged", "backend": backend, "persist": False, "lock_file": str(lab.tmp / "lock"),
              "coexistence": "open" if drop_policy else "ignore"}
    lost = []
    for round_no in range(ROUNDS):
        first = {"host_port": str(10000 + round_no), "destination": "10.0.0.2"}
        second = {"host_port": str(20000 + round_no), "destination": "10.0.0.3"}
        procs = [_start(lab, hv, dict(common, config=[item])) for item in (first, second)]
        for proc in procs:
            _finish(proc)
        gathered = lab.module(hv, "port_forward", dict(common, state="gathered"))["gathered"]
        ports = {item["host_port"] for item in gathered}
        if not {first["host_port"], second["host_port"]} <= ports:
            lost.append(round_no)
    assert lost == [], "rounds that lost a forward: %s of %d" % (lost, ROUNDS)
    if drop_policy:
        saved = lab.run(hv, ["iptables-save", "-t", "filter"]).stdout
        assert saved.count("-A FORWARD -j HNET-PFA-FORWARD") == 1, saved
    # And the table can be emptied afterwards (a lost round left duplicate jumps behind before).
    lab.module(hv, "port_forward", dict(common, state="deleted", config=[]))
    assert lab.module(hv, "port_forward", dict(common, state="gathered"))["gathered"] == []
    assert "HNET-" not in lab.run(hv, ["iptables-save"]).stdout
