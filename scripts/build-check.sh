#!/usr/bin/env bash
# Build check (make build-check): the collection tarball builds, installs offline (no Galaxy) into
# an empty collections path, and is complete: ansible-doc finds its modules, plugins and roles
# there and nothing but the collection's own content went in (no .venv, build, caches).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PAGER=cat ANSIBLE_PAGER=cat
install_root=$(mktemp -d)
trap 'rm -rf "$install_root"' EXIT
# ansible.cfg points collections_path at the work tree; this check must see only the install.
printf '[defaults]\n' >"$install_root/ansible.cfg"
export ANSIBLE_CONFIG=$install_root/ansible.cfg
start=$SECONDS
max_kib=${BUILD_CHECK_MAX_KIB:-2048}

namespace=$(python -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["namespace"])')
name=$(python -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["name"])')
version=$(python -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')

dist=build/dist
rm -rf "$dist" && mkdir -p "$dist"
echo "== ansible-galaxy collection build -> $dist"
ansible-galaxy collection build --force --output-path "$dist" . >/dev/null
tarball=$dist/$namespace-$name-$version.tar.gz
[ -f "$tarball" ] || { echo "build-check: $tarball was not built" >&2; exit 1; }
kib=$(( ($(stat -c %s "$tarball") + 1023) / 1024 ))
files=$(tar -tzf "$tarball" | grep -vc '/$')
echo "   $tarball: $kib KiB, $files files"

problems=()
# Paths that must never be in the tarball (build_ignore in galaxy.yml keeps them out).
bad=$(tar -tzf "$tarball" | grep -E '(^|/)(\.venv|build|\.git|\.ci|\.pytest_cache|\.hypothesis|__pycache__|\.mypy_cache|\.cache|\.molecule|tests/output|bench/results)(/|$)|\.(pyc|pyo|tar\.gz|log)$' || true)
if [ -n "$bad" ]; then
  echo "   unwanted paths in the tarball:"
  head -20 <<<"$bad" | while IFS= read -r path; do echo "     $path"; done
  problems+=("unwanted paths in the tarball (see galaxy.yml build_ignore)")
fi
if [ "$kib" -gt "$max_kib" ]; then
  problems+=("tarball is $kib KiB, more than $max_kib KiB: something big slipped in")
fi

echo "== ansible-galaxy collection install --offline -> $install_root"
# --force: a copy installed elsewhere (~/.ansible/collections) must not make this a no-op.
ANSIBLE_COLLECTIONS_PATH=$install_root \
  ansible-galaxy collection install --offline --no-deps --force -p "$install_root" "$tarball" 2>&1 \
  | grep -v 'is not part of the configured Ansible collections paths' | sed 's/^/   /'
installed=$install_root/ansible_collections/$namespace/$name
[ -f "$installed/MANIFEST.json" ] || problems+=("MANIFEST.json missing from the installed collection")

# Every module, connection plugin and role of the work tree must be in the installed copy and
# render from there (ANSIBLE_COLLECTIONS_PATH is only the temporary path).
export ANSIBLE_COLLECTIONS_PATH=$install_root
tree=$root
cd "$install_root"
expected=()
for f in "$tree"/plugins/modules/*.py; do
  m=$(basename "$f" .py); case $m in __init__|_*) continue ;; esac; expected+=("module $m")
done
for f in "$tree"/plugins/connection/*.py; do
  p=$(basename "$f" .py); case $p in __init__|_*) continue ;; esac; expected+=("connection $p")
done
for d in "$tree"/roles/*/; do
  [ -f "$d/meta/argument_specs.yml" ] && expected+=("role $(basename "$d")")
done
listed=$(ansible-doc -t module -l "$namespace.$name" 2>/dev/null | awk '{print $1}' || true)
echo "== ansible-doc from the installed collection"
for item in "${expected[@]}"; do
  read -r type plugin <<<"$item"
  if [ "$type" = module ] && ! grep -qx "$namespace.$name.$plugin" <<<"$listed"; then
    echo "   FAIL  module $plugin is not listed by ansible-doc -l"
    problems+=("module $plugin missing from the installed collection")
    continue
  fi
  if ansible-doc -t "$type" "$namespace.$name.$plugin" >/dev/null 2>"$install_root/err" && [ ! -s "$install_root/err" ]; then
    echo "   ok    $type $namespace.$name.$plugin"
  else
    echo "   FAIL  $type $namespace.$name.$plugin"
    sed 's/^/         /' "$install_root/err"
    problems+=("ansible-doc -t $type $namespace.$name.$plugin from the installed collection")
  fi
done

if [ ${#problems[@]} -gt 0 ]; then
  echo "== build-check FAILED in $((SECONDS - start)) s:"
  printf '   - %s\n' "${problems[@]}"
  exit 1
fi
echo "== build-check passed in $((SECONDS - start)) s: $tree/$tarball ($kib KiB, $files files)"
