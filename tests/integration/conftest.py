"""Fixtures shared with tests/assessments: a small, real NVDA set-up for risk assessments."""

from tests.assessments.conftest import assessable, nvda_datasets  # noqa: F401
