"""One concept, one home: no package restates what cv-protocol (or another single home) defines.

The scanner reads every module under ``packages/*/src`` with :mod:`ast` (docstrings, and so doctest
examples, are not code) and reports, with file and line:

- a definition (``def``, ``class`` or assignment) of a name cv-protocol exports, or of a retired second
  home (``required_ops``, ``extract_final_answer``, ...);
- a string that starts with a tool-call or tool-response tag (a second writer or reader of the wrapping);
- an answer-extraction regex (``<answer>(...)``);
- a restated op list (two or more canonical op names in one list/tuple/set) or angle table
  (``{"rotate_90": 90}``), or the inverse-rotation formula (``f"rotate_{360 - d}"``);
- model-spec parsing (splitting on ``"#"``, an ``"openai:"`` prefix check, ``f"openai:{url}#..."``);
- a second tool-call executor: a sandbox ``.run(...)``/``.arun(...)`` with an ``image_index`` outside
  ``cv_sandbox.workspace`` (the one executor), or ``exec(...)``/``compile(...)`` of code outside cv-sandbox.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import cv_protocol
import pytest

ROOT = Path(__file__).resolve().parents[3]
PROTOCOL_HOME = "packages/cv-protocol/src/cv_protocol/"

#: Names whose second definitions were removed (name -> its one home now); they must not come back anywhere.
RETIRED = {
    "required_ops": "cv_protocol.corrective_ops",  # was cv_rewards.process
    "extract_final_answer": "cv_protocol.extract_answer",  # was cv_sandbox.protocol
    "parse_backend_spec": "cv_protocol.parse_model_spec",  # was cv_agent.backends.base
    "parse_endpoint": "cv_protocol.parse_model_spec",  # was cv_bench.runner
    "answers_match": "cv_rewards.match_answer",  # was cv_data.teacher
    # cv_data.teacher: distillation runs the one agent loop, in cv_bench.distill
    "TeacherConfig": "cv_bench.DistillConfig",
    "build_teacher_sft": "cv_bench.distill",
    "teacher_trajectory": "cv_bench.distill",
    "_execute_locally": "cv_sandbox.ImageWorkspace",  # was cv_bench.reference
}
EXECUTOR_HOME = "packages/cv-sandbox/src/cv_sandbox/workspace.py"
#: Files that may run code in a sandbox without the workspace: the sandbox's own command line runs one
#: snippet on image files (the tool itself, not a conversation's call).
EXECUTOR_EXEMPT = frozenset({EXECUTOR_HOME, "packages/cv-sandbox/src/cv_sandbox/cli.py"})
#: Only cv-sandbox compiles and runs model code (RestrictedPython, in a hardened child).
CODE_RUNNER_HOME = "packages/cv-sandbox/src/"
#: Single homes outside cv-protocol: name -> the file that defines it.
OTHER_HOMES = {
    "TASK_TYPES": "packages/cv-rewards/src/cv_rewards/verdict.py",
    "MatchResult": "packages/cv-rewards/src/cv_rewards/verdict.py",
    "make_backend": "packages/cv-agent/src/cv_agent/backends/factory.py",
    # the tool-call executor and its records
    "ImageWorkspace": EXECUTOR_HOME,
    "ToolCall": EXECUTOR_HOME,
    "ToolOutcome": EXECUTOR_HOME,
    # the SFT record layout; teacher distillation; tiny models
    "sft_record": "packages/cv-data/src/cv_data/sft/record.py",
    "distill": "packages/cv-bench/src/cv_bench/distill.py",
    "build_tiny_vlm": "packages/cv-agent/src/cv_agent/tiny.py",
    # a process's shared sandbox (was cached in cv_data.sft, cv_train.env and cv_bench.reference)
    "shared_sandbox": "packages/cv-sandbox/src/cv_sandbox/shared.py",
}
_TAGS = (
    cv_protocol.TOOL_CALL_START,
    cv_protocol.TOOL_CALL_END,
    cv_protocol.TOOL_RESPONSE_START,
    cv_protocol.TOOL_RESPONSE_END,
)
_OPS = cv_protocol.GEOMETRIC_OPS


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    concept: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.concept}"


def _not_code(tree: ast.AST) -> set[int]:
    """Ids of docstrings, of ``__all__`` lists (names of functions, not ops) and of the literal pieces of
    f-strings (their f-string is checked as a whole)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
        if isinstance(node, ast.JoinedStr):
            ids.update(id(v) for v in node.values)
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            ids.add(id(node.value))
    return ids


