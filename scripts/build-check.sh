#!/usr/bin/env bash
# Build check (make build-check): the collection tarball builds, installs offline (no Galaxy) into
# an empty collections path, and is complete: ansible-doc finds its modules, plugins and roles
# there and nothing but the collection's own content went in (no .venv, build, caches).
# The declared dependency (ansible.windows) is installed offline as well, from the copy inside the
# pinned ansible wheel that make deps fetched (build/downloads): Galaxy is never asked.
# Then the execution environment: ansible-builder introspect reads the installed collection's
# meta/execution-environment.yml (runtime lists only, no ansible-core, no test tools) and
# ansible-builder create renders a build context (build/ee-context) that installs the collection.
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
# Development-only files stay out (galaxy.yml build_ignore says why each one).
bad+=$'\n'$(tar -tzf "$tarball" | grep -E '^(bench|scripts)/|^(Makefile|requirements\.txt|bindep\.txt|ansible\.cfg)$' || true)
bad=$(sed '/^$/d' <<<"$bad")
# The runtime content, the docs, the changelog, the EE definition and the tests go in.
listing=$(tar -tzf "$tarball")
for must in MANIFEST.json README.md CHANGELOG.rst changelogs/changelog.yaml meta/runtime.yml \
            meta/execution-environment.yml meta/ee-requirements.txt meta/ee-bindep.txt docs/DEVELOPING.md tests/unit; do
  grep -qE "^$must(/|$)" <<<"$listing" || problems+=("$must is missing from the tarball")
done
if [ -n "$bad" ]; then
  echo "   unwanted paths in the tarball:"
  head -20 <<<"$bad" | while IFS= read -r path; do echo "     $path"; done
  problems+=("unwanted paths in the tarball (see galaxy.yml build_ignore)")
fi
if [ "$kib" -gt "$max_kib" ]; then
  problems+=("tarball is $kib KiB, more than $max_kib KiB: something big slipped in")
fi

# A collection artifact is its installed tree (MANIFEST.json, FILES.json, files) as a tarball, so
# the ansible.windows inside the ansible wheel becomes one without a network.
deps_dir=$install_root/deps
mkdir -p "$deps_dir/unpacked"
wheel=$(find build/downloads/ -maxdepth 1 -name 'ansible-*.whl' 2>/dev/null | sort -V | tail -1 || true)
dep_tarballs=()
if [ -z "$wheel" ]; then
  problems+=("no ansible wheel in build/downloads (make deps fetches it): the ansible.windows dependency cannot be installed offline")
else
  if ! python - "$wheel" "$deps_dir" <<'PYEOF'
import hashlib, json, pathlib, sys, tarfile, yaml, zipfile
wheel, out = sys.argv[1], pathlib.Path(sys.argv[2])
deps = yaml.safe_load(open("galaxy.yml"))["dependencies"] or {}
with zipfile.ZipFile(wheel) as zf:
    for fqcn in deps:
        ns, name = fqcn.split(".")
        prefix = "ansible_collections/%s/%s/" % (ns, name)
        members = [m for m in zf.namelist() if m.startswith(prefix) and not m.endswith("/")]
        if not members:
            sys.exit("build-check: %s is not in %s" % (fqcn, wheel))
        zf.extractall(out / "unpacked", members)
        src = out / "unpacked" / prefix
        # The ansible package leaves out the collection's tests and CI files but keeps their
        # FILES.json entries: list only what is there, and re-sign FILES.json in MANIFEST.json.
        files_json = json.loads((src / "FILES.json").read_text())
        present = lambda entry: (src / entry["name"]).is_dir() if entry["ftype"] == "dir" else (src / entry["name"]).is_file()
        files_json["files"] = [e for e in files_json["files"] if e["name"] == "." or present(e)]
        (src / "FILES.json").write_text(json.dumps(files_json))
        manifest = json.loads((src / "MANIFEST.json").read_text())
        manifest["file_manifest_file"]["chksum_sha256"] = hashlib.sha256((src / "FILES.json").read_bytes()).hexdigest()
        (src / "MANIFEST.json").write_text(json.dumps(manifest))
        version = manifest["collection_info"]["version"]
        with tarfile.open(out / ("%s-%s-%s.tar.gz" % (ns, name, version)), "w:gz") as tar:
            for path in sorted(src.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(src)), recursive=False)
