#!/usr/bin/env python3
"""Inventory of the sandbox lab (playbooks/sandbox/sandbox.py): its hosts as namespaces.

The lab is chosen by HN_SANDBOX_LAB (default "demo"). A lab that is not built gives empty groups.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "sandbox"))

import sandbox  # noqa: E402

if __name__ == "__main__":
    sandbox.main(["inventory"])
