"""Read a unit's ExecStart= the way systemd does, to run a boot unit's command in a namespace.

Written from systemd.service(5) "Command lines" and systemd.unit(5) "Specifiers": words split at
white space; single and double quotes group; C-style backslash escapes; `%%` is a literal `%`
and `$$` a literal `$`. Independent of the collection's own quoting, so a test built on it
catches a unit whose command line systemd would read differently from what was meant.
"""

from __future__ import annotations

ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", " ": " ", "s": " "}


def _unescape(char):
    if char not in ESCAPES:
        raise ValueError("unsupported escape \\%s" % char)
    return ESCAPES[char]


def split(text):
    words = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        word = ""
        while i < len(text) and not text[i].isspace():
            char = text[i]
            if char in "'\"":
                end = i + 1
                while text[end] != char:
                    if text[end] == "\\":
                        word += _unescape(text[end + 1])
                        end += 2
                    else:
                        word += text[end]
                        end += 1
                i = end + 1
            elif char == "\\":
                word += _unescape(text[i + 1])
                i += 2
            else:
                word += char
                i += 1
        words.append(word.replace("%%", "%").replace("$$", "$"))
    return words


def exec_start(unit_text):
    """The argv of the one ExecStart= of ``unit_text``."""
    lines = [line for line in unit_text.splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1, unit_text
    return split(lines[0][len("ExecStart="):])


def boot(lab, unit_path):
    """What the oneshot unit runs at boot, run in a fresh namespace (an empty netfilter).
    Returns (namespace, CompletedProcess)."""
    fresh = lab.ns("boot")
    with open(unit_path, encoding="utf-8") as handle:
        argv = exec_start(handle.read())
    return fresh, lab.run(fresh, argv, check=False)
