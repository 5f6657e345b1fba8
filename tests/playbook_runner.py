"""Run a playbook on localhost with this checkout as the collection, for role tests.

``path_first`` puts directories (stand-ins for tools that cannot be installed here) first on PATH.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def ansible_env(path_first=(), **extra):
    path = ":".join([str(p) for p in path_first] + [str(BIN), os.environ["PATH"]])
    env = dict(os.environ, PATH=path, ANSIBLE_COLLECTIONS_PATH=str(REPO / "build" / "collections"),
               ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    env.update(extra)
    return env


def run_playbook(tmp, text, *args, path_first=(), check=True, **extra_env):
    playbook = Path(tmp) / "play.yml"
    playbook.write_text(text)
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)] + list(args),
                          capture_output=True, text=True, env=ansible_env(path_first, **extra_env), timeout=300, cwd=str(REPO),
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout + proc.stderr)
    return proc


def recap_changed(output):
    line = [line for line in output.splitlines() if line.startswith("localhost")][-1]
    return int(line.split("changed=")[1].split()[0])
