#!/usr/bin/env bash
# Documentation checks (make docs-check):
#   1. ansible-doc renders every module, the netns connection plugin and every role's
#      argument_specs; a non-zero exit or any warning on stderr is a failure;
#   2. every module's EXAMPLES is valid YAML and calls existing modules with documented options
#      and choices only, suboptions included (scripts/check_examples.py);
#   3. the changelog fragments are valid (antsibull-changelog lint).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
root=$PWD
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="${ANSIBLE_COLLECTIONS_PATH:-$root/build/collections}"
export ANSIBLE_CONFIG="${ANSIBLE_CONFIG:-$root/ansible.cfg}"
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PAGER=cat ANSIBLE_PAGER=cat
start=$SECONDS
collection=hypervisor.network
failures=()
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -e "$ANSIBLE_COLLECTIONS_PATH/ansible_collections/hypervisor/network/galaxy.yml" ]; then
  echo "docs-check: $collection is not under $ANSIBLE_COLLECTIONS_PATH (run make deps)" >&2
  exit 2
fi

# Every ansible-doc run takes a second or more (most of it start-up), so they run in parallel;
# the results are printed in order. Each must exit 0, print something and say nothing on stderr.
items=()
modules=()
for f in plugins/modules/*.py; do
  m=$(basename "$f" .py)
  case $m in __init__|_*) continue ;; esac
  modules+=("$m")
  items+=("module $collection.$m")
done
for f in plugins/connection/*.py; do
  p=$(basename "$f" .py)
  case $p in __init__|_*) continue ;; esac
  items+=("connection $collection.$p")
done
missing_specs=()
for d in roles/*/; do
  r=$(basename "$d")
  if [ -f "$d/meta/argument_specs.yml" ] || [ -f "$d/meta/argument_specs.yaml" ]; then
    items+=("role $collection.$r")
  else
    missing_specs+=("$r")
  fi
done

jobs_max=$(( $(nproc) * 2 ))
for i in "${!items[@]}"; do
  read -r type name <<<"${items[$i]}"
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
  ( rc=0; ansible-doc -t "$type" "$name" >"$tmp/$i.out" 2>"$tmp/$i.err" || rc=$?; echo $rc >"$tmp/$i.rc" ) &
done
wait

echo "== ansible-doc: modules, plugins, roles"
for i in "${!items[@]}"; do
  read -r type name <<<"${items[$i]}"
  rc=$(cat "$tmp/$i.rc")
  if [ "$rc" -ne 0 ] || [ -s "$tmp/$i.err" ] || [ ! -s "$tmp/$i.out" ]; then
    echo "  FAIL  ansible-doc -t $type $name (rc=$rc)"
    sed 's/^/        /' "$tmp/$i.err"
    failures+=("ansible-doc -t $type $name")
  else
    echo "  ok    ansible-doc -t $type $name ($(wc -l <"$tmp/$i.out") lines)"
  fi
done
for r in "${missing_specs[@]}"; do
  echo "  FAIL  role $r has no meta/argument_specs.yml (every role documents its variables)"
  failures+=("role $r: meta/argument_specs.yml missing")
done

echo "== EXAMPLES: YAML, modules, options and choices (scripts/check_examples.py)"
if ! python scripts/check_examples.py "${modules[@]}"; then
  failures+=("module EXAMPLES (scripts/check_examples.py)")
fi

echo "== changelog fragments (antsibull-changelog lint)"
if antsibull-changelog lint; then
  echo "  ok    $(find changelogs/fragments -type f ! -name .keep | wc -l) fragment(s)"
else
  failures+=("antsibull-changelog lint")
fi
if [ -f changelogs/changelog.yaml ]; then
  antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml || failures+=("changelogs/changelog.yaml")
fi

if [ ${#failures[@]} -gt 0 ]; then
  echo "== docs-check FAILED in $((SECONDS - start)) s:"
  printf '   - %s\n' "${failures[@]}"
  exit 1
fi
echo "== docs-check passed in $((SECONDS - start)) s"
