#!/usr/bin/env bash
# The changelog by antsibull-changelog's rules (run by docs-check; make changelog writes it):
#   1. antsibull-changelog lint: every fragment is valid (sections, `add object.role` entries);
#   2. a `release` dry run for galaxy.yml's version in a throw-away copy of the collection: the
#      release builds, and the generated changelog names every module, plugin and role of the
#      tree as new (antsibull-changelog finds modules and plugins by their version_added; roles
#      and playbooks come from `add object.*` fragments, which must not be forgotten);
#   3. CHANGELOG.rst in the tree is what that release would write (`make changelog` refreshes it
#      after adding fragments), so the file users read on Galaxy tells the truth.
# Environment: CHANGELOG_WRITE=1 copies the generated CHANGELOG.rst into the tree.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
root=$PWD
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=()

echo "== changelog fragments (antsibull-changelog lint)"
if antsibull-changelog lint; then
  echo "  ok    $(find changelogs/fragments -type f ! -name .keep | wc -l) fragment(s)"
else
  failures+=("antsibull-changelog lint")
fi
antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml || failures+=("changelogs/changelog.yaml")

version=$(python -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
echo "== antsibull-changelog release --version $version (dry run in a copy)"
copy=$tmp/ansible_collections/hypervisor/network
mkdir -p "$copy"
git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
  | xargs -0 cp --parents -t "$copy"
if (cd "$copy" && ANSIBLE_COLLECTIONS_PATH=$tmp antsibull-changelog release --version "$version" --date 2000-01-01) >"$tmp/release.log" 2>&1; then
  generated=$copy/CHANGELOG.rst
  missing=()
  for f in plugins/modules/*.py; do
    m=$(basename "$f" .py); case $m in __init__|_*) continue ;; esac
    grep -q "^- hypervisor\.network\.$m - " "$generated" || missing+=("module $m")
  done
  for f in plugins/connection/*.py; do
    p=$(basename "$f" .py); case $p in __init__|_*) continue ;; esac
    grep -q "^- hypervisor\.network\.$p - " "$generated" || missing+=("connection plugin $p")
  done
  for d in roles/*/; do
    r=$(basename "$d")
    sed -n '/^New Roles$/,$p' "$generated" | grep -q "^- hypervisor\.network\.$r - " || missing+=("role $r (an 'add object.role' fragment)")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    printf '  FAIL  not announced as new in %s: %s\n' "$version" "${missing[*]}"
    failures+=("the $version changelog misses ${missing[*]}")
  else
    echo "  ok    every module, plugin and role is announced; $(grep -c '^- ' "$generated") entries"
  fi
  if [ "${CHANGELOG_WRITE:-0}" = 1 ]; then
    cp "$generated" CHANGELOG.rst
    echo "  wrote CHANGELOG.rst"
  elif ! cmp -s "$generated" CHANGELOG.rst; then
    echo "  FAIL  CHANGELOG.rst is not what the fragments make (run: make changelog):"
    diff -u CHANGELOG.rst "$generated" | head -40 | sed 's/^/        /'
    failures+=("CHANGELOG.rst is stale: make changelog")
  else
    echo "  ok    CHANGELOG.rst is what the fragments make"
  fi
else
  sed 's/^/        /' "$tmp/release.log" | tail -20
  failures+=("antsibull-changelog release --version $version")
fi

if [ ${#failures[@]} -gt 0 ]; then
  printf '== changelog FAILED:\n'; printf '   - %s\n' "${failures[@]}"
  exit 1
fi
echo "== changelog passed"
