# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ip_forward planner and renderers, from fixtures: no root, no host."""

from __future__ import annotations

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.hypervisor.network.plugins.module_utils import _sysctl as sysctl
from ansible_collections.hypervisor.network.plugins.module_utils._errors import (
    HypervisorNetworkError,
    ValidationError,
)
from ansible_collections.hypervisor.network.plugins.module_utils._runner import Runner
from fake_module import FakeModule  # tests/ is on sys.path

V4, V6 = sysctl.IPV4_FORWARD, sysctl.IPV6_FORWARD
NF4, NF6, NFARP = sysctl.BRIDGE_NF_IPTABLES, sysctl.BRIDGE_NF_IP6TABLES, sysctl.BRIDGE_NF_ARPTABLES
SYSCTL_FILE = "/etc/sysctl.d/90-hypervisor-network.conf"
MODULES_FILE = "/etc/modules-load.d/hypervisor-network.conf"
HEADER = sysctl.MANAGED_HEADER


def params(**overrides):
    base = dict(state="present", ipv4=True, ipv6=None, bridge_nf_call_iptables=None,
                bridge_nf_call_ip6tables=None, bridge_nf_call_arptables=None, persist=True,
                sysctl_file=SYSCTL_FILE, modules_load_file=MODULES_FILE)
    base.update(overrides)
    return base


def want(**overrides):
    return sysctl.want_from_params(params(**overrides))


def have(values=None, sysctl_text=None, modules_text=None):
    current = {V4: 0, V6: 0, NF4: None, NF6: None, NFARP: None}  # br_netfilter not loaded
    current.update(values or {})
    return sysctl.Have(values=current, sysctl_file_text=sysctl_text, modules_load_file_text=modules_text)


# -- renderers ------------------------------------------------------------------------------

def test_render_sysctl_file_has_header_fixed_order_and_dash_for_off():
    text = sysctl.render_sysctl_file({NF4: 0, V6: 1, V4: 1})
    assert text == HEADER + "net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 1\n-net.bridge.bridge-nf-call-iptables = 0\n"
    assert text.startswith("# Managed by hypervisor.network")


def test_render_modules_load_file():
    assert sysctl.render_modules_load_file() == HEADER + "br_netfilter\n"


def test_parse_sysctl_keys_knows_only_its_keys_and_ignores_comments():
    text = "# c\n; c\n\n-net.bridge.bridge-nf-call-iptables = 0\nnet/ipv4/ip_forward=1\nkernel.panic = 3\nnonsense\n"
    assert sysctl.parse_sysctl_keys(text) == [NF4, V4]
    assert sysctl.parse_sysctl_keys(None) == []


@given(st.dictionaries(st.sampled_from(sysctl.KNOWN_KEYS), st.sampled_from([0, 1])))
def test_render_then_parse_round_trips_the_keys(targets):
    parsed = sysctl.parse_sysctl_keys(sysctl.render_sysctl_file(targets))
    assert parsed == [key for key in sysctl.KNOWN_KEYS if key in targets]


# -- want -----------------------------------------------------------------------------------

@pytest.mark.parametrize("field,value", [
    ("sysctl_file", "relative/90-x.conf"),
    ("sysctl_file", "/etc/sysctl.d/90-x"),
    ("sysctl_file", "/etc/sysctl.d/90-x.conf\nkernel.panic=1"),
    ("modules_load_file", "/etc/modules-load.d/.conf"),
    ("modules_load_file", SYSCTL_FILE),
])
def test_bad_paths_are_refused(field, value):
    with pytest.raises(ValidationError) as info:
        want(**{field: value})
    assert info.value.field == field


def test_present_with_nothing_to_manage_is_refused():
    with pytest.raises(ValidationError, match="at least one of"):
        want(ipv4=None)


def validated(**args):
    """Module arguments as AnsibleModule's own argument-spec validation leaves them."""
    result = ArgumentSpecValidator(sysctl.ARGUMENT_SPEC).validate(args)
    assert result.error_messages == []
    return result.validated_parameters


