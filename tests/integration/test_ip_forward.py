# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hypervisor.network.ip_forward on real kernels, inside namespaces these tests create."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.hypervisor.network.plugins.modules import ip_forward as ip_forward_module

V4 = "net.ipv4.ip_forward"
V6 = "net.ipv6.conf.all.forwarding"
NF4 = "net.bridge.bridge-nf-call-iptables"
NF6 = "net.bridge.bridge-nf-call-ip6tables"
NFARP = "net.bridge.bridge-nf-call-arptables"
HEADER = "# Managed by hypervisor.network (ip_forward module). Local changes are overwritten.\n"


def files(lab):
    """Persistence paths under the test's temp directory, never the real /etc."""
    return dict(sysctl_file=str(lab.tmp / "sysctl.d" / "90-hypervisor-network.conf"),
                modules_load_file=str(lab.tmp / "modules-load.d" / "hypervisor-network.conf"))


def value(lab, ns, key):
    return int(lab.run(ns, ["sysctl", "-n", key]).stdout.strip())


def values(lab, ns, keys):
    return {key: value(lab, ns, key) for key in keys}


def has_bridge_netfilter(lab, ns):
    return lab.run(ns, ["test", "-e", "/proc/sys/net/bridge/bridge-nf-call-iptables"], check=False).returncode == 0


def test_check_mode_then_apply_then_nothing_to_do(lab):
    hv = lab.ns("hv")
    args = dict(files(lab), ipv4=True, ipv6=True)
    assert values(lab, hv, [V4, V6]) == {V4: 0, V6: 0}

    dry = lab.module(hv, "ip_forward", args, check_mode=True, diff=True)
    assert dry["changed"] is True
    assert dry["commands"] == ["sysctl -w %s=1" % V4, "sysctl -w %s=1" % V6, "write %s" % args["sysctl_file"]]
    assert dry["before"] == {V4: 0, V6: 0} and dry["after"] == {V4: 1, V6: 1}
    assert values(lab, hv, [V4, V6]) == {V4: 0, V6: 0}, "check mode changed the kernel"
    assert not os.path.exists(args["sysctl_file"]), "check mode wrote the file"

    done = lab.module(hv, "ip_forward", args, diff=True)
    assert done["changed"] is True
    assert done["commands"] == dry["commands"], "check mode and apply must be the same plan"
    assert done["after"] == {V4: 1, V6: 1}
    assert done["sysctl_file"] == args["sysctl_file"]
    assert done["modules_load_file"] is None
    assert values(lab, hv, [V4, V6]) == {V4: 1, V6: 1}
    expected_file = HEADER + "net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 1\n"
    with open(args["sysctl_file"]) as handle:
        assert handle.read() == expected_file
    file_diff = [d for d in done["diff"] if d["before_header"] == args["sysctl_file"]]
    assert file_diff == [dict(before_header=args["sysctl_file"], after_header=args["sysctl_file"],
                              before="", after=expected_file)]
    assert done["diff"][0]["before"] == "%s = 0\n%s = 0\n" % (V4, V6)
    assert done["diff"][0]["after"] == "%s = 1\n%s = 1\n" % (V4, V6)

    again = lab.module(hv, "ip_forward", args)
    assert again["changed"] is False
    assert again["commands"] == []
    assert again["before"] == {V4: 1, V6: 1} and "after" not in again  # `after` only with a change
    again_check = lab.module(hv, "ip_forward", args, check_mode=True)
    assert again_check["changed"] is False and again_check["commands"] == []


def test_settings_stay_in_their_namespace(lab):
    hv, other = lab.ns("hv"), lab.ns("other")
    if not (has_bridge_netfilter(lab, hv) and has_bridge_netfilter(lab, other)):
        pytest.skip("bridge-nf-call-* is not per network namespace on this kernel")
    keys = [V4, NF4, NF6, NFARP]
    untouched = values(lab, other, keys)
    args = dict(files(lab), ipv4=True, bridge_nf_call_iptables=not untouched[NF4],
                bridge_nf_call_ip6tables=not untouched[NF6], bridge_nf_call_arptables=not untouched[NFARP])
    result = lab.module(hv, "ip_forward", args)
    assert result["changed"] is True
    assert values(lab, hv, keys) == {V4: 1, NF4: int(not untouched[NF4]), NF6: int(not untouched[NF6]),
                                     NFARP: int(not untouched[NFARP])}
    assert values(lab, other, keys) == untouched


