# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Runner with a real AnsibleModule, real commands and real files in a temp dir: reads run,
changes run only outside check mode, commands are recorded, files are written atomically with the
right mode and fsynced before the rename."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ansible.module_utils import basic

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core before 2.19 has no such helper: hand the arguments over as it read them
    import contextlib
    import json

    @contextlib.contextmanager
    def patch_module_args(args):
        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved

from ansible_collections.hypervisor.network.plugins.module_utils._errors import CommandError, HypervisorNetworkError
from ansible_collections.hypervisor.network.plugins.module_utils._runner import Completed, Runner

REPO = Path(__file__).resolve().parents[4]


def real_module(check_mode=False):
    """An AnsibleModule built the way Ansible builds one, from its serialised arguments (ansible's
    own testing helper hands them over; nothing of the module is replaced)."""
    with patch_module_args({"_ansible_check_mode": check_mode}):
        return basic.AnsibleModule(argument_spec={}, supports_check_mode=True)


@pytest.fixture
def runner():
    return Runner(real_module())


@pytest.fixture
def dry():
    return Runner(real_module(check_mode=True))


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# -- commands -------------------------------------------------------------------------------

def test_read_runs_in_the_c_locale(runner):
    rc, out, _err = runner.read(["sh", "-c", 'echo "$LC_ALL"'])
    assert rc == 0 and out == "C\n"
    assert runner.commands == [], "reads are not changes"


def test_argv_reaches_the_command_as_given(runner, tmp_path):
    """Regression: run_command expanded '$VAR' and '~' in every argv element by default, so a
    value such as a comment 'cost $HOME' or a path with '~' changed on its way to the command."""
    _rc, out, _err = runner.read(["printf", "%s|", "$HOME", "~", "a b", "x;y", "$(id)"])
    assert out == "$HOME|~|a b|x;y|$(id)|"
    runner.change(["touch", str(tmp_path / "~$HOME")])
    assert (tmp_path / "~$HOME").exists()


def test_read_runs_in_check_mode_too(dry):
    assert dry.read(["echo", "hello"])[1] == "hello\n"


def test_a_failed_read_raises_with_rc_and_output(runner):
    with pytest.raises(CommandError) as info:
        runner.read(["sh", "-c", "echo oops >&2; exit 3"])
    assert info.value.details["rc"] == 3 and info.value.details["stderr"] == "oops\n"
    assert "rc=3" in info.value.msg and "oops" in info.value.msg
    assert runner.read(["sh", "-c", "exit 3"], check_rc=False)[0] == 3


def test_cached_reads_are_answered_once_until_a_change(runner, tmp_path):
    counter = tmp_path / "count"
    argv = ["sh", "-c", "echo x >> %s; wc -l < %s" % (counter, counter)]
    assert runner.read(argv, cached=True)[1].strip() == "1"
    assert runner.read(argv, cached=True)[1].strip() == "1"
    assert runner.read(argv)[1].strip() == "2", "uncached reads always run"
    runner.change(["true"])
    assert runner.read(argv, cached=True)[1].strip() == "3", "a change clears the cache"


def test_prefetched_reads_run_at_once_and_answer_the_cached_reads(runner, tmp_path):
    """The two reads meet through a FIFO: opening it for writing waits for a reader, so one
    after the other, the first would wait until its timeout (rc 124). The reads then come from
    memory (the counter moves once); a command that is not installed is reported by the read."""
    fifo = tmp_path / "meet"
    os.mkfifo(fifo)
    counter = tmp_path / "count"
    writer = ["timeout", "20", "sh", "-c", "echo hello > %s; echo x >> %s; echo wrote" % (fifo, counter)]
    reader = ["timeout", "20", "cat", str(fifo)]
    runner.prefetch([writer, reader, ["no-such-command-here"]])
    assert runner.read(reader, cached=True) == (0, "hello\n", "")
    assert runner.read(writer, cached=True) == (0, "wrote\n", "")
    assert counter.read_text() == "x\n"
    assert runner.read(["sh", "-c", 'echo "$LC_ALL"'], cached=True)[1] == "C\n"
    with pytest.raises(HypervisorNetworkError, match="no-such-command-here"):
        runner.read(["no-such-command-here"], cached=True)


