"""Fixtures shared by the emulator's test modules.

``endpoint`` is module-scoped: every test module starts its own emulator (through
the launcher, on a free port, phases of 0.1 s), so a module that changes the
server's config at run time does not reach the others. The helpers the tests
call are in ``emulator_testkit.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Iterator

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # the emulator's modules and emulator_testkit, whatever pytest's import mode


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """The URL of a fresh emulator process, stopped at the end of the module."""
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "ferry_emulator.py"), "--port", "0",
         "--phase-seconds", "0.1", "--parent-pid", str(os.getpid())],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=20)
    if not line or not line[0].startswith("READY "):
        proc.kill()
        pytest.fail(f"emulator did not print READY within 20 s (got {line!r})")
    port = int(line[0].split()[1])
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)