def _leading_text(node: ast.AST) -> str | None:
    """The literal text a string expression starts with (``None`` if it is not a string literal)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return str(node.values[0].value)
    return None


def _defined_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    targets = (
        node.targets
        if isinstance(node, ast.Assign)
        else [node.target]
        if isinstance(node, ast.AnnAssign)
        else []
    )
    return [t.id for t in targets if isinstance(t, ast.Name)]


def scan_source(source: str, path: str) -> list[Finding]:
    """Every second home of a single-home concept in one module's source."""
    tree = ast.parse(source)
    skip = _not_code(tree)
    in_protocol = path.startswith(PROTOCOL_HOME)
    found: list[Finding] = []

    def hit(node: ast.AST, concept: str) -> None:
        found.append(Finding(path, getattr(node, "lineno", 0), concept))

    for node in ast.walk(tree):
        for name in _defined_names(node):
            if name in OTHER_HOMES and path != OTHER_HOMES[name]:
                hit(node, f"second definition of {name} (its home is {OTHER_HOMES[name]})")
            elif name in RETIRED:
                hit(node, f"second definition of {name} (use {RETIRED[name]})")
            elif name in cv_protocol.__all__ and not in_protocol:
                hit(node, f"second definition of {name} (use cv_protocol)")
        if in_protocol or id(node) in skip:
            continue
        text = _leading_text(node)
        if text is not None:
            if text.startswith(_TAGS):
                hit(node, f"tool-call/response tags written or read outside cv_protocol: {text[:30]!r}")
            if "<answer>(" in text:
                hit(node, "answer extraction outside cv_protocol (use cv_protocol.extract_answer)")
            if text == "openai:" or (isinstance(node, ast.JoinedStr) and text.startswith("openai:")):
                hit(node, "model-spec parsing/writing outside cv_protocol (use parse_model_spec / ModelSpec)")
            if isinstance(node, ast.JoinedStr) and text.endswith("rotate_") and "360" in ast.unparse(node):
                hit(node, "inverse rotation outside cv_protocol (use cv_protocol.corrective_ops)")
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            names = [e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in _OPS]
            if len(names) >= 2:
                hit(node, f"op list restated {names} (use cv_protocol.ROTATE_OPS/FLIP_OPS/TRANSFORM_NAMES)")
        if isinstance(node, ast.Dict):
            angles = [
                k.value
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant)
                and k.value in _OPS
                and isinstance(v, ast.Constant)
                and isinstance(v.value, int)
            ]
            if angles:
                hit(node, f"op angle table {angles} (use cv_protocol.rotation_degrees)")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("split", "rsplit", "partition", "rpartition")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == "#"
        ):
            hit(node, "model-spec parsing outside cv_protocol (use cv_protocol.parse_model_spec)")
        if isinstance(node, ast.Call) and path not in EXECUTOR_EXEMPT and _runs_a_tool_call(node):
            hit(node, "a tool call executed outside the one executor (use cv_sandbox.ImageWorkspace)")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("exec", "compile")
            and not path.startswith(CODE_RUNNER_HOME)
        ):
            hit(
                node,
                f"{node.func.id}() of code outside cv-sandbox (run it through cv_sandbox.ImageWorkspace)",
            )
    return found


def _runs_a_tool_call(node: ast.Call) -> bool:
    """``<sandbox>.run(code, images, image_index=...)`` or ``.arun(...)`` (the index by keyword or third);
    ``self.run(...)`` is a sandbox (a fake one, say) delegating to itself, not a caller."""
    return (
        isinstance(node.func, ast.Attribute)
        and node.func.attr in ("run", "arun")
        and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "self")
        and (any(k.arg == "image_index" for k in node.keywords) or len(node.args) >= 3)
    )


def scan_tree(root: Path) -> list[Finding]:
    """:func:`scan_source` over every module under ``root/packages/*/src``."""
    out = []
    for file in sorted(root.glob("packages/*/src/**/*.py")):
        rel = file.relative_to(root).as_posix()
        out += scan_source(file.read_text(encoding="utf-8"), rel)
    return out


def test_the_workspace_has_one_home_per_concept() -> None:
    assert (ROOT / PROTOCOL_HOME / "__init__.py").is_file(), f"expected the workspace at {ROOT}"
    findings = scan_tree(ROOT)
    assert not findings, "second homes found:\n" + "\n".join(map(str, findings))