def test_read_json(runner):
    assert runner.read_json(["echo", '{"a": [1]}']) == {"a": [1]}
    assert runner.read_json(["printf", ""]) is None
    with pytest.raises(CommandError, match="printed no valid JSON"):
        runner.read_json(["echo", "{nope"])


def test_change_runs_and_is_recorded(runner, tmp_path):
    target = tmp_path / "made"
    runner.change(["touch", str(target)])
    assert target.exists()
    runner.change(["sh", "-c", "cat > %s" % (tmp_path / "fed")], data="script\n", shown="feed script")
    assert (tmp_path / "fed").read_text() == "script\n"
    assert runner.commands == ["touch %s" % target, "feed script"]


def test_change_in_check_mode_records_and_runs_nothing(dry, tmp_path):
    target = tmp_path / "made"
    assert dry.change(["touch", str(target)]) == Completed(ran=False, rc=0, out="", err="")
    assert not target.exists()
    assert dry.commands == ["touch %s" % target]


def test_change_says_whether_it_ran(runner, dry, tmp_path):
    """A caller keeps account of the host by what really ran, never by asking the check mode."""
    done = runner.change(["sh", "-c", "echo out; echo err >&2; touch %s" % (tmp_path / "ran")])
    assert done == Completed(ran=True, rc=0, out="out\n", err="err\n")
    assert (tmp_path / "ran").exists()
    assert dry.change(["sh", "-c", "touch %s" % (tmp_path / "dry")]).ran is False
    assert not (tmp_path / "dry").exists()


def test_call_without_shown_runs_and_records_nothing(runner, dry):
    """The collection's own bookkeeping (a rollback watcher) goes through the one guard too,
    but is no command of the result."""
    assert runner.call(None, lambda value: value * 2, 21) == 42
    assert runner.commands == []
    called = []
    assert dry.call(None, called.append, "x") is None
    assert called == [] and dry.commands == []


def test_a_failed_change_raises(runner):
    with pytest.raises(CommandError) as info:
        runner.change(["false"])
    assert info.value.details["rc"] == 1


def test_a_missing_command_is_a_clear_error(runner):
    with pytest.raises(HypervisorNetworkError, match="'hnet-no-such-tool' is not installed"):
        runner.read(["hnet-no-such-tool"])
    assert runner.has("hnet-no-such-tool") is False and runner.has("sh") is True


# -- files ----------------------------------------------------------------------------------

def test_a_new_file_gets_0644_whatever_the_umask(runner, tmp_path):
    path = tmp_path / "sub" / "new.conf"
    old = os.umask(0o077)
    try:
        assert runner.write_file(str(path), "a\n") is True
    finally:
        os.umask(old)
    assert path.read_text() == "a\n" and mode_of(path) == 0o644
    assert runner.commands == ["write %s" % path]
    assert [p.name for p in path.parent.iterdir()] == ["new.conf"], "a temp file was left behind"


def test_same_content_writes_nothing(runner, tmp_path):
    path = tmp_path / "same.conf"
    path.write_text("a\n")
    os.chmod(path, 0o644)
    inode = os.stat(path).st_ino
    assert runner.write_file(str(path), "a\n") is False
    assert runner.commands == [] and os.stat(path).st_ino == inode


def test_an_existing_file_keeps_its_mode(runner, tmp_path):
    """Regression: the default mode 0644 was forced on a file an admin had made 0600."""
    path = tmp_path / "sysctl.conf"
    path.write_text("old\n")
    os.chmod(path, 0o600)
    assert runner.write_file(str(path), "new\n") is True
    assert path.read_text() == "new\n" and mode_of(path) == 0o600


def test_a_given_mode_is_enforced(runner, tmp_path):
    path = tmp_path / "keyfile.nmconnection"
    path.write_text("old\n")
    os.chmod(path, 0o644)
    assert runner.write_file(str(path), "new\n", mode=0o600) is True
    assert mode_of(path) == 0o600


