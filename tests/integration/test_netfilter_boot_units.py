"""Boot persistence of masquerade and port_forward: our own oneshot units, never the
distribution's nftables.service (issue 11, items 6 and 3).

A boot is simulated by running the unit's ExecStart=, read the way systemd reads it
(systemd_exec.py), in a fresh namespace. All paths point into the test's temp dir.
"""

from __future__ import annotations

import os

import pytest
import systemd_exec
from netfilter_topology import BACKENDS, G1, build, persist_args

WEB = {"host_port": "8080", "destination": G1, "destination_port": "80", "comment": "guest web"}
MASQ = [{"source": "10.0.0.0/24", "out_interface": "eth0"}]
FOREIGN = """table inet foreign {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 22 accept
  }
}
table ip nat {
  chain POSTROUTING {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "eth9" masquerade
  }
}
"""
USER_CONF = "#!/usr/sbin/nft -f\n# the administrator's own\nflush ruleset\n\ntable inet filter {\n}\n"


def apply(lab, topo, module, backend, config, **extra):
    args = dict(BACKENDS[backend], config=config, **dict(persist_args(lab), **extra))
    return lab.module(topo.hv, module, args)


def tables(lab, ns):
    return sorted(lab.run(ns, ["nft", "list", "tables"]).stdout.split("\n"))


def test_nft_unit_loads_only_our_tables_and_leaves_nftables_conf_and_service_alone(lab):
    topo = build(lab)
    conf = lab.tmp / "nftables.conf"
    conf.write_text(USER_CONF)
    os.chmod(conf, 0o640)
    forwarded = apply(lab, topo, "port_forward", "nftables", [WEB])
    apply(lab, topo, "masquerade", "nftables", MASQ)

    units = lab.tmp / "units"
    unit = units / "hypervisor-network-nftables.service"
    assert forwarded["persisted"]["loader"] == str(unit)
    assert (units / "multi-user.target.wants" / unit.name).resolve() == unit
    assert conf.read_text() == USER_CONF and (conf.stat().st_mode & 0o777) == 0o640, "nftables.conf untouched"
    assert not any("nftables.service" == p.name for p in units.rglob("*")), "the distribution's unit is not enabled"
    text = unit.read_text()
    directives = [line for line in text.splitlines() if not line.startswith("#")]
    assert not [line for line in directives if line.startswith("ExecStop") or "flush" in line]
    after = [line for line in text.splitlines() if line.startswith("After=")][0].split("=", 1)[1].split()
    assert {"libvirtd.service", "docker.service", "firewalld.service", "nftables.service"} <= set(after)

    fresh = lab.ns("boot")
    lab.run(fresh, ["nft", "-f", "-"], input=FOREIGN)
    foreign_before = [lab.run(fresh, ["nft", "list", "table"] + t.split()[1:]).stdout
                      for t in tables(lab, fresh) if t]
    loaded = lab.run(fresh, systemd_exec.exec_start(text), check=False)
    assert loaded.returncode == 0, loaded.stderr
    assert [t for t in tables(lab, fresh) if t] == [
        "table inet foreign", "table inet hypervisor_network_masquerade",
        "table inet hypervisor_network_port_forward", "table ip nat"]
    foreign_after = [lab.run(fresh, ["nft", "list", "table"] + t.split()[1:]).stdout
                     for t in ("table inet foreign", "table ip nat")]
    assert foreign_after == foreign_before, "a table loaded before the unit stays as it was"
    gathered = dict(BACKENDS["nftables"], state="gathered", **persist_args(lab))
    assert lab.module(fresh, "port_forward", gathered)["gathered"] == forwarded["after"]


@pytest.mark.parametrize("backend", ["nftables", "iptables-nft"])
def test_unit_fails_when_a_file_does_not_load_and_loads_the_others(lab, backend):
    """No `; true`: a file that does not load makes the unit fail (systemctl shows it), and
    the other files are still loaded."""
    topo = build(lab)
    applied = apply(lab, topo, "masquerade", backend, MASQ)
    broken = "hypervisor-network-zz-broken.nft" if backend == "nftables" else "hypervisor-network-zz-broken.nft-v4"
    (lab.tmp / "persist" / broken).write_text("this is no rule set\n")
    fresh, loaded = systemd_exec.boot(lab, applied["persisted"]["loader"])
    assert loaded.returncode != 0, "a failed load must fail the unit"
    gathered = dict(BACKENDS[backend], state="gathered", **persist_args(lab))
    assert lab.module(fresh, "masquerade", gathered)["gathered"] == applied["after"]


@pytest.mark.parametrize("backend", ["nftables", "iptables-nft", "iptables-legacy"])
def test_persist_dir_with_space_quotes_dollar_and_percent_boots(lab, backend):
    topo = build(lab)
    odd = lab.tmp / "boot dir 'single' \"double\" $HOME 100%"
    applied = apply(lab, topo, "masquerade", backend, MASQ, persist_dir=str(odd))
    assert applied["persisted"]["file"]
    fresh, loaded = systemd_exec.boot(lab, applied["persisted"]["loader"])
    assert loaded.returncode == 0, loaded.stderr
    gathered = dict(BACKENDS[backend], state="gathered", **persist_args(lab))
    assert lab.module(fresh, "masquerade", gathered)["gathered"] == applied["after"]


def test_persist_dir_with_a_newline_is_refused_before_anything_changes(lab):
    topo = build(lab)
    before = lab.run(topo.hv, ["nft", "list", "ruleset"]).stdout
    args = dict(BACKENDS["nftables"], config=MASQ, **dict(persist_args(lab), persist_dir=str(lab.tmp / "a\nb")))
    failed = lab.module(topo.hv, "masquerade", args, expect_fail=True)
    assert failed["msg"].startswith("persist_dir: ") and "a\\nb" in failed["msg"]
    assert lab.run(topo.hv, ["nft", "list", "ruleset"]).stdout == before
    assert not (lab.tmp / "units").exists()


def test_migration_removes_only_the_include_an_earlier_version_added(lab):
    """An earlier version appended an include to nftables.conf, forced it to 0755 and enabled
    nftables.service. The include goes, every other byte stays; the service stays enabled (no
    record says whether it was enabled before) and the result says so."""
    topo = build(lab)
    args = persist_args(lab)
    conf = lab.tmp / "nftables.conf"
    old_include = 'include "%s/hypervisor-network-*.nft"\n' % args["persist_dir"]
    conf.write_text(USER_CONF + old_include)
    os.chmod(conf, 0o755)
    wants = lab.tmp / "units" / "sysinit.target.wants"
    wants.mkdir(parents=True)
    vendor = lab.tmp / "lib" / "nftables.service"
    vendor.parent.mkdir()
    vendor.write_text("[Service]\nExecStop=/usr/sbin/nft flush ruleset\n")
    (wants / "nftables.service").symlink_to(vendor)

    migrated = apply(lab, topo, "masquerade", "nftables", MASQ)
    assert conf.read_text() == USER_CONF
    assert conf.stat().st_mode & 0o777 == 0o755
    assert (wants / "nftables.service").resolve() == vendor, "nftables.service stays enabled"
    assert "nftables.service stays enabled" in str(migrated.get("warnings")), migrated
    assert "write %s" % conf in migrated["commands"]

    again = apply(lab, topo, "masquerade", "nftables", MASQ)
    assert again["changed"] is False and not again.get("warnings")
    assert conf.read_text() == USER_CONF
