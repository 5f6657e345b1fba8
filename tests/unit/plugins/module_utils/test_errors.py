"""run_module_main: the one place a module's result or typed error is reported."""

import gc

import pytest

from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError, run_module_main


class _Reported(Exception):
    pass


class _Module:
    """Records what would be reported, and whether the run's objects were set aside from the
    cycle collector by then."""

    def __init__(self):
        self.reported = None

    def exit_json(self, **kwargs):
        self.reported = ("exit", kwargs, gc.get_freeze_count())
        raise _Reported()

    def fail_json(self, **kwargs):
        self.reported = ("fail", kwargs, gc.get_freeze_count())
        raise _Reported()


@pytest.fixture(autouse=True)
def _unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_result_is_reported_with_the_run_s_objects_out_of_the_collector_s_way():
    module = _Module()
    kept = [{"forward": index} for index in range(100)]
    with pytest.raises(_Reported):
        run_module_main(module, lambda m: {"changed": True, "after": kept})
    kind, kwargs, frozen = module.reported
    assert kind == "exit" and kwargs == {"changed": True, "after": kept}
    # The run's objects (these forwards among them) are frozen, so the last collection at exit
    # and any during ansible-core's scrub and JSON encoding skip them.
    assert frozen >= len(kept)


def test_a_typed_error_becomes_fail_json_the_same_way():
    module = _Module()

    def work(m):
        raise ValidationError("config[0].host_port", "0", "must be 1-65535")

    with pytest.raises(_Reported):
        run_module_main(module, work)
    kind, kwargs, frozen = module.reported
    assert kind == "fail"
    assert kwargs == {"msg": "config[0].host_port: '0' is not valid: must be 1-65535", "field": "config[0].host_port"}
    assert frozen > 0


def test_an_untyped_error_is_not_swallowed():
    module = _Module()

    def work(m):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_module_main(module, work)
    assert module.reported is None
