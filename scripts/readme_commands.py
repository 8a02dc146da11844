"""Print the README's shell commands that a newcomer can run without a GPU, as one bash script.

Every fenced ``bash`` block counts, verbatim and in order, except a block whose fence is preceded by a line
``<!-- readme-check: skip (why) -->``. Used by ``scripts/readme_check.sh``.
"""

from __future__ import annotations

import sys
from pathlib import Path

SKIP = "<!-- readme-check: skip"


def runnable_blocks(text: str) -> list[str]:
    """The ``bash`` blocks of a Markdown text that are not marked to be skipped."""
    blocks: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            prev = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            if not prev.startswith(SKIP):
                blocks.append("\n".join(lines[i + 1 : end]))
            i = end
        i += 1
    return blocks


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    readme = Path(args[0] if args else "README.md")
    print("set -euo pipefail -x")
    for block in runnable_blocks(readme.read_text(encoding="utf-8")):
        print(block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
