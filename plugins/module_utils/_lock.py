# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A per-host lock around every apply, so two plays at once cannot interleave."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time

from ansible_collections.hypervisor.network.plugins.module_utils._errors import HypervisorNetworkError

LOCK_DIR = "/run/hypervisor-network"


def default_lock_path():
    """One lock per network namespace: a host's netfilter and links are per namespace, so
    sandbox hypervisors sharing one file system do not serialise each other."""
    try:
        netns = os.stat("/proc/self/ns/net").st_ino
    except OSError:
        netns = 0
    return os.path.join(LOCK_DIR, "netns-%s.lock" % netns)


@contextlib.contextmanager
def host_lock(path=None, timeout=60.0):
    """Hold an exclusive flock on ``path`` for the duration of the block."""
    path = path or default_lock_path()
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, exist_ok=True)
    handle = open(path, "a+")
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise HypervisorNetworkError(
                        "another hypervisor.network task held %s for more than %ss; "
                        "wait for it to finish or remove a stale lock holder" % (path, timeout)
                    )
                time.sleep(0.1)
        yield
    finally:
        handle.close()
