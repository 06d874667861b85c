from __future__ import annotations

import pytest

from residency.policy.pack import PolicyPack


@pytest.fixture(scope="session")
def pack() -> PolicyPack:
    return PolicyPack.load()