def test_bridge_nf_call_on_persists_br_netfilter(lab):
    hv = lab.ns("hv")
    if has_bridge_netfilter(lab, hv):
        lab.sysctl(hv, NF4, 0)  # start from off whatever the kernel default is
    args = dict(files(lab), ipv4=True, bridge_nf_call_iptables=True)
    result = lab.module(hv, "ip_forward", args)
    assert value(lab, hv, NF4) == 1
    assert result["after"] == {V4: 1, NF4: 1}
    assert result["modules_load_file"] == args["modules_load_file"]
    with open(args["modules_load_file"]) as handle:
        assert handle.read() == HEADER + "br_netfilter\n"
    # bridged traffic no longer needs the module at boot: its modules-load file goes away
    result = lab.module(hv, "ip_forward", dict(args, bridge_nf_call_iptables=False))
    assert value(lab, hv, NF4) == 0
    assert "remove %s" % args["modules_load_file"] in result["commands"]
    assert not os.path.exists(args["modules_load_file"])
    assert result["modules_load_file"] is None


def test_absent_turns_off_and_removes_the_files(lab):
    hv = lab.ns("hv")
    paths = files(lab)
    bridge = has_bridge_netfilter(lab, hv)
    on = dict(paths, ipv4=True, ipv6=True, **(dict(bridge_nf_call_ip6tables=True) if bridge else {}))
    lab.module(hv, "ip_forward", on)
    # absent on its own finds what the module turned on in its file
    off = dict(paths, state="absent")
    dry = lab.module(hv, "ip_forward", off, check_mode=True)
    assert dry["changed"] is True
    assert value(lab, hv, V4) == 1 and os.path.exists(paths["sysctl_file"])
    gone = lab.module(hv, "ip_forward", off)
    assert gone["changed"] is True
    managed = [V4, V6] + ([NF6] if bridge else [])
    assert gone["after"] == {key: 0 for key in managed}
    assert values(lab, hv, managed) == {key: 0 for key in managed}
    assert not os.path.exists(paths["sysctl_file"]) and not os.path.exists(paths["modules_load_file"])
    assert gone["sysctl_file"] is None
    again = lab.module(hv, "ip_forward", off)
    assert again["changed"] is False and again["commands"] == []


def test_the_file_sets_the_same_values_at_boot(lab):
    """What `sysctl -p FILE` (as systemd-sysctl does at boot) gives a fresh namespace equals what
    the module set at runtime."""
    hv, fresh = lab.ns("hv"), lab.ns("boot")
    paths = files(lab)
    args = dict(paths, ipv4=True, ipv6=True)
    if has_bridge_netfilter(lab, hv):
        args.update(bridge_nf_call_iptables=False, bridge_nf_call_ip6tables=True, bridge_nf_call_arptables=False)
    result = lab.module(hv, "ip_forward", args)
    keys = sorted(result["after"])
    lab.run(fresh, ["sysctl", "-p", paths["sysctl_file"]])
    assert values(lab, fresh, keys) == result["after"] == values(lab, hv, keys)


