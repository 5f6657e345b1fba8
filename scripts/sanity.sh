#!/usr/bin/env bash
# ansible-test sanity over the collection, offline from Galaxy and from ci-files.testing.ansible.com.
#
# ansible-test needs the collection under ansible_collections/NS/NAME as a real tree: the tracked
# and untracked (not ignored) files are copied there and it runs with the venv's Python, --local
# (no containers). ansible-test always runs the single-version tests (pylint, validate-modules,
# yamllint, ...) in its own cached virtual environments (~/.ansible/test/venv) and fills them from
# PyPI with the pins it ships (ansible_test/_data/requirements/sanity.*.txt). The one thing it
# cannot get here is the pip bootstrap script it downloads from ci-files.testing.ansible.com; the
# stand-in scripts/ansible_test_get_pip.py does the same job with ensurepip + PyPI.
# ansible-test keeps all that under ~/.ansible/test; HOME points it to build/ansible-test-home so
# that the cache is ours (several people share this machine's ~/.ansible) and `make clean` drops it.
#
# Environment: SANITY_TESTS="pylint validate-modules" runs only those tests.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$root/.venv/bin:$PATH"
start=$SECONDS
mkdir -p build
# One run at a time on a machine: runs share build/sanity and the venv cache.
exec 9>build/.sanity.lock
if ! flock -n 9; then echo "sanity: waiting for another run to finish"; flock 9; fi

# Tests not run, with the reason (ansible-test is told to skip them so the summary says so).
skip=(
  # shellcheck and pwsh are not installed on the CI image (Debian 12, bindep.txt); ansible-test
  # would skip them by itself with a warning. The collection ships no PowerShell module code.
)
skip_args=()
for t in "${skip[@]}"; do skip_args+=(--skip-test "$t"); done

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
sed "s|@HOST_PYTHON@|$root/.venv/bin/python|" scripts/ansible_test_get_pip.py > "$cache"
# ansible-test passes only HOME and PATH to pip, so pip's options go in HOME's pip.conf: quiet,
# and no byte-compiling at install time (these venvs are small and that halves the install time).
printf '[global]\nquiet = 1\nno-compile = true\ndisable-pip-version-check = true\nprogress-bar = off\n' \
  > "$HOME/.config/pip/pip.conf"

dest=build/sanity/ansible_collections/hypervisor/network
rm -rf build/sanity && mkdir -p "$dest"
# tracked and untracked-but-not-ignored files; a tracked file deleted in the work tree is left out
git ls-files -co --exclude-standard -z \
  | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
  | xargs -0 cp --parents -t "$dest"
cd "$dest"
git init -q && git add -A >/dev/null

tests=()
if [ -n "${SANITY_TESTS:-}" ]; then
  for t in $SANITY_TESTS; do tests+=(--test "$t"); done
fi

echo "== ansible-test sanity (ansible-core $(python -c 'import ansible; print(ansible.__version__)'), Python 3.11, --local)"
rc=0
ansible-test sanity --python 3.11 --local --color no "${tests[@]}" "${skip_args[@]}" || rc=$?
echo "== ansible-test sanity: $([ $rc -eq 0 ] && echo passed || echo "FAILED (rc=$rc)") in $((SECONDS - start)) s"
exit $rc
