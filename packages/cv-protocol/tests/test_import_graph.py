"""The import graph of the workspace: layering between packages and no import cycles inside one.

Every ``import`` counts, also those inside functions (lazy) or under ``TYPE_CHECKING``: a cycle that only
a lazy import hides is still two modules that each need the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

#: Which of our packages each package may import (lower never imports higher; cv-data and cv-agent
#: do not import each other).
ALLOWED: dict[str, set[str]] = {
    "cv_protocol": set(),
    "cv_sandbox": {"cv_protocol"},
    "cv_rewards": {"cv_protocol"},
    "cv_data": {"cv_protocol", "cv_sandbox", "cv_rewards"},
    "cv_agent": {"cv_protocol", "cv_sandbox", "cv_rewards"},
    "cv_bench": {"cv_protocol", "cv_sandbox", "cv_rewards", "cv_data", "cv_agent"},
    "cv_train": {"cv_protocol", "cv_sandbox", "cv_rewards", "cv_data", "cv_agent"},
}


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module under ``root/packages/*/src``."""
    out = {}
    for file in root.glob("packages/*/src/**/*.py"):
        parts = file.relative_to(root).with_suffix("").parts[3:]  # after packages/<dist>/src
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return out


def imports(name: str, file: Path, known: dict[str, Path]) -> set[str]:
    """The modules ``name`` imports (ours, resolved to the deepest known module)."""
    found: set[str] = set()
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # ``from pkg import sub`` imports the submodule; ``from pkg import name`` imports pkg.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def graph(root: Path) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports(name, file, known) for name, file in known.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, within one package (a submodule importing
    its own package's ``__init__`` is how Python imports work, not a cycle)."""
    edges = {
        m: {d for d in deps if d.split(".")[0] == m.split(".")[0] and not m.startswith(d + ".")}
        for m, deps in g.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while comp[-1:] != [v]:
                comp.append(stack.pop())
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_packages_import_only_lower_layers() -> None:
    g = graph(ROOT)
    assert {m.split(".")[0] for m in g} == set(ALLOWED), "a package was added: give it a layer in ALLOWED"
    bad = sorted(
        f"{m} imports {d}"
        for m, deps in g.items()
        for d in deps
        if d.split(".")[0] != m.split(".")[0] and d.split(".")[0] not in ALLOWED[m.split(".")[0]]
    )
    assert not bad, "layering broken:\n" + "\n".join(bad)


def test_no_import_cycles_inside_a_package() -> None:
    found = cycles(graph(ROOT))
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checks_catch_what_they_guard(tmp_path: Path) -> None:
    src = tmp_path / "packages/cv-rewards/src/cv_rewards"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("from .answer import match\n")
    (src / "answer.py").write_text("def match():\n    from .judge import Judge\n")  # lazy, still a cycle
    (src / "judge.py").write_text("from .answer import match\nimport cv_sandbox\n")
    g = graph(tmp_path)
    assert g["cv_rewards.judge"] == {"cv_rewards.answer"}  # cv_sandbox is not in this tree
    assert cycles(g) == [["cv_rewards.answer", "cv_rewards.judge"]]
    sandbox = tmp_path / "packages/cv-sandbox/src/cv_sandbox"
    sandbox.mkdir(parents=True)
    (sandbox / "__init__.py").write_text("")
    assert graph(tmp_path)["cv_rewards.judge"] == {"cv_rewards.answer", "cv_sandbox"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from . import b\n", {"p.b"}),
        ("from .b import x\n", {"p.b"}),
        ("from p import b\n", {"p.b"}),
        ("import p.b.c\n", {"p.b"}),
        ("from .. import q\n", set()),  # outside the tree
    ],
)
def test_imports_resolve_to_modules(tmp_path: Path, source: str, expected: set[str]) -> None:
    pkg = tmp_path / "packages/p/src/p"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "b.py").write_text("x = 1\n")
    (pkg / "a.py").write_text(source)
    assert imports("p.a", pkg / "a.py", modules(tmp_path)) == expected
