"""Stand-in for ansible-test's get-pip bootstrap script (scripts/sanity.sh installs it).

ansible-test creates its sanity virtual environments without pip, then runs a get-pip.py that it
downloads from ci-files.testing.ansible.com (not reachable from CI). This does the same job from
what is reachable: the pip of the project's .venv installs the requested pip version (and any
other packages given) from the package index into the new environment (pip --python).

It is run as `python get_pip_X_Y.py [pip options] pip==X.Y [--no-setuptools] [--no-wheel]`;
sanity.sh replaces HOST_PYTHON below with the .venv's interpreter when it installs the copy.
"""

import subprocess
import sys

HOST_PYTHON = '@HOST_PYTHON@'


def main():
    args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
    cmd = [HOST_PYTHON, '-m', 'pip', '--python', sys.executable, 'install', '--upgrade'] + args
    sys.exit(subprocess.call(cmd))


if __name__ == '__main__':
    main()
