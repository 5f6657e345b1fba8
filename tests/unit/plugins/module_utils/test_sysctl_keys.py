# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sysctl module's pure parts: input, plan and file edits, from fixtures."""

from __future__ import annotations

import pytest

from ansible_collections.hypervisor.network.plugins.module_utils import _sysctl_keys as keys
from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError

PATH = "/etc/sysctl.d/90-hypervisor-network.conf"
RANGE = "net.ipv4.ip_local_port_range"
RMEM = "net.core.rmem_max"


def want(values, state="present", persist=True):
    return keys.want_from_params(dict(values=values, state=state, persist=persist, sysctl_file=PATH))


def have(values, text=None, read_only=()):
    return keys.Have(values=values, sysctl_file_text=text, read_only=frozenset(read_only))


@pytest.mark.parametrize("value, expected", [
    (8388608, "8388608"), ("0010", "10"), ([32768, 60999], "32768 60999"), ("32768\t 60999", "32768 60999"),
    (True, "1"), (False, "0"), ("cubic", "cubic"), ("-1", "-1"),
])
def test_values_are_normalised_as_proc_sys_shows_them(value, expected):
    assert keys.normalise(RMEM, value) == expected


@pytest.mark.parametrize("value, words", [
    (1.5, "fractions"), ([], "integers only"), ([1, "a"], "integers only"), ("", "empty"),
    ("1\n2", "control characters"), ({"a": 1}, "integer, a list"),
])
def test_bad_values_name_the_key(value, words):
    with pytest.raises(ValidationError) as err:
        keys.normalise(RMEM, value)
    assert err.value.field == "values[%s]" % RMEM and words in err.value.msg


@pytest.mark.parametrize("key", ["rmem_max", "net..core", "net/core/rmem_max", "net.core.rmem max", "-net.core", 5])
def test_bad_keys_are_refused(key):
    with pytest.raises(ValidationError) as err:
        want({key: 1})
    assert err.value.field == "values"


def test_no_values_is_refused():
    with pytest.raises(ValidationError):
        want({})


def test_plan_writes_only_what_differs_in_task_order_and_edits_the_file():
    result = keys.plan(want({RANGE: [20000, 50000], RMEM: 8388608}), have({RANGE: "32768 60999", RMEM: "8388608"}))
    assert result.writes == ((RANGE, "20000 50000"),)
    assert result.file_changes == (keys.FileChange(PATH, None, keys.KEYS_HEADER + "%s = 20000 50000\n%s = 8388608\n" % (RANGE, RMEM)),)


def test_plan_keeps_other_lines_and_is_stable():
    text = "# ip_forward's\nnet.ipv4.ip_forward = 1\nnet.core.rmem_max=1\nvm.swappiness = 10\n"
    result = keys.plan(want({RMEM: 8388608}), have({RMEM: "8388608"}, text))
    after = result.file_changes[0].after
    assert after == "# ip_forward's\nnet.ipv4.ip_forward = 1\nnet.core.rmem_max = 8388608\nvm.swappiness = 10\n"
    assert not keys.plan(want({RMEM: 8388608}), have({RMEM: "8388608"}, after)).changed


def test_runtime_only_leaves_the_file():
    result = keys.plan(want({RMEM: 1}, persist=False), have({RMEM: "2"}, "net.core.rmem_max = 2\n"))
    assert result.writes == ((RMEM, "1"),) and result.file_changes == ()


@pytest.mark.parametrize("value, current, words", [
    ("plenty", "212992", "an integer"), (40000, "32768 60999", "2 integer(s)"), ("1 2", "5", "1 integer(s)"),
])
def test_shape_is_checked_against_what_the_kernel_holds(value, current, words):
    with pytest.raises(ValidationError) as err:
        keys.plan(want({RANGE: value}), have({RANGE: current}))
    assert words in err.value.msg and err.value.field == "values[%s]" % RANGE


def test_words_where_the_kernel_holds_words():
    result = keys.plan(want({"net.ipv4.tcp_congestion_control": "reno"}), have({"net.ipv4.tcp_congestion_control": "cubic"}))
    assert result.writes == (("net.ipv4.tcp_congestion_control", "reno"),)


def test_missing_and_read_only_keys_fail_before_anything_is_planned():
    with pytest.raises(ValidationError, match="no such key: /proc/sys/net/ipv4/nope does not exist"):
        keys.plan(want({"net.ipv4.nope": 1}), have({"net.ipv4.nope": None}))
    with pytest.raises(ValidationError, match="read-only"):
        keys.plan(want({RMEM: 1}), have({RMEM: "2"}, read_only=[RMEM]))
    # a read-only key that already has the value is fine: nothing to write
    assert not keys.plan(want({RMEM: 2}, persist=False), have({RMEM: "2"}, read_only=[RMEM])).changed


def test_absent_takes_the_lines_out_and_removes_an_empty_file_of_ours():
    text = keys.KEYS_HEADER + "%s = 8388608\n" % RMEM
    result = keys.plan(want({RMEM: None}, state="absent"), have({RMEM: "8388608"}, text))
    assert result.writes == () and result.file_changes == (keys.FileChange(PATH, text, None),)
    other = "# by hand\n%s = 8388608\n" % RMEM
    result = keys.plan(want({RMEM: None}, state="absent"), have({RMEM: "8388608"}, other))
    assert result.file_changes[0].after == "# by hand\n"
