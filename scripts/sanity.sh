#!/usr/bin/env bash
# ansible-test sanity over the collection, offline from Galaxy and from ci-files.testing.ansible.com.
#
# ansible-test needs the collection under ansible_collections/NS/NAME as a real tree: the tracked
# and untracked (not ignored) files are copied there and it runs with the venv's Python, --local
# (no containers). ansible-test always runs the single-version tests (pylint, validate-modules,
# yamllint, ...) in its own cached virtual environments (~/.ansible/test/venv) and fills them from
# PyPI with the pins it ships (ansible_test/_data/requirements/sanity.*.txt). The one thing it
# cannot get here is the pip bootstrap script it downloads from ci-files.testing.ansible.com; the
# stand-in scripts/ansible_test_get_pip.py does the same job with the .venv's pip + PyPI.
# ansible-test keeps all that under ~/.ansible/test; HOME points it to build/ansible-test-home so
# that the cache is ours (several people share this machine's ~/.ansible) and `make clean` drops it.
#
# The tests run as three ansible-test processes in parallel (pylint alone is the longest), each
# with its own log; the logs are printed one after the other when all are done.
#
# Environment: SANITY_TESTS="pylint validate-modules" runs only those tests (one process);
# SANITY_VENV=build/venv-core-2.16 runs the ansible-test of that venv (the version matrix,
# scripts/version-matrix.sh) with its own copy of the tree in SANITY_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$(realpath "${SANITY_VENV:-.venv}")
export PATH="$venv/bin:$PATH"
start=$SECONDS
mkdir -p build
# One run at a time on a machine: runs share build/sanity and the venv cache.
exec 9>build/.sanity.lock
if ! flock -n 9; then echo "sanity: waiting for another run to finish"; flock 9; fi

# Tests that ansible-test skips by itself here, with the reason:
#   pslint      needs pwsh (PowerShell), not on Debian 12; the collection has no PowerShell plugins
#               (roles/hyperv_host renders .ps1 templates: tests/unit/roles render and check them).
#   the shellcheck test needs the shellcheck program, which is not in bindep.txt; it checks the
#               .sh files (scripts/, the sandbox helpers). Where it is installed, it runs.
#   compile, import on Python versions other than 3.11: only 3.11 exists here (--python 3.11).
# Docker/Podman-based runs (--docker, --remote) are not used: --local only.

# pip bootstrap for ansible-test's sanity virtual environments.
pip_version=$(python - <<'EOF'
from ansible_test._internal.python_requirements import get_venv_packages
from ansible_test._internal.host_configs import NativePythonConfig
print(get_venv_packages(NativePythonConfig(version="3.11", path=""))["pip"])
EOF
)
export HOME="$root/build/ansible-test-home"
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$cache")" "$HOME/.config/pip"
sed "s|@HOST_PYTHON@|$venv/bin/python|" scripts/ansible_test_get_pip.py > "$cache"
# ansible-test passes only HOME and PATH to pip, so pip's options go in HOME's pip.conf: quiet,
# and no byte-compiling at install time (these venvs are small and that halves the install time).
printf '[global]\nquiet = 1\nno-compile = true\ndisable-pip-version-check = true\nprogress-bar = off\n' \
  > "$HOME/.config/pip/pip.conf"

sanity_dir=${SANITY_DIR:-build/sanity}
dest=$sanity_dir/ansible_collections/hypervisor/network
rm -rf "$sanity_dir" && mkdir -p "$dest"
# tracked and untracked-but-not-ignored files; a tracked file deleted in the work tree is left out
git ls-files -co --exclude-standard -z \
  | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
  | xargs -0 cp --parents -t "$dest"
cd "$dest"
git init -q && git add -A >/dev/null

echo "== ansible-test sanity (ansible-core $(python -c 'import ansible; print(ansible.__version__)'), Python 3.11, --local)"
run=(ansible-test sanity --python 3.11 --local --color no)
logs=$root/build/sanity-logs
rm -rf "$logs" && mkdir -p "$logs"

if [ -n "${SANITY_TESTS:-}" ]; then
  tests=()
  for t in $SANITY_TESTS; do tests+=(--test "$t"); done
  rc=0
  "${run[@]}" "${tests[@]}" || rc=$?
  echo "== ansible-test sanity: $([ $rc -eq 0 ] && echo passed || echo "FAILED (rc=$rc)") in $((SECONDS - start)) s"
  exit $rc
fi

group_a=(pylint)
group_b=(validate-modules ansible-doc yamllint changelog)
args_a=(); for t in "${group_a[@]}"; do args_a+=(--test "$t"); done
args_b=(); for t in "${group_b[@]}"; do args_b+=(--test "$t"); done
args_c=(); for t in "${group_a[@]}" "${group_b[@]}"; do args_c+=(--skip-test "$t"); done
names=("pylint" "validate-modules, ansible-doc, yamllint, changelog" "all other tests")
declare -a pids
( "${run[@]}" "${args_a[@]}" >"$logs/0.log" 2>&1; echo $? >"$logs/0.rc" ) & pids+=($!)
( "${run[@]}" "${args_b[@]}" >"$logs/1.log" 2>&1; echo $? >"$logs/1.rc" ) & pids+=($!)
( "${run[@]}" "${args_c[@]}" >"$logs/2.log" 2>&1; echo $? >"$logs/2.rc" ) & pids+=($!)
wait "${pids[@]}" || true

rc=0
failed=()
for i in 0 1 2; do
  r=$(cat "$logs/$i.rc" 2>/dev/null || echo 1)
  echo "-- ansible-test sanity: ${names[$i]} ($([ "$r" -eq 0 ] && echo passed || echo "FAILED, rc=$r"))"
  # the locale warning is repeated by every process and says nothing about the collection
  grep -v -e 'Using locale "C.UTF-8"' -e 'Reviewing previous 1 warning' "$logs/$i.log" | sed 's/^/   /' || true
  if [ "$r" -ne 0 ]; then rc=1; failed+=("${names[$i]}"); fi
done
total=$(cat "$logs"/*.log | grep -c '^Running sanity test' || true)
skipped=$(grep -h 'WARNING: Required program\|Skipping sanity test' "$logs"/*.log | sed 's/^WARNING: //' | sort -u || true)
nskipped=0
if [ -n "$skipped" ]; then
  nskipped=$(wc -l <<<"$skipped")
  echo "== skipped by ansible-test (a program it needs is not installed):"
  while IFS= read -r line; do echo "   $line"; done <<<"$skipped"
fi
if [ $rc -eq 0 ]; then
  echo "== ansible-test sanity: $((total - nskipped)) tests passed, $nskipped skipped, in $((SECONDS - start)) s"
else
  echo "== ansible-test sanity: FAILED in $((SECONDS - start)) s: $(printf '%s; ' "${failed[@]}")logs in build/sanity-logs"
fi
exit $rc
