"""Calls sharing a child cannot see each other; strict mode forks per call; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cv_sandbox import Sandbox, SandboxConfig
from cv_sandbox._wire import WireError, check_image, decode_image, encode_image
from cv_sandbox.cli import main
from PIL import Image

IMG = Image.new("RGB", (16, 8), (1, 2, 3))


def test_rng_state_does_not_leak_between_calls(sandbox: Sandbox) -> None:
    draw = "print(np.random.randint(0, 10 ** 9))\nresult = image"
    first = sandbox.run(draw, [IMG]).stdout
    sandbox.run("np.random.seed(123)\nx = np.random.rand(5)\nresult = image", [IMG])
    assert sandbox.run(draw, [IMG]).stdout == first


def test_uninitialised_memory_is_not_handed_out(sandbox: Sandbox) -> None:
    r = sandbox.run(
        "a = np.empty((64, 64, 3), np.uint8)\nb = Image.new('RGB', (64, 64), None)\n"
        "print(int(a.max()), np.asarray(b).max())\nresult = image",
        [IMG],
    )
    assert r.stdout == "0 0\n"


def test_strict_mode_forks_per_call() -> None:
    with Sandbox(SandboxConfig(workers=1, calls_per_child=1, timeout_s=2)) as sb:
        for k in range(4):
            r = sb.run(f"result = image.crop((0, 0, {k + 1}, 1))", [IMG])
            assert r.ok and r.image.size == (k + 1, 1)
        assert sb.run("import os", [IMG]).error_kind == "forbidden"
        assert sb.run("while True:\n    pass", [IMG]).error_kind == "timeout"
        assert sb.run("result = image", [IMG]).ok


def test_wire_roundtrip_and_validation() -> None:
    for mode in ("1", "L", "LA", "RGB", "RGBA", "I", "F", "I;16", "CMYK"):
        im = Image.new(mode, (5, 3))
        meta, data = encode_image(im)
        back = decode_image(meta, data)
        assert back.mode == mode and back.size == (5, 3) and back.tobytes() == im.tobytes()
    meta, data = encode_image(Image.new("P", (2, 2)))
    assert meta["mode"] == "RGB"
    with pytest.raises(WireError):
        check_image({"mode": "RGB", "w": 2, "h": 2}, 11)
    with pytest.raises(WireError):
        check_image({"mode": "P", "w": 2, "h": 2}, 4)
    with pytest.raises(WireError):
        check_image({"mode": "RGB", "w": -2, "h": 2}, 0)


def test_cli_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.png"
    Image.new("RGB", (30, 20), (200, 10, 10)).save(src)
    code = tmp_path / "code.py"
    code.write_text("result = image.rotate(90, expand=True).crop((0, 0, 10, 10))\n")
    out = tmp_path / "out" / "o.png"
    assert main(["run", str(code), "--image", str(src), "-o", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] and summary["size"] == [10, 10]
    assert [t["name"] for t in summary["trace"]] == ["rotate_90", "crop"]
    assert summary["trace"][1]["box"] == [20, 0, 30, 10]
    assert Image.open(out).size == (10, 10)


def test_cli_run_failure_and_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("L", (4, 4)).save(a)
    Image.new("L", (7, 5)).save(b)
    code = tmp_path / "c.py"
    code.write_text("result = image\n")
    assert main(["run", str(code), "--image", str(a), "--image", str(b), "--image-index", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["size"] == [7, 5]
    code.write_text("import os\n")
    assert main(["run", str(code), "--image", str(a)]) == 1
    assert json.loads(capsys.readouterr().out)["error_kind"] == "forbidden"


def test_cli_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--timeout", "1"]) == 0
    out = capsys.readouterr().out
    assert "UNEXPECTED" not in out and '"rotate_270"' in out and '"forbidden"' in out


def test_python_dash_m_entry() -> None:
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-m", "cv_sandbox", "--help"], capture_output=True, text=True, check=False
    )
    assert p.returncode == 0 and "demo" in p.stdout


def test_array_input_is_rgb(sandbox: Sandbox) -> None:
    arr = np.zeros((2, 3, 3), np.uint8)
    arr[..., 0] = 255
    r = sandbox.run("result = image", [arr])
    assert r.image.getpixel((0, 0)) == (255, 0, 0)
