"""The shared result builder: the contract every module's result follows."""

from ansible_collections.hypervisor.network.plugins.module_utils._result import build_result


class _Module:
    def __init__(self, diff):
        self._diff = diff


def test_after_only_when_changed():
    unchanged = build_result(_Module(False), False, [], {"a": 1}, after={"a": 1})
    assert unchanged == {"changed": False, "commands": [], "before": {"a": 1}}
    changed = build_result(_Module(False), True, ["x"], {"a": 1}, after={"a": 2})
    assert changed["after"] == {"a": 2} and changed["commands"] == ["x"]


def test_after_and_diff_callables_run_only_when_needed():
    calls = []

    def after():
        calls.append("after")
        return {}

    def diff():
        calls.append("diff")
        return {"before": "", "after": ""}

    build_result(_Module(False), False, [], {}, after=after, diff=diff)
    assert calls == []
    result = build_result(_Module(True), True, [], {}, after=after, diff=diff, backend="nft")
    assert calls == ["after", "diff"] and result["backend"] == "nft" and "diff" in result


def test_diff_only_with_diff_mode():
    assert "diff" not in build_result(_Module(False), True, [], {}, diff={"before": "", "after": "x"})
    assert build_result(_Module(True), False, [], {}, diff={"before": "", "after": ""})["diff"]