SYNTHETIC = '''
"""A docstring may show <tool_response> and rotate_90, rotate_180: docs are not code.

    >>> "<tool_call>" + "x"
"""
import re

ORIENTATION_OPS = frozenset({"rotate_90", "flip_vertical"})


def parse_tool_calls(text):
    return None


def required_ops(transform):
    return [f"rotate_{(360 - int(t[7:])) % 360}" for t in transform]


def wrap(text):
    return "<tool_response>\\n" + text + f"</tool_response>"


ANSWER = re.compile(r"<answer>(.*?)</answer>")
DEG = {"rotate_90": 90}
TASK_TYPES = frozenset({"ocr"})


def spec(s):
    url, _, model = s.partition("#")
    return s.startswith("openai:"), f"openai:{url}#{model}"


class ImageWorkspace:
    def call(self, sandbox, code, images, k):
        sandbox.run(code, images, image_index=k)
        return sandbox.arun(code, images, k)


def expected(code, image):
    ns = {"image": image}
    exec(compile(code, "<x>", "exec"), ns)
    return ns["result"]
'''


def test_the_scanner_finds_each_kind_of_copy(tmp_path: Path) -> None:
    findings = scan_source(SYNTHETIC, "packages/cv-x/src/cv_x/copy.py")
    concepts = "\n".join(f.concept for f in findings)
    expected = [
        "second definition of ORIENTATION_OPS",
        "op list restated ['rotate_90', 'flip_vertical']",
        "second definition of parse_tool_calls",
        "second definition of required_ops",
        "inverse rotation",
        "tags written or read outside cv_protocol: '<tool_response>\\n'",
        "tags written or read outside cv_protocol: '</tool_response>'",
        "answer extraction",
        "op angle table ['rotate_90']",
        "second definition of TASK_TYPES (its home is packages/cv-rewards/src/cv_rewards/verdict.py)",
        "model-spec parsing outside cv_protocol (use cv_protocol.parse_model_spec)",
        "model-spec parsing/writing outside cv_protocol",
        "second definition of ImageWorkspace (its home is packages/cv-sandbox/src/cv_sandbox/workspace.py)",
        "a tool call executed outside the one executor",
        "exec() of code outside cv-sandbox",
        "compile() of code outside cv-sandbox",
    ]
    for fragment in expected:
        assert fragment in concepts, f"the scanner missed: {fragment}\n{concepts}"
    # "openai:" is found twice (the prefix check and the f-string), and so is the executor (run and arun)
    assert len(findings) == len(expected) + 2
    assert all(
        f.path == "packages/cv-x/src/cv_x/copy.py" and f.line > 5 for f in findings
    )  # not the docstring


def test_the_scanner_reads_files_and_spares_the_homes(tmp_path: Path) -> None:
    copy = tmp_path / "packages/cv-x/src/cv_x/copy.py"
    copy.parent.mkdir(parents=True)
    copy.write_text("def corrective_ops(t):\n    return t\n")
    home = tmp_path / PROTOCOL_HOME / "ops.py"
    home.parent.mkdir(parents=True)
    home.write_text("def corrective_ops(t):\n    return t\n")
    assert [str(f) for f in scan_tree(tmp_path)] == [
        "packages/cv-x/src/cv_x/copy.py:1: second definition of corrective_ops (use cv_protocol)"
    ]


@pytest.mark.parametrize(
    "clean",
    [
        "from cv_protocol import ORIENTATION_OPS, corrective_ops\nfixes = corrective_ops(['rotate_90'])\n",
        "CODE = {'rotate_90': 'image.rotate(90)'}\nx = ['rotate_90']\n",  # per-op behaviour, one op per list
        "s = text.split(',')\nlabel = f'model {name}'\n",
        "__all__ = ['flip_horizontal', 'rotate_90']\n",  # geometry's map constructors share the op names
    ],
)
def test_ordinary_code_is_not_flagged(clean: str) -> None:
    assert scan_source(clean, "packages/cv-x/src/cv_x/ok.py") == []


def test_a_copy_of_the_executor_is_caught_naming_the_file(tmp_path: Path) -> None:
    """The tool-call executor has one home: a package that copies it (as cv-agent, cv-data and cv-bench
    once did) is named, and the home itself is spared."""
    home = (ROOT / EXECUTOR_HOME).read_text(encoding="utf-8")
    for rel in (EXECUTOR_HOME, "packages/cv-data/src/cv_data/executor.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(home, encoding="utf-8")
    findings = scan_tree(tmp_path)
    assert {f.path for f in findings} == {"packages/cv-data/src/cv_data/executor.py"}
    concepts = {f.concept.split(" (")[0] for f in findings}
    assert concepts == {
        "second definition of ImageWorkspace",
        "second definition of ToolCall",
        "second definition of ToolOutcome",
        "a tool call executed outside the one executor",
    }