def test_forwarding_really_forwards(lab):
    """left -- router -- right: ping across the router fails before and works after."""
    left, router, right = lab.ns("left"), lab.ns("rtr"), lab.ns("right")
    lab.veth(left, "eth0", router, "left0")
    lab.veth(right, "eth0", router, "right0")
    lab.addr(left, "eth0", "10.71.1.2/24")
    lab.addr(router, "left0", "10.71.1.1/24")
    lab.addr(right, "eth0", "10.71.2.2/24")
    lab.addr(router, "right0", "10.71.2.1/24")
    lab.addr(left, "eth0", "2001:db8:71:1::2/64")
    lab.addr(router, "left0", "2001:db8:71:1::1/64")
    lab.addr(right, "eth0", "2001:db8:71:2::2/64")
    lab.addr(router, "right0", "2001:db8:71:2::1/64")
    lab.route(left, "default", "via", "10.71.1.1")
    lab.route(right, "default", "via", "10.71.2.1")
    lab.route(left, "default", "via", "2001:db8:71:1::1")
    lab.route(right, "default", "via", "2001:db8:71:2::1")

    # TCP through lab.serve_tcp rather than ping: no extra package, and the service names the
    # peer, which proves the packet was routed (not answered by the router itself).
    lab.serve_tcp(right, 7171, address="::")
    lab.serve_tcp(router, 7171, address="::")

    def reach(target):
        return lab.connect(left, target, 7171, timeout=1.5)

    assert reach("10.71.1.1") and reach("2001:db8:71:1::1"), "the link to the router itself must work"
    assert reach("10.71.2.2") is None, "IPv4 was forwarded before the module ran"
    assert reach("2001:db8:71:2::2") is None, "IPv6 was forwarded before the module ran"
    lab.module(router, "ip_forward", dict(files(lab), ipv4=True, ipv6=True))
    assert reach("10.71.2.2") == "peer=::ffff:10.71.1.2"
    assert reach("2001:db8:71:2::2") == "peer=2001:db8:71:1::2"


@pytest.mark.parametrize("bad", [
    dict(ipv4="maybe"),
    dict(state="enabled"),
    dict(sysctl_file="relative.conf"),
    dict(sysctl_file="/tmp/not-read-at-boot"),
    dict(ipv4=None),
    dict(colour="red"),
])
def test_bad_input_is_refused_before_anything_changes(lab, bad):
    hv = lab.ns("hv")
    args = dict(files(lab), **bad)
    result = lab.module(hv, "ip_forward", args, expect_fail=True)
    assert result["msg"]
    assert value(lab, hv, V4) == 0
    assert not os.path.exists(files(lab)["sysctl_file"])


def test_the_documented_examples_run(lab):
    hv = lab.ns("hv")
    tasks = yaml.safe_load(ip_forward_module.EXAMPLES)
    for task in tasks:
        args = dict(task["hypervisor.network.ip_forward"], **files(lab))
        if not has_bridge_netfilter(lab, hv) and any(k.startswith("bridge_nf") for k in args):
            continue
        lab.module(hv, "ip_forward", args)
    assert value(lab, hv, V4) == 0  # the last example turns everything off again
    assert not os.path.exists(files(lab)["sysctl_file"])


# -- keys, not files (issue 11 item 5): other tasks' keys and other tools' lines survive --------

def read(path):
    with open(path) as handle:
        return handle.read()


def test_two_tasks_sharing_the_file_both_persist(lab):
    """bridge_host writes bridge-nf-call-iptables=1 and br_netfilter; a later task that names only
    ipv4 (kvm_host style) keeps both, and the modules-load file stays."""
    hv = lab.ns("hv")
    paths = files(lab)
    if has_bridge_netfilter(lab, hv):
        lab.sysctl(hv, NF4, 0)
    lab.module(hv, "ip_forward", dict(paths, ipv4=True, bridge_nf_call_iptables=True))  # bridge_host's defaults
    first = read(paths["sysctl_file"])
    assert first == HEADER + "net.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1\n"
    only_ipv4 = lab.module(hv, "ip_forward", dict(paths, ipv4=True))
    assert only_ipv4["changed"] is False and only_ipv4["commands"] == []
    assert read(paths["sysctl_file"]) == first
    assert read(paths["modules_load_file"]) == HEADER + "br_netfilter\n"
    later = lab.module(hv, "ip_forward", dict(paths, ipv4=True, ipv6=True))
    assert later["changed"] is True
    assert read(paths["sysctl_file"]) == first + "net.ipv6.conf.all.forwarding = 1\n"
    assert read(paths["modules_load_file"]) == HEADER + "br_netfilter\n"
    assert "remove %s" % paths["modules_load_file"] not in later["commands"]
    assert later["modules_load_file"] == paths["modules_load_file"], "the result must say br_netfilter is still loaded at boot"
    # and what boot would apply from the shared file is both tasks' settings
    boot = lab.ns("boot")
    lab.run(boot, ["modprobe", "br_netfilter"], check=False)
    lab.run(boot, ["sysctl", "-p", paths["sysctl_file"]])
    assert values(lab, boot, [V4, V6, NF4]) == {V4: 1, V6: 1, NF4: 1}


