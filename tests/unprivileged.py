"""Run the edgekd CLI where file permissions hold (root ignores chmod), for tests of unreadable and
read-only folders.

    from unprivileged import edgekd_cli
    r = edgekd_cli(["data", "inspect", str(folder)], env={"EDGEKD_HOME": str(home)})  # CompletedProcess

As root the command runs without the two capabilities that bypass permissions (setpriv drops
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its bounding set), so a chmod 000 folder stops it as it
stops any user; where that cannot be done the test is skipped.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys

import pytest

DROP = ["--bounding-set", "-dac_override,-dac_read_search", "--"]


@functools.lru_cache(maxsize=1)
def _prefix() -> tuple[str, ...] | None:
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None or subprocess.run([setpriv, *DROP, "true"], capture_output=True).returncode != 0:
        return None
    return (setpriv, *DROP)


def edgekd_cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    prefix = _prefix()
    if prefix is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    return subprocess.run([*prefix, sys.executable, "-m", "edgekd", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)
