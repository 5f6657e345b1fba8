import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
# guest_image (the QEMU guest builder) ships with the sandbox; the tests boot the same guest.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "playbooks", "sandbox"))

from netlab import Lab, ensure_collection_link  # noqa: E402

ensure_collection_link()


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