PYEOF
  then
    problems+=("the dependencies in galaxy.yml could not be taken from $wheel")
  fi
  for t in "$deps_dir"/*.tar.gz; do [ -f "$t" ] && dep_tarballs+=("$t"); done
fi

echo "== ansible-galaxy collection install --offline (with its dependencies) -> $install_root"
# --force: a copy installed elsewhere (~/.ansible/collections) must not make this a no-op.
# Without --no-deps: galaxy.yml's dependencies must resolve against the tarballs given here.
ANSIBLE_COLLECTIONS_PATH=$install_root \
  ansible-galaxy collection install --offline --force -p "$install_root" "$tarball" "${dep_tarballs[@]}" 2>&1 \
  | grep -v 'is not part of the configured Ansible collections paths' | sed 's/^/   /'
installed=$install_root/ansible_collections/$namespace/$name
[ -f "$installed/MANIFEST.json" ] || problems+=("MANIFEST.json missing from the installed collection")
# every declared dependency is installed, at a version inside the declared range
if ! python - "$install_root" <<'PYEOF'
import json, pathlib, sys, yaml
from ansible.galaxy.dependency_resolution.versioning import meets_requirements
root = pathlib.Path(sys.argv[1]) / "ansible_collections"
bad = 0
for fqcn, spec in (yaml.safe_load(open("galaxy.yml"))["dependencies"] or {}).items():
    manifest = root.joinpath(*fqcn.split("."), "MANIFEST.json")
    if not manifest.is_file():
        print("   FAIL  dependency %s is not installed" % fqcn); bad = 1; continue
    version = json.loads(manifest.read_text())["collection_info"]["version"]
    ok = meets_requirements(version, spec)
    print("   %s  dependency %s %s (galaxy.yml: %s)" % ("ok  " if ok else "FAIL", fqcn, version, spec))
    bad |= not ok
sys.exit(bad)
PYEOF
then
  problems+=("declared dependencies missing or outside their range")
fi

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

echo "== execution environment: ansible-builder introspect of the installed collection"
cd "$tree"
if ! ansible-builder introspect --sanitize --write-pip "$install_root/ee-pip.txt" --write-bindep "$install_root/ee-bindep.txt" \
    "$install_root" >"$install_root/introspect.out" 2>&1; then
  sed 's/^/   /' "$install_root/introspect.out"
  problems+=("ansible-builder introspect failed on the installed collection")
fi
if ! python - "$install_root" <<'PYEOF'
import pathlib, re, sys
from bindep.depends import Depends
root = pathlib.Path(sys.argv[1])
def entries(path):
    lines = path.read_text().splitlines() if path.is_file() else []
    return [re.sub(r"\s*#.*", "", line).strip() for line in lines if re.sub(r"\s*#.*", "", line).strip()]
pip = entries(root / "ee-pip.txt")
bindep = entries(root / "ee-bindep.txt")
ours_pip = entries(pathlib.Path("meta/ee-requirements.txt"))
ours_bindep = entries(pathlib.Path("meta/ee-bindep.txt"))
bad = []
if sorted(pip) != sorted(ours_pip):
    bad.append("the EE's Python list %s is not meta/ee-requirements.txt %s" % (pip, ours_pip))
if sorted(bindep) != sorted(ours_bindep):
    bad.append("the EE's system list is not meta/ee-bindep.txt (missing: %s)" % sorted(set(ours_bindep) - set(bindep)))
Depends("\n".join(ours_bindep) + "\n")  # raises on a line bindep cannot parse
for name in ("ansible", "ansible-core", "pytest", "hypothesis", "molecule", "ansible-lint"):
    if any(re.match(r"%s\b(?![-_])" % re.escape(name), line, re.I) for line in pip):
        bad.append("%s is a test or controller tool, not an EE runtime need" % name)
if any("==" in line for line in pip):
    bad.append("exact pins in the EE's Python list fight other collections: %s" % pip)
for line in bad:
    print("   FAIL  " + line)
print("   %s  %d Python and %d system requirements, runtime only" % ("ok  " if not bad else "FAIL", len(pip), len(bindep)))
sys.exit(1 if bad else 0)
PYEOF
then
  problems+=("meta/execution-environment.yml: the EE lists (see above)")
fi

echo "== execution environment: ansible-builder create -> build/ee-context"
# A definition a user would write: the collection and its dependency from their tarballs (copied
# into the context), ansible-core from the range meta/runtime.yml claims. create renders the
# Containerfile and the context without a container runtime; building the image is not done here.
ee_def=$install_root/execution-environment.yml
requires=$(python -c 'import yaml; print(yaml.safe_load(open("meta/runtime.yml"))["requires_ansible"])')
{
  echo "---"
  echo "version: 3"
  echo "images:"
  echo "  base_image:"
  echo "    name: registry.access.redhat.com/ubi9/python-311:latest"
  echo "dependencies:"
  echo "  python_interpreter:"
  echo "    python_path: /usr/bin/python3.11"
  echo "  ansible_core:"
  echo "    package_pip: 'ansible-core${requires}'"
  echo "  ansible_runner:"
  echo "    package_pip: ansible-runner"
  echo "  galaxy:"
  echo "    collections:"
  for t in "$tarball" "${dep_tarballs[@]}"; do
    echo "      - name: collections/$(basename "$t")"
    echo "        type: file"
  done
  echo "additional_build_files:"
  for t in "$tarball" "${dep_tarballs[@]}"; do
    echo "  - src: $(realpath "$t")"
    echo "    dest: collections"
  done
} >"$ee_def"
rm -rf build/ee-context
if ansible-builder create -f "$ee_def" -c build/ee-context --output-filename Containerfile >"$install_root/create.out" 2>&1 \
   && [ -f build/ee-context/Containerfile ] && [ -f "build/ee-context/_build/collections/$(basename "$tarball")" ]; then
  cp "$ee_def" build/ee-context/execution-environment.yml
  echo "   ok    build/ee-context: Containerfile and $(find build/ee-context -type f | wc -l) files"
else
  sed 's/^/   /' "$install_root/create.out"
  problems+=("ansible-builder create did not render a build context")
fi

if [ ${#problems[@]} -gt 0 ]; then
  echo "== build-check FAILED in $((SECONDS - start)) s:"
  printf '   - %s\n' "${problems[@]}"
  exit 1
fi
echo "== build-check passed in $((SECONDS - start)) s: $tree/$tarball ($kib KiB, $files files)"