def test_ipv4_null_leaves_ip_forward_alone():
    """Regression: `ipv4: null` failed with "NoneType ... cannot be converted to a bool"."""
    desired = sysctl.want_from_params(validated(ipv4=None, ipv6=True))
    assert desired.settings[V4] is None
    assert sysctl.plan(desired, have({V4: 1, V6: 0})).targets == {V6: 1}


@pytest.mark.parametrize("value, expected", [("yes", True), ("off", False), (1, True), (False, False)])
def test_ipv4_takes_what_ansible_takes_as_a_boolean(value, expected):
    assert sysctl.want_from_params(validated(ipv4=value)).settings[V4] is expected


@pytest.mark.parametrize("value", ["maybe", 2, [True]])
def test_ipv4_that_is_no_boolean_is_refused_naming_it(value):
    with pytest.raises(ValidationError) as info:
        sysctl.want_from_params(validated(ipv4=value))
    assert info.value.field == "ipv4" and info.value.value == value


def test_absent_with_nothing_named_is_accepted():
    assert want(state="absent", ipv4=None).state == "absent"


# -- plan: present --------------------------------------------------------------------------

def test_ipv4_on_from_off_writes_value_and_file():
    result = sysctl.plan(want(), have())
    assert result.targets == {V4: 1}
    assert result.writes == ((V4, 1),)
    assert result.load_modules == ()
    assert result.file_changes == (
        sysctl.FileChange(SYSCTL_FILE, None, HEADER + "net.ipv4.ip_forward = 1\n"),
    )


def test_already_as_wanted_plans_nothing():
    result = sysctl.plan(want(ipv6=True), have({V4: 1, V6: 1}, sysctl_text=HEADER + "net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 1\n"))
    assert not result.changed
    assert result.writes == () and result.file_changes == ()


def test_null_options_are_left_alone():
    result = sysctl.plan(want(ipv6=None), have({V4: 1, V6: 1, NF4: 1}))
    assert result.targets == {V4: 1}
    assert result.writes == ()


def test_bridge_on_without_br_netfilter_loads_it_then_writes_and_persists_the_module():
    result = sysctl.plan(want(bridge_nf_call_iptables=True), have())
    assert result.load_modules == ("br_netfilter",)
    assert result.writes == ((V4, 1), (NF4, 1))
    assert [change.path for change in result.file_changes] == [SYSCTL_FILE, MODULES_FILE]
    assert result.file_changes[1].after == HEADER + "br_netfilter\n"


def test_bridge_off_is_written_when_this_run_loads_br_netfilter():
    """Loading br_netfilter turns all its switches on, so the ones wanted off are written too."""
    result = sysctl.plan(want(bridge_nf_call_iptables=True, bridge_nf_call_arptables=False, persist=False),
                         have({V4: 1}))
    assert result.load_modules == ("br_netfilter",)
    assert result.writes == ((NF4, 1), (NFARP, 0))


def test_bridge_off_without_br_netfilter_is_already_off():
    result = sysctl.plan(want(bridge_nf_call_iptables=False, bridge_nf_call_ip6tables=False), have({V4: 1}))
    assert result.load_modules == ()
    assert result.writes == ()
    # persisted with '-' so boot does not complain when br_netfilter is not loaded; no module file
    assert [change.path for change in result.file_changes] == [SYSCTL_FILE]
    assert "-net.bridge.bridge-nf-call-iptables = 0\n" in result.file_changes[0].after


def test_bridge_off_with_br_netfilter_loaded_writes_zero_and_drops_the_module_file():
    result = sysctl.plan(want(bridge_nf_call_iptables=False),
                         have({V4: 1, NF4: 1, NF6: 1, NFARP: 1}, modules_text=HEADER + "br_netfilter\n"))
    assert result.writes == ((NF4, 0),)
    assert sysctl.FileChange(MODULES_FILE, HEADER + "br_netfilter\n", None) in result.file_changes


def test_ipv6_on_when_ipv6_is_disabled_fails_clearly():
    with pytest.raises(HypervisorNetworkError, match="IPv6 is disabled"):
        sysctl.plan(want(ipv6=True), have({V6: None}))


def test_ipv6_off_when_ipv6_is_disabled_is_fine():
    assert sysctl.plan(want(ipv6=False, persist=False), have({V4: 1, V6: None})).changed is False


