from __future__ import annotations

import pytest

from tests.access.world import World, build_world


@pytest.fixture
def world(db) -> World:
    """The access world (see ``tests/access/world.py``), built once per test through the services."""
    return build_world()
