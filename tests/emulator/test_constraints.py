"""The committed constraints fixture is what botocore's models say (constraints.py --check)."""

from __future__ import annotations

import constraints


def test_the_constraints_fixture_is_current() -> None:
    assert constraints.main(["--check"]) == 0, "run tests/emulator/constraints.py and commit the fixture"
