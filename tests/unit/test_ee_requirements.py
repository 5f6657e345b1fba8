"""The execution environment lists are the plugins' real runtime needs.

An EE built with ansible-builder gets exactly what meta/execution-environment.yml names, so an
import that is missing from meta/ee-requirements.txt fails only on a user's AWX, at run time.
Every import of plugins/ outside the standard library and Ansible must be listed there, under
its PyPI name; nothing else may be (no test tools, no ansible-core, no exact pins).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
# import name -> the PyPI distribution that provides it
DISTRIBUTION = {"libvirt": "libvirt-python"}
ANSIBLE = {"ansible", "ansible_collections", "__future__"}


def third_party_imports():
    """{top-level import name: [files that import it]} for every plugins/ file, at any depth
    (imports inside functions and try blocks count: they run on the target too)."""
    found = {}
    for path in sorted((REPO / "plugins").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ANSIBLE:
                    found.setdefault(top, []).append(str(path.relative_to(REPO)))
    return found


def ee_requirements():
    definition = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    listed = REPO / definition["dependencies"]["python"]
    lines = [re.sub(r"#.*", "", line).strip() for line in listed.read_text().splitlines()]
    return [line for line in lines if line]


def requirement_name(line):
    return re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0].lower()


def test_every_third_party_import_of_plugins_is_in_the_ee_list():
    listed = {requirement_name(line) for line in ee_requirements()}
    imports = third_party_imports()
    assert imports, "the walk found no third-party import at all (libvirt is one): the test is broken"
    missing = {name: files for name, files in imports.items() if DISTRIBUTION.get(name, name).lower() not in listed}
    assert not missing, "imported by plugins/ but not in meta/ee-requirements.txt: %s" % missing


def test_the_ee_list_holds_runtime_needs_only():
    lines = ee_requirements()
    needed = {DISTRIBUTION.get(name, name).lower() for name in third_party_imports()}
    stale = [line for line in lines if requirement_name(line) not in needed]
    assert not stale, "listed in meta/ee-requirements.txt but imported by no plugin: %s" % stale
    assert not [line for line in lines if "==" in line], "exact pins fight other collections in one EE"


def test_the_ee_files_ship_in_the_collection():
    """ansible-builder reads them from the installed collection: build_ignore must not drop them."""
    ignored = yaml.safe_load((REPO / "galaxy.yml").read_text())["build_ignore"]
    definition = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    for path in ["meta/execution-environment.yml"] + list(definition["dependencies"].values()):
        assert (REPO / path).is_file(), path
        assert not any(path == pattern or path.startswith(pattern.rstrip("/") + "/") for pattern in ignored), path


def test_modules_parse_on_the_oldest_target_python_we_claim():
    """tests/config.yml's python_requires is what the modules promise to a target; only 3.11 runs
    here, so at least the grammar of the oldest claimed version is checked for every file that
    runs on a target (modules and module_utils)."""
    spec = yaml.safe_load((REPO / "tests" / "config.yml").read_text())["modules"]["python_requires"]
    oldest = tuple(int(part) for part in re.match(r">=\s*(\d+)\.(\d+)", spec).groups())
    for sub in ("modules", "module_utils"):
        for path in sorted((REPO / "plugins" / sub).rglob("*.py")):
            ast.parse(path.read_text(), str(path), feature_version=oldest)
