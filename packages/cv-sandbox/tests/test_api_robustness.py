"""Bad configuration is refused at construction with a message that says what to set; the CLI answers
bad input with one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from cv_sandbox import SandboxConfig
from cv_sandbox.cli import main
from PIL import Image


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("timeout_s", math.inf, "finite"),
        ("timeout_s", math.nan, "finite"),
        ("timeout_s", -1, "timeout_s must be > 0"),
        ("timeout_s", 1e9, "<= 3600"),
        ("timeout_s", "10", "finite number"),
        ("memory_mb", 10**12, "between 64 and"),
        ("memory_mb", 2048.5, "integer"),
        ("workers", 0, "between 1 and 256"),
        ("workers", 10**6, "between 1 and 256"),
        ("workers", True, "integer"),
        ("max_output_pixels", 1 << 40, "between 1 and"),
        ("max_input_pixels", -5, "between 1 and"),
        ("max_aspect_ratio", math.inf, "finite"),
        ("start_timeout_s", math.inf, "finite"),
        ("calls_per_child", 0, "between 1 and"),
        ("acquire_timeout_s", math.inf, "finite"),
        ("acquire_timeout_s", 0, "> 0"),
        ("harden", "yes", "True or False"),
    ],
)
def test_absurd_config_is_rejected(field: str, value: object, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("(", r"\(")) as exc:
        SandboxConfig(**{field: value})  # type: ignore[arg-type]
    assert field in str(exc.value)


def _err(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1 and "Traceback" not in out.err, out.err
    return out.err


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    img = tmp_path / "in.png"
    Image.new("RGB", (8, 6)).save(img)
    code = tmp_path / "code.py"
    code.write_text("result = image\n")
    bad = tmp_path / "latin1.py"
    bad.write_bytes(b"result = image  # caf\xe9\n")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(img.read_bytes()[:40])
    huge = tmp_path / "huge.png"
    Image.new("1", (20000, 20000)).save(huge)
    return {"img": img, "code": code, "bad": bad, "text": text, "corrupt": corrupt, "huge": huge}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["run", "{tmp}/missing.py", "--image", "{img}"], "code file not found"),
        (["run", "{bad}", "--image", "{img}"], "not UTF-8"),
        (["run", "{tmp}", "--image", "{img}"], "is a directory"),
        (["run", "{code}", "--image", "{tmp}/missing.png"], "image file not found"),
        (["run", "{code}", "--image", "{text}"], "cannot open image"),
        (["run", "{code}", "--image", "{corrupt}"], "cannot open image"),
        (["run", "{code}", "--image", "{huge}"], "400000000 pixels"),
        (["run", "{code}", "--image", "{img}", "--timeout", "inf"], "--timeout must be a finite number"),
        (["run", "{code}", "--image", "{img}", "--timeout", "-3"], "--timeout must be > 0"),
        (["run", "{code}", "--image", "{img}", "--memory-mb", "1"], "--memory-mb must be between"),
        (["run", "{code}", "--image", "{img}", "-o", "/proc/nope/out.png"], "cannot write the result"),
        (["run", "{code}", "--image", "{img}", "-o", "{tmp}/out.unknownext"], "image format"),
        (["run", "{code}", "--image", "{img}", "--image-index", "3"], "out of range"),
    ],
)
def test_cli_bad_input_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, files: dict[str, Path], args: list[str], says: str
) -> None:
    argv = [a.format(tmp=tmp_path, **files) for a in args]
    assert says in _err(capsys, argv)
