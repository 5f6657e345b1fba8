#!/usr/bin/env bash
# Documentation checks (make docs-check):
#   1. ansible-doc renders every module, the netns connection plugin and every role's
#      argument_specs; a non-zero exit or any warning on stderr is a failure;
#   2. every module's EXAMPLES is valid YAML and calls existing modules with documented options
#      and choices only, suboptions included (scripts/check_examples.py);
#   3. the changelog: fragments by antsibull-changelog's rules, a release dry run, CHANGELOG.rst
#      up to date (scripts/changelog-check.sh);
#   4. the docs site: antsibull-docs lints every plugin's and role's documentation markup (the
#      O(...)/RV(...) references too) and renders the collection to HTML with Sphinx, as
#      docs.ansible.com would (build/docsite/build/html). Offline: the links into Ansible's own
#      docs (intersphinx) cannot be resolved here, and only those warnings are let through.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
root=$PWD
export PATH="$root/.venv/bin:$PATH"
# build/extra_collections: ansible.windows, the declared dependency (scripts/install-deps.sh).
# Always added: make exports ANSIBLE_COLLECTIONS_PATH without it, and antsibull-docs fails to
# load a collection whose declared dependency it cannot find.
export ANSIBLE_COLLECTIONS_PATH="${ANSIBLE_COLLECTIONS_PATH:-$root/build/collections}:$root/build/extra_collections"
export ANSIBLE_CONFIG="${ANSIBLE_CONFIG:-$root/ansible.cfg}"
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PAGER=cat ANSIBLE_PAGER=cat
start=$SECONDS
collection=hypervisor.network
failures=()
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -e "${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/hypervisor/network/galaxy.yml" ]; then
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

scripts/changelog-check.sh || failures+=("changelog (scripts/changelog-check.sh)")

echo "== docs site: antsibull-docs lint-collection-docs --plugin-docs"
if (cd "${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/hypervisor/network" \
    && antsibull-docs lint-collection-docs --plugin-docs --skip-rstcheck .) >"$tmp/lint.out" 2>&1; then
  echo "  ok    every plugin's and role's documentation markup"
else
  sed 's/^/        /' "$tmp/lint.out"
  failures+=("antsibull-docs lint-collection-docs --plugin-docs")
fi

echo "== docs site: antsibull-docs + Sphinx -> build/docsite/build/html"
site=$root/build/docsite
rm -rf "$site" && mkdir -p "$site" && chmod 700 "$site"
if antsibull-docs sphinx-init --use-current --dest-dir "$site" "$collection" >"$tmp/site.out" 2>&1 \
   && (cd "$site" && mkdir -p rst && chmod og-w rst \
       && antsibull-docs --config-file antsibull-docs.cfg collection --cleanup everything --use-current \
            --dest-dir rst "$collection" \
       && printf '\n# offline: no inventories of the Ansible docs to fetch\nintersphinx_mapping = {}\n' >>conf.py \
       && sphinx-build -q -b html -c . -w "$tmp/sphinx-warnings" rst build/html) >>"$tmp/site.out" 2>&1; then
  # Links to Ansible's own documentation (return values, settings, the note on action plugins) and
  # to other collections' plugins (M(ansible.posix.sysctl)),
  # which only resolve against docs.ansible.com; a broken link to one of ours is a failure.
  external="undefined label: 'common_return_values'|undefined label: 'action_plugins'|undefined label: 'ansible_configuration_settings'|'envvar' reference target not found: ANSIBLE_"
  warnings=$(grep 'WARNING' "$tmp/sphinx-warnings" | grep -Ev "$external" || true)
  ours=$(grep "undefined label: 'ansible_collections\.hypervisor\.network\." <<<"$warnings" || true)
  others=$(grep -v "undefined label: 'ansible_collections\." <<<"$warnings" || true)
  real_warnings=$(printf '%s\n%s\n' "$ours" "$others" | sed '/^$/d')
  if [ -n "$real_warnings" ]; then
    while IFS= read -r line; do echo "        $line"; done <<<"$real_warnings"
    failures+=("the docs site has warnings (above)")
  else
    pages=$(find "$site/build/html/collections" -name '*.html' | wc -l)
    echo "  ok    $pages pages, $(grep -c 'WARNING' "$tmp/sphinx-warnings" || true) link(s) into docs.ansible.com left unresolved offline"
  fi
else
  tail -30 "$tmp/site.out" | sed 's/^/        /'
  failures+=("antsibull-docs / sphinx-build of the docs site")
fi

if [ ${#failures[@]} -gt 0 ]; then
  echo "== docs-check FAILED in $((SECONDS - start)) s:"
  printf '   - %s\n' "${failures[@]}"
  exit 1
fi
echo "== docs-check passed in $((SECONDS - start)) s"
