# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pytest fixtures of the host lab; a test module imports the ones it uses.

The image is built once per session (or found in the cache); a VM is booted once per test module
(boots are the expensive part under TCG) and every test gets a clean ``RemoteLab`` on it.
Everything is torn down by PID and namespace at the end, also when a test fails.
"""

from __future__ import annotations

import os
import shutil

import pytest

from hostlab.image import build
from hostlab.lab import HostLab
from hostlab.remote import RemoteLab


def lab_can_run():
    """Why the host lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (namespaces, taps, debootstrap)"
    for tool in ("qemu-system-x86_64", "qemu-img", "debootstrap", "mkfs.ext4", "ssh"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            return "%s is not installed (make deps installs it)" % tool
    return None


def _image(suite):
    reason = lab_can_run()
    if reason:
        pytest.skip(reason)
    return build(suite)


@pytest.fixture(scope="session")
def bookworm_image():
    """Debian 12: kernel 6.1, systemd 252."""
    return _image("bookworm")


@pytest.fixture(scope="session")
def trixie_image():
    """Debian 13: kernel 6.12, systemd 257."""
    return _image("trixie")


@pytest.fixture(scope="module")
def bookworm_vm(bookworm_image):
    """One booted Debian 12 VM for a test module: (hostlab, vm)."""
    hostlab = HostLab(bookworm_image)
    try:
        vm = hostlab.add_vm()
        hostlab.start(vm)
        yield hostlab, vm
    finally:
        hostlab.close()


@pytest.fixture
def vm_lab(bookworm_vm):
    """The ``lab`` interface inside the module's VM; what a test made there is removed after."""
    hostlab, vm = bookworm_vm
    remote = RemoteLab(hostlab, vm)
    try:
        yield remote
    finally:
        remote.close()
