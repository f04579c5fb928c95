"""Print one of the README's two Quickstart commands ("demo" or "test").

CI runs exactly what the README tells a new user to run, so the two cannot drift apart.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def quickstart_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quickstart", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    if block is None:
        raise SystemExit("README.md: no ```sh block in ## Quickstart")
    commands = [line.strip() for line in block.group(1).splitlines() if line.strip()]
    if len(commands) != 2:
        raise SystemExit(f"README.md: the Quickstart block must hold exactly two commands, found {len(commands)}")
    return commands


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "test"
    demo, test = quickstart_commands()
    print(demo if which == "demo" else test)
