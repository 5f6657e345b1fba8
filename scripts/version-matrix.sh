#!/usr/bin/env bash
# The ansible-core range we claim is the range we test (make version-matrix, part of make test).
#
# For every ansible-core release line in meta/runtime.yml's requires_ansible range other than the
# one .venv pins (that one runs the whole suite), a venv build/venv-core-<line> with that
# ansible-core and the same test pins as requirements.txt runs:
#   - ansible-test sanity: the tests whose verdict depends on the ansible-core version
#     (validate-modules: docs against argument specs; ansible-doc; import: module_utils against
#     that ansible's; runtime-metadata: meta/runtime.yml's schema, action_groups included);
#     pylint, compile (same Python) and the file-content checks run once, on the pinned version
#     (make sanity);
#   - the unit tests;
#   - a fast slice of integration: the netfilter modules' documented examples on a real kernel,
#     and the libvirt test: libvirt_network, diagnose, port_forward and masquerade through
#     ansible-playbook with module_defaults groups and the netns connection, on a real libvirtd.
# The venvs are made once and kept (build/ is ours; make clean drops them); a version's line is
# printed with what passed on it. Environment: MATRIX_CORES="2.16.19 2.17.14" picks versions,
# MATRIX_PARTS="unit integration" picks parts (sanity unit integration).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
root=$PWD
cores=${MATRIX_CORES:-"2.16.19 2.17.14 2.18.19"}
parts=${MATRIX_PARTS-"sanity unit integration"}  # empty: only make the venvs
start=$SECONDS
mkdir -p build
# the test tools at the versions requirements.txt pins, so the only difference is ansible-core
pins=()
for pkg in pytest hypothesis libvirt-python; do
  pins+=("$(grep -E "^$pkg==" requirements.txt)")
done
slice=(
  tests/integration/test_netfilter_examples.py
  tests/integration/test_action_groups.py
)

make_venv() {  # core venv want: a venv with exactly these pins, .pins written only on success
  local core=$1 venv=$2 want=$3
  rm -rf "$venv"
  python3 -m venv "$venv" || return 1
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q --disable-pip-version-check $want 2>&1 | grep -v "^WARNING: Location" || true
  "$venv/bin/python" -c 'import ansible, pytest, libvirt' || return 1
  echo "$want" >"$venv/.pins"
}

declare -A verdict
rc=0
# Missing venvs are made side by side: mostly downloads and one libvirt-python build each.
for core in $cores; do
  venv=$root/build/venv-core-${core%.*}
  want="ansible-core==$core ${pins[*]}"
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.pins" 2>/dev/null)" != "$want" ]; then
    echo "== making $venv ($want)"
    make_venv "$core" "$venv" "$want" >"build/matrix-${core%.*}-venv.log" 2>&1 &
  fi
done
wait
for core in $cores; do
  line=${core%.*}
  venv=$root/build/venv-core-$line
  want="ansible-core==$core ${pins[*]}"
  if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$want" ]; then
    verdict[$core]="ansible-core $core: venv FAILED (build/matrix-$line-venv.log)"
    tail -20 "build/matrix-$line-venv.log" | sed 's/^/   /'
    rc=1
    continue
  fi
  got=$("$venv/bin/python" -c 'import ansible.release; print(ansible.release.__version__)')
  results=()
  for part in $parts; do
    t0=$SECONDS
    case $part in
      sanity)
        SANITY_VENV=$venv SANITY_TESTS="validate-modules ansible-doc import runtime-metadata" \
          SANITY_DIR=build/sanity-core-$line scripts/sanity.sh >"build/matrix-$line-sanity.log" 2>&1 ;;
      unit)
        "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit >"build/matrix-$line-unit.log" 2>&1 ;;
      integration)
        "$venv/bin/python" -m pytest -q -p no:cacheprovider "${slice[@]}" >"build/matrix-$line-integration.log" 2>&1 ;;
    esac
    r=$?
    summary=$(grep -hE '^[0-9]+ (passed|failed)|[0-9]+ passed|== ansible-test sanity: ' "build/matrix-$line-$part.log" | tail -1 | sed 's/^== ansible-test sanity: //; s/=//g; s/^ *//; s/ *$//')
    if [ $r -eq 0 ]; then
      results+=("$part ok ($summary, $((SECONDS - t0)) s)")
    else
      results+=("$part FAILED ($summary; build/matrix-$line-$part.log)")
      rc=1
      tail -30 "build/matrix-$line-$part.log" | sed 's/^/   /'
    fi
  done
  joined=$(IFS=';'; echo "${results[*]}")
  verdict[$core]="ansible-core $got: ${joined//;/; }"
done

echo "== version matrix (Python $(python3 -c 'import platform; print(platform.python_version())'))"
for core in $cores; do echo "   ${verdict[$core]}"; done
echo "== version matrix $([ $rc -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - start)) s"
exit $rc