def test_persist_false_leaves_files_alone():
    result = sysctl.plan(want(persist=False), have(sysctl_text="stale\n", modules_text="stale\n"))
    assert result.writes == ((V4, 1),)
    assert result.file_changes == ()


def test_present_corrects_its_key_in_a_file_edited_by_hand():
    """The key's line is put right in place; the file is not ours, so no header is added."""
    result = sysctl.plan(want(), have({V4: 1}, sysctl_text="net.ipv4.ip_forward = 0\n"))
    assert result.writes == ()
    assert result.file_changes[0].after == "net.ipv4.ip_forward = 1\n"


# -- plan: keys, not files (issue 11 item 5) ------------------------------------------------

BRIDGE_HOST_FILE = HEADER + "net.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1\n"


def test_a_later_task_with_other_keys_keeps_the_earlier_keys_and_the_module_file():
    """bridge_host wrote bridge-nf-call-iptables and br_netfilter; an ip_forward-only task after it
    (kvm_host style) must neither drop the key nor remove the modules-load file."""
    result = sysctl.plan(want(ipv4=True), have({V4: 1, NF4: 1, NF6: 1, NFARP: 1}, sysctl_text=BRIDGE_HOST_FILE,
                                               modules_text=HEADER + "br_netfilter\n"))
    assert not result.changed, result
    result = sysctl.plan(want(ipv4=True, ipv6=True), have({V4: 1, NF4: 1, NF6: 1, NFARP: 1}, sysctl_text=BRIDGE_HOST_FILE,
                                                          modules_text=HEADER + "br_netfilter\n"))
    assert result.file_changes == (sysctl.FileChange(SYSCTL_FILE, BRIDGE_HOST_FILE,
                                                     BRIDGE_HOST_FILE + "net.ipv6.conf.all.forwarding = 1\n"),)


def test_a_foreign_sysctl_file_keeps_its_lines_comments_and_order():
    before = "# tuned by hand\nvm.swappiness = 10\n\n; old\nnet/ipv4/ip_forward=0\nkernel.panic = 3\nnet.ipv4.ip_forward = 0\n"
    result = sysctl.plan(want(ipv4=True, ipv6=False), have({V4: 0, V6: 0}, sysctl_text=before))
    after = "# tuned by hand\nvm.swappiness = 10\n\n; old\nnet.ipv4.ip_forward = 1\nkernel.panic = 3\n" \
            "-net.ipv6.conf.all.forwarding = 0\n"
    assert result.file_changes == (sysctl.FileChange(SYSCTL_FILE, before, after),)


def test_a_key_is_appended_to_a_file_without_a_final_newline():
    result = sysctl.plan(want(), have({V4: 1}, sysctl_text="vm.swappiness = 10"))
    assert result.file_changes[0].after == "vm.swappiness = 10\nnet.ipv4.ip_forward = 1\n"


def test_br_netfilter_is_added_to_a_foreign_modules_file_with_a_mark_and_only_that_goes_again():
    foreign = "# /etc/modules-load.d/modules.conf\nloop\n"
    on = sysctl.plan(want(bridge_nf_call_iptables=True), have({V4: 1, NF4: 0, NF6: 0, NFARP: 0}, modules_text=foreign))
    added = [c for c in on.file_changes if c.path == MODULES_FILE][0].after
    assert added == foreign + sysctl.MODULE_MARK + "br_netfilter\n"
    off = sysctl.plan(want(bridge_nf_call_iptables=False),
                      have({V4: 1, NF4: 1, NF6: 0, NFARP: 0}, sysctl_text=HEADER + "net.bridge.bridge-nf-call-iptables = 1\n",
                           modules_text=added))
    assert [c for c in off.file_changes if c.path == MODULES_FILE][0].after == foreign


def test_a_br_netfilter_line_someone_else_wrote_stays():
    theirs = "br_netfilter\noverlay\n"
    for state in ("present", "absent"):
        result = sysctl.plan(want(state=state, bridge_nf_call_iptables=False), have({V4: 1, NF4: 1}, modules_text=theirs))
        assert MODULES_FILE not in [c.path for c in result.file_changes], state


