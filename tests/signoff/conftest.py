from __future__ import annotations

# The deployment proposal and the evidence live in tests/fixtures_deployment.py with the shared
# deployed-model fixtures; re-exported for the tests that import them from here.
from tests.fixtures_deployment import EVIDENCE, deployment  # noqa: F401
