# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hypervisor.network.sysctl on a real kernel, inside namespaces these tests create.

Only keys that belong to a network namespace are written here (net.ipv4.ip_local_port_range,
net.ipv4.conf.*, net.core.somaxconn, and net.core.rmem_max/wmem_max only where the kernel made
them per namespace), so this machine's own values never change; every test checks that.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.hypervisor.network.plugins.modules import sysctl as sysctl_module

RANGE = "net.ipv4.ip_local_port_range"
RP = "net.ipv4.conf.all.rp_filter"
SOMAXCONN = "net.core.somaxconn"
KEYS_HEADER = "# Managed by hypervisor.network (sysctl module). Local changes to its keys are overwritten.\n"
IPF_HEADER = "# Managed by hypervisor.network (ip_forward module). Local changes are overwritten.\n"


def sysctl_file(lab):
    return str(lab.tmp / "sysctl.d" / "90-hypervisor-network.conf")


def read(lab, ns, key):
    return " ".join(lab.run(ns, ["sysctl", "-n", key]).stdout.split())


def host_values(keys):
    """This machine's own values (the test runner's namespace), which must never change."""
    result = {}
    for key in keys:
        path = os.path.join("/proc/sys", *key.split("."))
        with open(path) as handle:
            result[key] = " ".join(handle.read().split())
    return result


@pytest.fixture
def host_untouched():
    keys = [RANGE, RP, SOMAXCONN, "net.core.rmem_max", "net.core.wmem_max"]
    before = host_values(keys)
    yield
    assert host_values(keys) == before, "a test changed this machine's own sysctls"


def test_module_documents_the_engine_defaults():
    assert "sysctl_file" in sysctl_module.DOCUMENTATION and "90-hypervisor-network.conf" in sysctl_module.DOCUMENTATION


def test_check_mode_then_apply_then_nothing_to_do(lab, host_untouched):
    hv = lab.ns("hv")
    path = sysctl_file(lab)
    start = {RANGE: read(lab, hv, RANGE), RP: read(lab, hv, RP), SOMAXCONN: read(lab, hv, SOMAXCONN)}
    wanted = {RANGE: "20000 50000", RP: "2" if start[RP] != "2" else "1", SOMAXCONN: "1000"}
    args = dict(values={RANGE: [20000, 50000], RP: int(wanted[RP]), SOMAXCONN: "1000"}, sysctl_file=path)

    dry = lab.module(hv, "sysctl", args, check_mode=True, diff=True)
    assert dry["changed"] is True
    assert dry["commands"] == ["sysctl -w %s=%s" % (key, wanted[key]) for key in (RANGE, RP, SOMAXCONN)] + ["write " + path]
    assert dry["before"] == start and dry["after"] == wanted
    assert {key: read(lab, hv, key) for key in start} == start, "check mode changed the kernel"
    assert not os.path.exists(path), "check mode wrote the file"

    done = lab.module(hv, "sysctl", args, diff=True)
    assert done["changed"] is True and done["commands"] == dry["commands"]
    assert done["after"] == wanted and done["sysctl_file"] == path
    assert {key: read(lab, hv, key) for key in start} == wanted
    expected = KEYS_HEADER + "".join("%s = %s\n" % (key, wanted[key]) for key in (RANGE, RP, SOMAXCONN))
    with open(path) as handle:
        assert handle.read() == expected
    assert done["diff"][0]["after"] == "".join("%s = %s\n" % (key, wanted[key]) for key in (RANGE, RP, SOMAXCONN))
    assert done["diff"][1] == dict(before_header=path, after_header=path, before="", after=expected)

    again = lab.module(hv, "sysctl", args)
    assert again["changed"] is False and again["commands"] == [] and "after" not in again
    assert again["before"] == wanted
    assert lab.module(hv, "sysctl", args, check_mode=True)["changed"] is False


@pytest.mark.parametrize("values, field, words", [
    ({"net.ipv4.no_such_key": 12345}, "values[net.ipv4.no_such_key]", "no such key"),
    ({SOMAXCONN: "plenty"}, "values[%s]" % SOMAXCONN, "an integer"),
    ({RANGE: 40000}, "values[%s]" % RANGE, "2 integer(s)"),
    ({RP: 1.5}, "values[%s]" % RP, "fractions"),
    ({"net..core": 1}, "values", "dotted words"),
    ({SOMAXCONN: "1\nnet.ipv4.ip_forward = 1"}, "values[%s]" % SOMAXCONN, "control characters"),
])
def test_bad_input_names_key_and_value_and_changes_nothing(lab, host_untouched, values, field, words):
    hv = lab.ns("hv")
    path = sysctl_file(lab)
    # a good key first: it must not be written either
    args = dict(values=dict({RP: 2}, **values), sysctl_file=path)
    rp = read(lab, hv, RP)
    result = lab.module(hv, "sysctl", args, expect_fail=True)
    assert result["msg"].startswith(field + ": "), result["msg"]
    assert words in result["msg"]
    bad_key, bad_value = next(iter(values.items()))
    assert repr(bad_key) in result["msg"] if field == "values" else (  # a malformed key is the value
        str(bad_value) in result["msg"] or repr(bad_value) in result["msg"])
    assert read(lab, hv, RP) == rp and not os.path.exists(path)