def test_absent_takes_out_only_its_keys_of_a_foreign_file_and_never_removes_it():
    before = "vm.swappiness = 10\nnet.ipv4.ip_forward = 1\n"
    result = sysctl.plan(want(state="absent"), have({V4: 1}, sysctl_text=before))
    assert result.file_changes == (sysctl.FileChange(SYSCTL_FILE, before, "vm.swappiness = 10\n"),)
    alone = sysctl.plan(want(state="absent"), have({V4: 1}, sysctl_text="net.ipv4.ip_forward = 1\n"))
    assert alone.file_changes == (sysctl.FileChange(SYSCTL_FILE, "net.ipv4.ip_forward = 1\n", ""),)


def test_absent_keeps_our_file_while_lines_of_others_are_in_it():
    before = HEADER + "net.ipv4.ip_forward = 1\n# added by hand\nvm.swappiness = 10\n"
    result = sysctl.plan(want(state="absent", ipv4=None), have({V4: 1}, sysctl_text=before))
    assert result.targets == {V4: 0}
    assert result.file_changes == (sysctl.FileChange(SYSCTL_FILE, before, HEADER + "# added by hand\nvm.swappiness = 10\n"),)


def test_absent_with_a_foreign_file_manages_only_the_named_keys():
    """Keys in a file that is not ours were not set by a task of ours: absent alone leaves them."""
    result = sysctl.plan(want(state="absent", ipv4=None), have({V4: 1}, sysctl_text="net.ipv4.ip_forward = 1\n"))
    assert not result.changed


# -- plan: absent ---------------------------------------------------------------------------

def test_absent_turns_off_named_and_recorded_keys_and_removes_files():
    recorded = HEADER + "net.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\n"
    result = sysctl.plan(want(state="absent", ipv4=None),
                         have({V4: 1, V6: 1, NF4: 1, NF6: 1}, sysctl_text=recorded,
                              modules_text=HEADER + "br_netfilter\n"))
    assert result.targets == {V4: 0, NF6: 0}  # ipv6 and NF4 were neither named nor recorded
    assert result.writes == ((V4, 0), (NF6, 0))
    assert result.file_changes == (
        sysctl.FileChange(SYSCTL_FILE, recorded, None),
        sysctl.FileChange(MODULES_FILE, HEADER + "br_netfilter\n", None),
    )


def test_absent_when_already_absent_plans_nothing():
    assert not sysctl.plan(want(state="absent"), have({V4: 0})).changed


def test_absent_never_loads_br_netfilter():
    result = sysctl.plan(want(state="absent", bridge_nf_call_iptables=True), have({V4: 0}))
    assert result.load_modules == () and not result.changed


# -- properties -----------------------------------------------------------------------------

switch = st.sampled_from([True, False, None])
current = st.sampled_from([0, 1, None])


@given(state=st.sampled_from(["present", "absent"]), ipv4=switch, ipv6=switch, nf4=switch, nf6=switch,
       nfarp=switch, persist=st.booleans(), values=st.fixed_dictionaries({key: current for key in sysctl.KNOWN_KEYS}))
def test_applying_the_plan_reaches_a_fixed_point(state, ipv4, ipv6, nf4, nf6, nfarp, persist, values):
    """Whatever the start, after the plan is carried out a new plan is empty (idempotence)."""
    if state == "present" and (ipv4, ipv6, nf4, nf6, nfarp) == (None,) * 5:
        return
    values = dict(values, **{V4: values[V4] if values[V4] is not None else 0})  # ip_forward always exists
    if any(values[key] is None for key in sysctl.BRIDGE_KEYS):  # br_netfilter brings all three or none
        values.update({key: None for key in sysctl.BRIDGE_KEYS})
    desired = want(state=state, ipv4=ipv4, ipv6=ipv6, bridge_nf_call_iptables=nf4,
                   bridge_nf_call_ip6tables=nf6, bridge_nf_call_arptables=nfarp, persist=persist)
    start = have(values)
    try:
        first = sysctl.plan(desired, start)
    except HypervisorNetworkError:
        assert ipv6 and values[V6] is None and state == "present"
        return
    after = dict(values)
    if first.load_modules:
        after.update({key: 1 for key in sysctl.BRIDGE_KEYS if after[key] is None})  # br_netfilter defaults
    after.update(dict(first.writes))
    files = {SYSCTL_FILE: None, MODULES_FILE: None}
    for change in first.file_changes:
        files[change.path] = change.after
    second = sysctl.plan(desired, sysctl.Have(after, files[SYSCTL_FILE], files[MODULES_FILE]))
    assert not second.changed, second
    for key, target in first.targets.items():
        assert (after[key] or 0) == target


