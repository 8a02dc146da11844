"""The suite registry and the table loader have one home each: a second definition anywhere under
``packages/*/src`` (say, a package re-writing what it cannot import) fails here, naming the file."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

PACKAGES = Path(__file__).resolve().parents[2]

#: Concept -> (pattern of a definition, the one file allowed to hold it; None = nowhere).
HOMES: dict[str, tuple[re.Pattern[str], str | None]] = {
    "SUITES": (re.compile(r"^\s*SUITES\s*(:[^=\n]*)?=(?!=)", re.M), "cv-data/src/cv_data/suites.py"),
    "ORIENTATION_VARIANTS": (
        re.compile(r"^\s*ORIENTATION_VARIANTS\s*(:[^=\n]*)?=(?!=)", re.M),
        "cv-data/src/cv_data/suites.py",
    ),
    "class ColumnMap": (re.compile(r"^\s*class\s+ColumnMap\b", re.M), "cv-data/src/cv_data/tables.py"),
    "def rows_to_items": (re.compile(r"^\s*def\s+rows_to_items\b", re.M), "cv-data/src/cv_data/tables.py"),
    # The alias table that glued two spellings of the variant names, and the old spelling itself.
    "VARIANT_ALIASES": (re.compile(r"\bVARIANT_ALIASES\b"), None),
    "hflip/vflip spelling": (re.compile(r"""["'](hflip|vflip)["']"""), None),
}


def misplaced_definitions(packages: Path) -> list[str]:
    """``"<concept>: <file>"`` for every definition under ``packages/*/src`` outside its one home, and for
    a home that lost its definition."""
    sources = sorted(packages.glob("*/src/**/*.py"))
    problems = []
    for concept, (pattern, home) in HOMES.items():
        found = [p.relative_to(packages).as_posix() for p in sources if pattern.search(p.read_text("utf-8"))]
        problems += [f"{concept}: {f} (its one home is {home or 'nowhere'})" for f in found if f != home]
        if home is not None and home not in found:
            problems.append(f"{concept}: no definition in its home {home}")
    return problems


def test_suite_registry_and_loader_have_one_home() -> None:
    assert misplaced_definitions(PACKAGES) == []


def test_a_second_definition_is_caught(tmp_path: Path) -> None:
    # A synthetic workspace: the real homes plus a package that copies the registry and the old aliases.
    for rel in ("cv-data/src/cv_data/suites.py", "cv-data/src/cv_data/tables.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PACKAGES / rel, tmp_path / rel)
    assert misplaced_definitions(tmp_path) == []
    copy = tmp_path / "cv-bench/src/cv_bench/suites.py"
    copy.parent.mkdir(parents=True)
    copy.write_text(
        (PACKAGES / "cv-data/src/cv_data/suites.py").read_text("utf-8")
        + '\nVARIANT_ALIASES = {"hflip": "flip-h"}\n\n\nclass ColumnMap:\n    pass\n'
    )
    problems = misplaced_definitions(tmp_path)
    assert problems == [
        f"{c}: cv-bench/src/cv_bench/suites.py (its one home is {h})"
        for c, h in [
            ("SUITES", "cv-data/src/cv_data/suites.py"),
            ("ORIENTATION_VARIANTS", "cv-data/src/cv_data/suites.py"),
            ("class ColumnMap", "cv-data/src/cv_data/tables.py"),
            ("VARIANT_ALIASES", "nowhere"),
            ("hflip/vflip spelling", "nowhere"),
        ]
    ]
    (tmp_path / "cv-data/src/cv_data/tables.py").unlink()
    assert (
        "def rows_to_items: no definition in its home cv-data/src/cv_data/tables.py"
        in misplaced_definitions(tmp_path)
    )