def test_a_value_the_kernel_refuses_puts_back_what_was_written(lab, host_untouched):
    """The shape is right (two integers) but the kernel refuses the order: the key written before
    it gets its old value again and no file is written."""
    hv = lab.ns("hv")
    path = sysctl_file(lab)
    before = {RP: read(lab, hv, RP), RANGE: read(lab, hv, RANGE)}
    new_rp = 2 if before[RP] != "2" else 1
    result = lab.module(hv, "sysctl", dict(values={RP: new_rp, RANGE: "40000 30000"}, sysctl_file=path),
                        expect_fail=True)
    assert result["msg"].startswith("values[%s]: the kernel refused '40000 30000'" % RANGE), result["msg"]
    assert "Invalid argument" in result["msg"]
    assert {key: read(lab, hv, key) for key in before} == before
    assert not os.path.exists(path)


def test_shares_a_file_with_ip_forward_and_keeps_foreign_lines(lab, host_untouched):
    hv = lab.ns("hv")
    path = sysctl_file(lab)
    os.makedirs(os.path.dirname(path))
    modules_load = str(lab.tmp / "modules-load.d" / "hv.conf")
    lab.module(hv, "ip_forward", dict(ipv4=True, sysctl_file=path, modules_load_file=modules_load))
    with open(path, "a") as handle:
        handle.write("# a note by hand\nvm.swappiness = 10\n")
    lab.module(hv, "sysctl", dict(values={RP: 2, RANGE: "20000 50000"}, sysctl_file=path))
    with open(path) as handle:
        assert handle.read() == (IPF_HEADER + "net.ipv4.ip_forward = 1\n# a note by hand\nvm.swappiness = 10\n"
                                 + "%s = 2\n%s = 20000 50000\n" % (RP, RANGE))
    # ip_forward's absent takes its own key out and leaves the sysctl module's lines alone
    lab.module(hv, "ip_forward", dict(state="absent", sysctl_file=path, modules_load_file=modules_load))
    with open(path) as handle:
        assert handle.read() == IPF_HEADER + "# a note by hand\nvm.swappiness = 10\n%s = 2\n%s = 20000 50000\n" % (RP, RANGE)
    # the sysctl module's absent takes its lines out; the hand-written lines stay, so the file stays
    gone = lab.module(hv, "sysctl", dict(state="absent", values={RP: None, RANGE: None}, sysctl_file=path))
    assert gone["changed"] is True and gone["sysctl_file"] is None
    assert gone["commands"] == ["write " + path], "absent leaves the runtime values alone"
    assert read(lab, hv, RP) == "2"
    with open(path) as handle:
        assert handle.read() == IPF_HEADER + "# a note by hand\nvm.swappiness = 10\n"


def test_absent_removes_a_file_of_its_own_once_empty(lab, host_untouched):
    hv = lab.ns("hv")
    path = sysctl_file(lab)
    lab.module(hv, "sysctl", dict(values={RP: 2}, sysctl_file=path))
    lab.module(hv, "sysctl", dict(values={SOMAXCONN: 1000}, sysctl_file=path))
    with open(path) as handle:
        assert handle.read() == KEYS_HEADER + "%s = 2\n%s = 1000\n" % (RP, SOMAXCONN)
    lab.module(hv, "sysctl", dict(state="absent", values={RP: None}, sysctl_file=path))
    assert os.path.exists(path)
    result = lab.module(hv, "sysctl", dict(state="absent", values={SOMAXCONN: None}, sysctl_file=path))
    assert result["commands"] == ["remove " + path] and not os.path.exists(path)
    again = lab.module(hv, "sysctl", dict(state="absent", values={SOMAXCONN: None}, sysctl_file=path))
    assert again["changed"] is False


def test_the_file_sets_the_same_values_at_boot(lab, host_untouched):
    """`sysctl -p FILE` (what systemd-sysctl does at boot) in a fresh namespace gives what the
    module set at runtime."""
    hv, fresh = lab.ns("hv"), lab.ns("boot")
    path = sysctl_file(lab)
    lab.module(hv, "sysctl", dict(values={RANGE: [21000, 51000], RP: 2, SOMAXCONN: 999}, sysctl_file=path))
    lab.run(fresh, ["sysctl", "-q", "-p", path])
    assert {key: read(lab, fresh, key) for key in (RANGE, RP, SOMAXCONN)} == {
        RANGE: "21000 51000", RP: "2", SOMAXCONN: "999"}


def test_socket_buffer_limits_where_the_kernel_keeps_them_per_namespace(lab, host_untouched):
    """net.core.rmem_max/wmem_max, the keys kvm_host sets. They are written in the host lab VM
    (tests/hostlab); here only what a namespace of its own shows: on kernels that made them per
    namespace (6.18) a namespace other than the host's sees them read-only, and the module says so
    before writing anything; on kernels without them there (6.1) the key does not exist."""
    hv = lab.ns("hv")
    path = sysctl_file(lab)
    current = read(lab, hv, "net.core.rmem_max") if os.path.exists("/proc/sys/net/core/rmem_max") else None
    shown = lab.run(hv, ["test", "-e", "/proc/sys/net/core/rmem_max"], check=False).returncode == 0
    wanted = 2097152 if current != "2097152" else 1048576
    result = lab.module(hv, "sysctl", dict(values={SOMAXCONN: 1001, "net.core.rmem_max": wanted}, sysctl_file=path),
                        expect_fail=True)
    assert result["msg"].startswith("values[net.core.rmem_max]: %r is not valid" % str(wanted)), result["msg"]
    writable = lab.run(hv, ["test", "-w", "/proc/sys/net/core/rmem_max"], check=False).returncode == 0
    if shown and writable:
        pytest.fail("rmem_max is writable in a namespace: the module should have set it")
    assert ("read-only" if shown else "no such key") in result["msg"]
    assert read(lab, hv, SOMAXCONN) != "1001" and not os.path.exists(path)
