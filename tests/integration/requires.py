"""Tools the tests run that scripts/deps.sh installs: a missing one is a broken
install, so the test fails naming the Debian package, never skips (a skip would
hide it).

  require_tool("go", "golang-go")   the tool's path on PATH, or pytest.fail
"""
import shutil

import pytest


def require_tool(name, package):
    """The path of `name` on PATH; fails the test, naming the Debian package that
    scripts/deps.sh test installs it from, when it is missing."""
    path = shutil.which(name)
    if not path:
        pytest.fail("%s not found on PATH: apt-get install %s (scripts/deps.sh test)"
                    % (name, package))
    return path