# -- apply through the runner ---------------------------------------------------------------

def test_check_mode_records_commands_and_runs_nothing():
    module = FakeModule(check_mode=True)
    runner = Runner(module)
    result = sysctl.plan(want(bridge_nf_call_iptables=True, persist=False), have())
    sysctl.apply(runner, result)
    assert module.ran == []
    assert runner.commands == ["modprobe br_netfilter", "sysctl -w net.ipv4.ip_forward=1",
                               "sysctl -w net.bridge.bridge-nf-call-iptables=1"]


def test_br_netfilter_that_cannot_be_loaded_fails_clearly():
    module = FakeModule(rc=1, stderr="modprobe: FATAL: Module br_netfilter not found")
    runner = Runner(module)
    result = sysctl.plan(want(bridge_nf_call_iptables=True, persist=False), have())
    with pytest.raises(HypervisorNetworkError) as info:
        sysctl.apply(runner, result)
    assert "br_netfilter is needed and could not be loaded" in info.value.msg
    assert info.value.details["rc"] == 1
    assert module.ran == [["/usr/sbin/modprobe", "br_netfilter"]]  # nothing written after the failure


def test_gather_reads_a_proc_tree(tmp_path):
    (tmp_path / "net" / "ipv4").mkdir(parents=True)
    (tmp_path / "net" / "ipv4" / "ip_forward").write_text("1\n")
    sysctl_file = tmp_path / "90.conf"
    sysctl_file.write_text("x\n")
    result = sysctl.gather(want(sysctl_file=str(sysctl_file), modules_load_file=str(tmp_path / "m.conf")), root=str(tmp_path))
    assert result.values == {V4: 1, V6: None, NF4: None, NF6: None, NFARP: None}
    assert result.sysctl_file_text == "x\n"
    assert result.modules_load_file_text is None


# -- property: other lines survive every edit -----------------------------------------------

foreign_line = st.one_of(
    st.sampled_from(["# comment\n", "; comment\n", "\n", "vm.swappiness = 10\n", "kernel.panic=3\n",
                     "-net.ipv4.conf.all.rp_filter = 1\n", "net/core/somaxconn = 4096\n"]),
    st.from_regex(r"[a-z]{1,8}\.[a-z_]{1,12} = [0-9]{1,3}\n", fullmatch=True),
)
own_line = st.builds(lambda key, value, dash: "%s%s = %d\n" % ("-" if dash else "", key, value),
                     st.sampled_from(sysctl.KNOWN_KEYS), st.sampled_from([0, 1]), st.booleans())


@given(lines=st.lists(st.one_of(foreign_line, own_line), max_size=12), ours=st.booleans(),
       targets=st.dictionaries(st.sampled_from(sysctl.KNOWN_KEYS), st.sampled_from([0, 1])), remove=st.booleans())
def test_every_line_of_another_key_survives_an_edit_in_its_order(lines, ours, targets, remove):
    text = (HEADER if ours else "") + "".join(lines)
    after = sysctl.edit_sysctl_text(text, targets, remove=remove)
    foreign = [line for line in lines if sysctl._line_key(line) not in targets]
    if after is None:  # removed: only when ours and nothing else was left
        assert ours and not "".join(foreign).strip()
        return
    kept = [line for line in after.splitlines(True) if sysctl._line_key(line) not in targets]
    assert kept == ([HEADER] if ours else []) + foreign
    values = sysctl.parse_sysctl_values(after)
    for key, value in targets.items():
        assert (key not in values) if remove else values[key] == value
    assert sysctl.edit_sysctl_text(after, targets, remove=remove) == after, "a second edit changes nothing"
