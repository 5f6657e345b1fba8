#!/bin/sh
# Inventory of the sandbox lab (playbooks/sandbox/sandbox.py): its hosts are network namespaces.
# The lab is chosen by HN_SANDBOX_LAB (default "demo"); a lab that is not built gives empty groups.
# (A shell wrapper: sandbox.py needs only the standard library of any python3.)
here=$(dirname "$(readlink -f "$0")")
exec "${HN_SANDBOX_PYTHON:-python3}" "$here/../../sandbox/sandbox.py" inventory
