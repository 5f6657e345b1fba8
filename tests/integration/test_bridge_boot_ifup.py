# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ifupdown stanza at boot, where a guest's port does not exist yet: real ifup brings the
bridge up with its address and the ports that are there (issue 12: one missing guest port used to
abort the whole stanza). The full reboot is tests/hostlab/test_host_bridge_reboot.py."""

from __future__ import annotations

from bridge_lab import addresses, guests, link, persist_dirs


def test_a_guest_port_absent_at_boot_does_not_stop_the_bridge(lab):
    source = lab.ns("src")
    guests(lab, source, 2, prefix="s")
    args = dict(name="br0", ports=[{"name": "vnet0"}, {"name": "vnet1"}], addresses=["10.20.0.1/24"], persist="ifupdown", **persist_dirs(lab))
    (stanza,) = lab.module(source, "bridge", args)["files"]

    # The booted host: vnet0 is there, the guest behind vnet1 has not started.
    hv = lab.ns("hv")
    (guest,) = guests(lab, hv, 1)
    state = ["--state-dir", str(lab.tmp / "ifstate"), "--no-scripts", "-i", stanza]
    lab.run(hv, ["ifup"] + state + ["br0"])
    assert link(lab, hv, "vnet0")["master"] == "br0"
    assert addresses(lab, hv, "br0") == ["10.20.0.1/24"]
    lab.serve_tcp(hv, 7202, address="10.20.0.1")
    assert lab.connect(guest, "10.20.0.1", 7202) == "peer=10.20.0.11"
    lab.run(hv, ["ifdown"] + state + ["br0"])
    assert link(lab, hv, "br0") is None
