# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Persistent bridge configuration written to the test's temp dirs (never /etc), checked against
golden files (regenerate: HNET_REGEN_GOLDEN=1), and the ifupdown stanza brought up by real ifup."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from bridge_lab import addresses, guests, link, persist_dirs

GOLDEN = Path(__file__).resolve().parent / "golden" / "bridge"
DIR_OPTION = {"networkd": "networkd_dir", "networkmanager": "networkmanager_dir", "ifupdown": "ifupdown_dir"}


def uplinked(lab):
    """hv: uplink eno1 (10.9.0.2/24, fd00:9::2/64, default via 10.9.0.1) and a guest on vnet0."""
    hv, up = lab.ns("hv"), lab.ns("up")
    lab.veth(hv, "eno1", up, "eth0")
    lab.addr(up, "eth0", "10.9.0.1/24")
    lab.addr(hv, "eno1", "10.9.0.2/24")
    lab.addr(hv, "eno1", "fd00:9::2/64")
    lab.route(hv, "default", "via", "10.9.0.1")
    guests(lab, hv, 1, subnet="10.9.0")
    return hv


def files_in(directory):
    return dict((str(p.relative_to(directory)), p.read_text()) for p in sorted(Path(directory).rglob("*")) if p.is_file())


@pytest.mark.parametrize("persister", sorted(DIR_OPTION))
def test_files_match_golden_and_follow_the_ports(lab, persister):
    hv = uplinked(lab)
    dirs = persist_dirs(lab)
    directory = dirs[DIR_OPTION[persister]]
    args = dict(name="br0", ports=[{"name": "eno1"}, {"name": "vnet0"}], stp=True, forward_delay=2, mtu=1400, persist=persister, **dirs)

    result = lab.module(hv, "bridge", args, diff=True)
    assert result["persist"] == persister and result["files"] == sorted(os.path.join(directory, f) for f in files_in(directory))
    assert "write %s" % result["files"][0] in result["commands"]
    assert any(d["after_header"] == result["files"][0] for d in result["diff"])
    written = files_in(directory)
    if os.environ.get("HNET_REGEN_GOLDEN"):
        for name, text in written.items():
            (GOLDEN / persister / name).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / persister / name).write_text(text)
    assert written == files_in(GOLDEN / persister)
    if persister == "networkmanager":
        assert all(oct(os.stat(f).st_mode & 0o777) == "0o600" for f in result["files"])

    again = lab.module(hv, "bridge", args)
    assert again["changed"] is False and again["commands"] == []

    fewer = lab.module(hv, "bridge", dict(args, ports=[{"name": "eno1"}]))
    assert all("vnet0" not in name or persister == "ifupdown" for name in files_in(directory))
    assert any(c.startswith("remove ") or c.startswith("write ") for c in fewer["commands"])

    gone = lab.module(hv, "bridge", dict(args, state="absent"))
    assert gone["files"] == [] and files_in(directory) == {}


def test_persist_auto_says_which_manager_it_used(lab):
    hv = lab.ns("hv")
    guests(lab, hv, 1)
    result = lab.module(hv, "bridge", dict(name="br0", ports=[{"name": "vnet0"}], persist="auto", **persist_dirs(lab)))
    assert result["persist_reason"].startswith("persist: auto found ")
    assert result["persist"] in ("networkd", "networkmanager", "ifupdown", "none")


def test_ifupdown_stanza_is_brought_up_by_ifup(lab):
    source = lab.ns("src")
    guests(lab, source, 1, prefix="s")
    dirs = persist_dirs(lab)
    args = dict(name="br0", ports=[{"name": "vnet0"}], stp=True, forward_delay=3, mtu=1450,
                addresses=["10.20.0.1/24", "fd00:20::1/64"], persist="ifupdown", **dirs)
    (stanza,) = lab.module(source, "bridge", args)["files"]

    # A fresh "booted" host with the same interfaces, configured by ifup alone.
    hv = lab.ns("hv")
    (guest,) = guests(lab, hv, 1)
    state = ["--state-dir", str(lab.tmp / "ifstate"), "--no-scripts", "-i", stanza]
    lab.run(hv, ["ifup"] + state + ["br0"])
    bridge = link(lab, hv, "br0")
    data = bridge["linkinfo"]["info_data"]
    assert (bridge["mtu"], data["stp_state"], data["forward_delay"]) == (1450, 1, 300)
    assert link(lab, hv, "vnet0")["master"] == "br0"
    assert addresses(lab, hv, "br0") == ["10.20.0.1/24", "fd00:20::1/64"]
    deadline = time.monotonic() + 20  # with STP on the port listens and learns 2 x 3 s first
    while link(lab, hv, "vnet0")["linkinfo"]["info_slave_data"]["state"] != "forwarding" and time.monotonic() < deadline:
        time.sleep(0.2)
    lab.serve_tcp(hv, 7201, address="10.20.0.1")
    assert lab.connect(guest, "10.20.0.1", 7201) == "peer=10.20.0.11"

    lab.run(hv, ["ifdown"] + state + ["br0"])
    assert link(lab, hv, "br0") is None


def test_a_port_persisted_for_another_bridge_is_refused(lab):
    hv = lab.ns("hv")
    guests(lab, hv, 1)
    dirs = persist_dirs(lab)
    lab.module(hv, "bridge", dict(name="bra", ports=[{"name": "vnet0"}], persist="networkd", **dirs))
    # As after a reboot: the port is back in no bridge and carries no runtime mark.
    lab.run(hv, ["ip", "link", "del", "dev", "bra"])
    lab.run(hv, ["ip", "link", "set", "dev", "vnet0", "alias", ""])
    refused = lab.module(hv, "bridge", dict(name="brb", ports=[{"name": "vnet0"}], persist="networkd", **dirs), expect_fail=True)
    assert refused["field"] == "ports[0].name" and "claimed by bridge bra" in refused["msg"]
    assert link(lab, hv, "brb") is None and not (lab.tmp / "networkd" / "10-hnet-brb.netdev").exists()
