"""The stack tests' tiny world (300 tracks) and catalog-only experiments, shared here."""

from tests.stack.conftest import sticky_experiments, world_dir  # noqa: F401 - fixtures