def test_a_wrong_mode_is_corrected_when_the_content_is_the_same(runner, dry, tmp_path):
    """Regression: with unchanged content a wrong mode was left as it was."""
    path = tmp_path / "keyfile.nmconnection"
    path.write_text("same\n")
    os.chmod(path, 0o644)
    assert dry.write_file(str(path), "same\n", mode=0o600) is True
    assert dry.commands == ["chmod 0600 %s" % path] and mode_of(path) == 0o644, "check mode changed the mode"
    assert runner.write_file(str(path), "same\n", mode=0o600) is True
    assert runner.commands == ["chmod 0600 %s" % path] and mode_of(path) == 0o600
    assert runner.write_file(str(path), "same\n", mode=0o600) is False


def test_check_mode_writes_nothing(dry, tmp_path):
    path = tmp_path / "dir" / "x.conf"
    assert dry.write_file(str(path), "a\n") is True
    assert dry.commands == ["write %s" % path]
    assert not path.parent.exists()


def test_a_file_that_is_not_text_is_replaced(runner, tmp_path):
    path = tmp_path / "binary.conf"
    path.write_bytes(b"\xff\xfe")
    assert runner.write_file(str(path), "text\n") is True
    assert path.read_text() == "text\n"


def test_the_data_is_fsynced_before_the_rename(tmp_path):
    """Regression: without fsync a crash right after the rename can leave an empty file. Traced
    with strace on a real run: the temp file's fsync comes before the rename onto the path."""
    script = tmp_path / "write.py"
    target = tmp_path / "out.conf"
    script.write_text(textwrap.dedent("""
        import sys
        sys.path[:0] = [%r, %r]
        from test_runner import real_module
        from ansible_collections.hypervisor.network.plugins.module_utils._runner import Runner
        Runner(real_module()).write_file(%r, "data\\n")
    """ % (str(REPO / "build" / "collections"), str(Path(__file__).parent), str(target))))
    trace = tmp_path / "trace"
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2", "-o", str(trace),
                    sys.executable, str(script)], check=True, cwd=str(REPO), timeout=120)
    calls = [line.split(None, 1)[1] for line in trace.read_text().splitlines() if "(" in line]
    renames = [i for i, call in enumerate(calls) if call.startswith("rename") and str(target) in call]
    syncs = [i for i, call in enumerate(calls) if call.startswith(("fsync", "fdatasync"))]
    assert target.read_text() == "data\n"
    assert renames, calls
    assert syncs and syncs[0] < renames[0], calls


def test_remove_file(runner, dry, tmp_path):
    path = tmp_path / "gone.conf"
    path.write_text("x")
    assert dry.remove_file(str(path)) is True and path.exists()
    assert runner.remove_file(str(path)) is True and not path.exists()
    assert runner.remove_file(str(path)) is False
    assert dry.commands == runner.commands == ["remove %s" % path]


def test_a_command_that_cannot_take_its_input_is_a_typed_error(runner):
    """Regression: run_command handled OSError itself (fail_json), so a tool that exits without
    reading its stdin (a broken pipe) ended the module before the caller could roll back."""
    with pytest.raises(CommandError) as failed:
        runner.change(["true"], data=b"x" * (4 << 20))
    assert failed.value.details["cmd"][0].endswith("/true") and failed.value.details["rc"] != 0


def test_call_records_and_runs_only_outside_check_mode():
    from ansible_collections.hypervisor.network.plugins.module_utils._runner import Runner

    class _M:
        def __init__(self, check):
            self.check_mode = check

    ran = []
    checked = Runner(_M(True))
    assert checked.call("virsh net-define x", ran.append, 1) is None
    assert checked.commands == ["virsh net-define x"] and ran == []
    live = Runner(_M(False))
    live.call("virsh net-start x", ran.append, 2)
    assert live.commands == ["virsh net-start x"] and ran == [2]
