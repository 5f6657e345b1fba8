#!/usr/bin/env bash
# Installs the Debian packages named in bindep.txt (only the missing ones) and the pinned
# Python dependencies into .venv. Safe to run again: it does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=$(sed -n 's/^\([a-z0-9][a-z0-9.+-]*\) *\[platform:dpkg\].*/\1/p' bindep.txt)
missing=()
for pkg in $packages; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ] || ! cmp -s requirements.txt .venv/.requirements.txt; then
  echo "installing Python dependencies into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  cp requirements.txt .venv/.requirements.txt
fi

# The ansible package (not installed, only unpacked by the Hyper-V role test) carries
# ansible.windows, which Galaxy would otherwise have to provide.
ANSIBLE_WHEEL_VERSION=12.3.0
if ! ls build/downloads/ansible-"$ANSIBLE_WHEEL_VERSION"-*.whl >/dev/null 2>&1; then
  echo "downloading the ansible $ANSIBLE_WHEEL_VERSION wheel (for ansible.windows)"
  .venv/bin/pip download -q --disable-pip-version-check --no-deps -d build/downloads "ansible==$ANSIBLE_WHEEL_VERSION"
fi

# galaxy.yml's dependency ansible.windows, unpacked from that wheel next to (not into) our own
# collections path: docs-check (antsibull-docs) and the Hyper-V role's syntax check use it.
if [ ! -d build/extra_collections/ansible_collections/ansible/windows/plugins ]; then
  .venv/bin/python - build/downloads/ansible-"$ANSIBLE_WHEEL_VERSION"-*.whl <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    wheel.extractall("build/extra_collections",
                     [m for m in wheel.namelist() if m.startswith("ansible_collections/ansible/windows/")])
EOF
fi

mkdir -p build/collections/ansible_collections/hypervisor
ln -sfn "$PWD" build/collections/ansible_collections/hypervisor/network
