import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
# guest_image (the QEMU guest builder) ships with the sandbox; the tests boot the same guest.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "playbooks", "sandbox"))

from netlab import Lab, ensure_collection_link  # noqa: E402

ensure_collection_link()


def _teardown_on_sigterm(signum, _frame):
    """SIGTERM (a CI timeout, ``kill``) ends the run the way Ctrl-C does: pytest then tears down
    every fixture, and the labs stop their processes and delete their namespaces and VMs. By
    default SIGTERM ends Python at once and leaves them all behind. A second SIGTERM during the
    teardown is ignored, so that it finishes (SIGKILL still ends it)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt("SIGTERM (signal %d): tearing down" % signum)


def pytest_sessionstart(session):
    signal.signal(signal.SIGTERM, _teardown_on_sigterm)


def pytest_collection_modifyitems(config, items):
    """Tests that need root and namespaces skip loudly, not silently, without root."""
    if os.geteuid() == 0:
        return
    marker = pytest.mark.skip(reason="needs root for network namespaces")
    for item in items:
        if "integration" in item.nodeid:
            item.add_marker(marker)


@pytest.fixture
def lab(request):
    instance = Lab(tag=request.node.name.replace("test_", "")[:3])
    yield instance
    instance.close()
