"""hyperv_host: the PowerShell the role would run, rendered and compared with reviewed golden files.

No Windows host exists here, so these tests prove what is sent, not what Windows does with it:
the role's ``render`` entry point writes the four scripts exactly as ``main`` would pass them to
ansible.windows.win_powershell (same lookup), for the inputs in tests/unit/fixtures/hyperv/<case>/
vars.yml; the output must equal the golden .ps1 files beside it. To regenerate after a reviewed
template change: ``UPDATE_GOLDEN=1 pytest tests/unit/roles/test_hyperv_host_render.py``, then read
the diff before committing. The role is also syntax-checked with the real ansible.windows taken
from the ``ansible`` package on PyPI when its wheel is in build/downloads/ (``pip download ansible
--no-deps -d build/downloads``); otherwise that one test is skipped and says so.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import jinja2
import pytest

from playbook_runner import REPO, run_playbook

ROLE = REPO / "roles" / "hyperv_host"
GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "hyperv"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "vars.yml").exists())
STEPS = ["01-switch.ps1", "02-address.ps1", "03-nat.ps1", "04-port_forwards.ps1"]

RENDER_PLAY = """
- hosts: localhost
  gather_facts: false
  vars_files:
    - {vars_file}
  tasks:
    - name: Render
      ansible.builtin.include_role:
        name: hypervisor.network.hyperv_host
        tasks_from: render
      vars:
        hyperv_host_render_dir: {out}
"""


def render(tmp, vars_file, check=True):
    out = Path(tmp) / "rendered"
    proc = run_playbook(tmp, RENDER_PLAY.format(vars_file=vars_file, out=out), check=check)
    return proc, out


@pytest.mark.parametrize("case", CASES)
def test_rendered_powershell_matches_golden(tmp_path, case):
    _proc, out = render(tmp_path, GOLDEN / case / "vars.yml")
    assert sorted(p.name for p in out.iterdir()) == STEPS
    for name in STEPS:
        golden = GOLDEN / case / name
        if os.environ.get("UPDATE_GOLDEN"):
            golden.write_text((out / name).read_text())
        assert (out / name).read_text() == golden.read_text(), "%s/%s differs from the golden file" % (case, name)


@pytest.mark.parametrize("bad, variable", [
    ("hyperv_host_switch_name: \"x'; Remove-Item C:\\\\ -Recurse; '\"", "hyperv_host_switch_name"),
    ("hyperv_host_nat_name: \"a`b\"", "hyperv_host_nat_name"),
    ("hyperv_host_address: 192.168.100.256", "hyperv_host_address"),
    ("hyperv_host_prefix: 192.168.100.0", "hyperv_host_prefix"),
    ("hyperv_host_port_forwards: [{external_port: 0, internal_ip: 192.168.100.10, internal_port: 22}]",
     "hyperv_host_port_forwards[0]"),
    ("hyperv_host_port_forwards: [{external_port: 80, internal_ip: \"$(evil)\", internal_port: 22}]",
     "hyperv_host_port_forwards[0]"),
    ("hyperv_host_port_forwards: [{external_port: 80, internal_ip: 192.168.100.10, internal_port: 1},"
     " {external_port: 80, internal_ip: 192.168.100.11, internal_port: 2}]", "appear twice"),
    ("hyperv_host_address: 192.168.101.1", "hyperv_host_address"),
    ("hyperv_host_prefix: 192.168.100.1/24", "hyperv_host_address"),
    ("hyperv_host_port_forwards: [{external_port: 80, internal_ip: 10.0.0.5, internal_port: 22}]",
     "hyperv_host_port_forwards[0].internal_ip"),
])
def test_bad_input_fails_naming_the_variable_and_renders_nothing(tmp_path, bad, variable):
    vars_file = tmp_path / "bad.yml"
    vars_file.write_text("---\n" + bad + "\n")
    proc, out = render(tmp_path, vars_file, check=False)
    assert proc.returncode != 0
    assert variable in proc.stdout
    assert not out.exists() or not any(out.iterdir())


def test_quote_macro_doubles_single_quotes():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")))
    macros = env.get_template("_ps.j2").module
    assert str(macros.q("it's")) == "'it''s'"
    assert str(macros.q("$(x) `n")) == "'$(x) `n'"  # single quotes expand nothing


@pytest.mark.parametrize("quote", ["\u2018", "\u2019", "\u201a", "\u201b"])
def test_quote_macro_doubles_typographic_single_quotes(quote):
    """PowerShell ends a single-quoted literal at any of these too; doubled, they stay text."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")))
    macros = env.get_template("_ps.j2").module
    assert str(macros.q("x%s; Remove-Item C:\\ -Recurse; %s" % (quote, quote))) == (
        "'x%s%s; Remove-Item C:\\ -Recurse; %s%s'" % (quote, quote, quote, quote))
    assert str(macros.q("a'%sb" % quote)) == "'a''%s%sb'" % (quote, quote)


@pytest.mark.parametrize("bad, variable", [
    ('hyperv_host_switch_name: "hnet\\n"', "hyperv_host_switch_name"),
    ('hyperv_host_address: "192.168.100.1\\n"', "hyperv_host_address"),
])
def test_a_trailing_newline_is_refused(tmp_path, bad, variable):
    """The allow-list patterns end in \\Z: '$' would let a value ending in a newline through."""
    vars_file = tmp_path / "bad.yml"
    vars_file.write_text("---\n" + bad + "\n")
    proc, out = render(tmp_path, vars_file, check=False)
    assert proc.returncode != 0
    assert variable in proc.stdout
    assert not out.exists() or not any(out.iterdir())


def _ansible_windows_collections():
    """A collections dir holding ansible.windows, unpacked from the ansible wheel if present."""
    target = REPO / "build" / "extra_collections"
    if (target / "ansible_collections" / "ansible" / "windows" / "plugins").is_dir():
        return target
    wheels = sorted((REPO / "build" / "downloads").glob("ansible-*.whl"))
    if not wheels:
        return None
    with zipfile.ZipFile(wheels[-1]) as wheel:
        members = [m for m in wheel.namelist() if m.startswith("ansible_collections/ansible/windows/")]
        wheel.extractall(target, members)
    return target


def test_syntax_check_with_ansible_windows(tmp_path):
    extra = _ansible_windows_collections()
    if extra is None:
        pytest.skip("ansible.windows not available offline: put the ansible wheel in build/downloads "
                    "(pip download ansible --no-deps -d build/downloads) to syntax-check the main entry point")
    play = "- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: hypervisor.network.hyperv_host\n"
    proc = run_playbook(tmp_path, play, "--syntax-check", check=False,
                        ANSIBLE_COLLECTIONS_PATH="%s:%s" % (REPO / "build" / "collections", extra))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # and the module name really resolves to ansible.windows' win_powershell
    assert (extra / "ansible_collections" / "ansible" / "windows" / "plugins" / "modules" / "win_powershell.ps1").exists()
