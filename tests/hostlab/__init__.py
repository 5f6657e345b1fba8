"""Real Debian hosts for the tests: images built from Debian packages and VMs reached over SSH."""
