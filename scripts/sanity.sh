#!/usr/bin/env bash
# ansible-test sanity needs the collection under ansible_collections/NS/NAME as a real tree;
# copy the tracked files there and run it with the venv's Python (no containers here).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=build/sanity/ansible_collections/hypervisor/network
rm -rf build/sanity && mkdir -p "$dest"
git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents {} "$dest"
cd "$dest"
git init -q && git add -A >/dev/null
ansible-test sanity --python 3.11 --local --requirements --color no
