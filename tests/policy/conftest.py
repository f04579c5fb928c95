from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write_policies(tmp_path) -> Callable[..., Path]:
    """Write policy files (name -> YAML text, dedented) into a fresh directory and return it."""
    counter = iter(range(1000))

    def write(files: dict[str, str], directory: Path | None = None) -> Path:
        directory = directory or tmp_path / f"policies-{next(counter)}"
        for name, text in files.items():
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        return directory

    return write