def test_a_sysctl_conf_style_file_keeps_its_other_lines(lab):
    hv = lab.ns("hv")
    conf = lab.tmp / "etc" / "sysctl.conf"
    conf.parent.mkdir()
    before = "# /etc/sysctl.conf - tuned by hand\nvm.swappiness = 10\n\n#net.ipv4.ip_forward=1\nkernel.panic = 3\n"
    conf.write_text(before)
    os.chmod(conf, 0o600)
    args = dict(files(lab), sysctl_file=str(conf), ipv4=True)
    result = lab.module(hv, "ip_forward", args, diff=True)
    assert result["changed"] is True
    assert conf.read_text() == before + "net.ipv4.ip_forward = 1\n"
    assert os.stat(conf).st_mode & 0o777 == 0o600, "the file's mode was changed"
    assert lab.module(hv, "ip_forward", args)["changed"] is False
    # absent takes out its own line only, and the file stays
    gone = lab.module(hv, "ip_forward", dict(args, state="absent"))
    assert gone["changed"] is True and value(lab, hv, V4) == 0
    assert conf.read_text() == before


def test_a_foreign_modules_load_file_is_never_removed(lab):
    hv = lab.ns("hv")
    if not has_bridge_netfilter(lab, hv):
        lab.run(hv, ["modprobe", "br_netfilter"], check=False)
        if not has_bridge_netfilter(lab, hv):
            pytest.skip("no br_netfilter on this kernel")
    modules = lab.tmp / "modules-load.d" / "modules.conf"
    modules.parent.mkdir()
    theirs = "# /etc/modules: kernel modules to load at boot time.\nloop\n"
    modules.write_text(theirs)
    args = dict(files(lab), modules_load_file=str(modules))
    lab.module(hv, "ip_forward", dict(args, bridge_nf_call_iptables=True))
    assert modules.read_text().startswith(theirs) and modules.read_text().rstrip().endswith("br_netfilter")
    off = lab.module(hv, "ip_forward", dict(args, bridge_nf_call_iptables=False))
    assert "remove %s" % modules not in off["commands"]
    assert modules.read_text() == theirs
    lab.module(hv, "ip_forward", dict(args, bridge_nf_call_iptables=True))
    lab.module(hv, "ip_forward", dict(args, state="absent"))
    assert modules.read_text() == theirs


def test_absent_removes_only_our_keys(lab):
    """Lines added by hand to our own file survive absent, and so does the file then."""
    hv = lab.ns("hv")
    paths = files(lab)
    lab.module(hv, "ip_forward", dict(paths, ipv4=True, ipv6=True))
    with open(paths["sysctl_file"], "a") as handle:
        handle.write("# added by hand\nvm.swappiness = 10\n")
    gone = lab.module(hv, "ip_forward", dict(paths, state="absent"))
    assert values(lab, hv, [V4, V6]) == {V4: 0, V6: 0}
    assert read(paths["sysctl_file"]) == HEADER + "# added by hand\nvm.swappiness = 10\n"
    assert "remove %s" % paths["sysctl_file"] not in gone["commands"]


def test_ipv4_null_leaves_ip_forward_alone(lab):
    """Regression: `ipv4: null` was refused ("NoneType ... cannot be converted to a bool")."""
    hv = lab.ns("hv")
    lab.sysctl(hv, V4, 1)
    result = lab.module(hv, "ip_forward", dict(files(lab), ipv4=None, ipv6=True))
    assert result["before"] == {V6: 0} and result["after"] == {V6: 1}
    assert value(lab, hv, V4) == 1
    assert read(files(lab)["sysctl_file"]) == HEADER + "net.ipv6.conf.all.forwarding = 1\n"
    lab.sysctl(hv, V4, 0)
    assert lab.module(hv, "ip_forward", dict(files(lab), ipv4=None, ipv6=True))["changed"] is False
    assert value(lab, hv, V4) == 0
