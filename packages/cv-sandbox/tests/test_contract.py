"""The code contract and every error kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cv_sandbox import ERROR_KINDS, ExecResult, Sandbox, SandboxConfig, TraceOp
from PIL import Image


def test_result_and_aliases(sandbox: Sandbox, src: Image.Image) -> None:
    r = sandbox.run("result = img.rotate(180)", [src])
    assert r.ok and r.error is None and r.error_kind is None
    assert r.image.tobytes() == src.rotate(180).tobytes()
    r = sandbox.run("output = image.crop((0, 0, 10, 5))", [src])
    assert r.ok and r.image.size == (10, 5)
    assert r.duration_s > 0


def test_run_s_separates_code_time_from_isolation_overhead(sandbox: Sandbox, src: Image.Image) -> None:
    busy = "t = 0\nfor i in range(300000):\n    t += i\nresult = image"
    slow, quick = sandbox.run(busy, [src]), sandbox.run("result = image", [src])
    assert slow.ok and quick.ok
    assert slow.run_s is not None and quick.run_s is not None
    assert 0 < quick.run_s < slow.run_s <= slow.duration_s
    assert slow.run_s > 5 * quick.run_s  # the loop's time is the code's, not the sandbox's
    assert sandbox.run("result = image", [src], image_index=3).run_s is None  # rejected before the child
    failed = sandbox.run("raise ValueError('x')", [src])
    assert failed.error_kind == "exception" and failed.run_s is not None
    assert failed.summary()["run_s"] == round(failed.run_s, 6)


def test_result_takes_precedence_and_array_results(sandbox: Sandbox, src: Image.Image) -> None:
    r = sandbox.run("output = image\nresult = np.asarray(image)[:, :, 0]", [src])
    assert r.ok and r.image.mode == "L" and r.image.size == src.size
    r = sandbox.run("result = np.asarray(image)[:, :, 0] > 128", [src])
    assert r.ok and r.image.mode == "L" and set(np.unique(np.asarray(r.image))) <= {0, 255}


def test_modules_available(sandbox: Sandbox, src: Image.Image) -> None:
    code = (
        "import numpy\nimport cv2 as c\nfrom PIL import Image as I, ImageOps as O\nimport math\n"
        "assert numpy is np and c is cv2 and I is Image and O is ImageOps\n"
        "print(math.floor(math.pi), ImageFilter.SHARPEN is not None, ImageDraw.Draw is not None)\n"
        "result = ImageEnhance.Brightness(image).enhance(1.0)"
    )
    r = sandbox.run(code, [src])
    assert r.ok, r.error
    assert r.stdout == "3 True True\n"


def test_input_kinds_and_index(sandbox: Sandbox, src: Image.Image, tmp_path: Path) -> None:
    p = tmp_path / "x.png"
    Image.new("L", (7, 3), 9).save(p)
    arr = np.zeros((5, 6, 3), np.uint8)
    images = [src, arr, str(p), p]
    sizes = [(64, 48), (6, 5), (7, 3), (7, 3)]
    for k, size in enumerate(sizes):
        r = sandbox.run("result = image", images, image_index=k)
        assert r.ok and r.image.size == size
    pal = src.convert("P")
    assert sandbox.run("result = image", [pal]).image.mode == "RGB"


def test_stdout_captured_and_truncated(src: Image.Image) -> None:
    with Sandbox(SandboxConfig(workers=1, max_stdout_chars=50)) as sb:
        r = sb.run("for i in range(100):\n    print('line', i)\nresult = image", [src])
        assert r.ok
        assert r.stdout.startswith("line 0\nline 1\n")
        assert "[stdout truncated]" in r.stdout and len(r.stdout) < 80
        r = sb.run(
            "def f():\n    print('in f')\nf()\nprint(printed if False else 'x')\nresult = image", [src]
        )
        assert r.stdout == "in f\nx\n"


@pytest.mark.parametrize(
    ("code", "kind", "needle"),
    [
        ("result = image.rotate(90\n", "syntax", "Line 1"),
        ("x = 1\n  y = 2\nresult = image", "syntax", "Line 2"),
        ("x = 1\nresult = image.crop((0, 0, 'a', 3))", "exception", "line 2"),
        ("raise ValueError('boom')", "exception", "ValueError: boom (line 1)"),
        ("result = undefined_name", "exception", "NameError"),
        ("import os", "forbidden", "import of 'os'"),
        ("result = image.__class__", "forbidden", "__class__"),
        ("x = 5", "bad_result", "did not assign"),
        ("result = 'not an image'", "bad_result", "str"),
        ("result = np.zeros((5, 5), np.float32)", "bad_result", "uint8"),
        ("result = np.zeros((5, 5, 7), np.uint8)", "bad_result", "shape"),
        ("result = image.crop((10, 10, 10, 20))", "empty_result", "0x10"),
        ("result = image.resize((1000, 2))", "empty_result", "aspect"),
        ("a = np.zeros((50000, 50000, 3), np.uint8)", "memory", "memory"),
        ("try:\n    import os\nexcept Exception:\n    pass\nresult = image", "forbidden", "os"),
    ],
)
def test_error_kinds(sandbox: Sandbox, src: Image.Image, code: str, kind: str, needle: str) -> None:
    r = sandbox.run(code, [src])
    assert not r.ok and r.image is None
    assert r.error_kind == kind, r.error
    assert needle in r.error
    assert r.error_kind in ERROR_KINDS


def test_output_too_large_code_too_long_bad_input(src: Image.Image) -> None:
    with Sandbox(SandboxConfig(workers=1, max_output_pixels=10_000, max_code_chars=100)) as sb:
        r = sb.run("result = image.resize((200, 100))", [src])
        assert r.error_kind == "output_too_large" and "20000" in r.error
        r = sb.run("x = 1\n" * 50 + "result = image", [src])
        assert r.error_kind == "code_too_long"
        assert sb.run("result = image", [src], image_index=1).error_kind == "bad_input"
        assert sb.run("result = image", [src], image_index=-1).error_kind == "bad_input"
        assert sb.run("result = image", ["/nonexistent.png"]).error_kind == "bad_input"
        assert sb.run("result = image", [np.zeros((3, 3), np.float64)]).error_kind == "bad_input"
        assert sb.run("result = image", [42]).error_kind == "bad_input"  # type: ignore[list-item]
        assert sb.run(b"result = image", [src]).error_kind == "bad_input"  # type: ignore[arg-type]
        assert sb.run("result = image", [src]).ok  # the pool is unaffected


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        SandboxConfig(timeout_s=0)
    with pytest.raises(ValueError, match="workers"):
        SandboxConfig(workers=0)
    with pytest.raises(ValueError, match="memory_mb"):
        SandboxConfig(memory_mb=1)


def test_closed_sandbox_raises(src: Image.Image) -> None:
    sb = Sandbox(SandboxConfig(workers=1))
    sb.close()
    sb.close()
    with pytest.raises(RuntimeError, match="closed"):
        sb.run("result = image", [src])


def test_summary_roundtrip(sandbox: Sandbox, src: Image.Image) -> None:
    r = sandbox.run("result = image.crop((1, 2, 11, 12))", [src])
    s = r.summary()
    assert (
        s["ok"]
        and s["size"] == [10, 10]
        and s["trace"][0]["name"] == "crop"
        and s["trace"][0]["box"] == [1, 2, 11, 12]
    )
    assert TraceOp.from_dict(s["trace"][0]) == r.trace[0]
    assert isinstance(ExecResult().ok, bool)


def test_hardening_report(sandbox: Sandbox) -> None:
    h = sandbox.hardening
    # These hold on any Linux; namespaces, chroot, uid drop and seccomp depend on privileges and kernel.
    for key in ("rlimit_as", "rlimit_cpu", "rlimit_fsize", "no_new_privs", "probe_ok"):
        assert h[key] is True, h


def test_augmented_item_assignment(sandbox: Sandbox) -> None:
    code = (
        "a = np.array(image)\nm = a > 100\na[m] += 10\na[0:2, 0:2] *= 2\nx = [1, 2]\nx[0] += 5\n"
        "d = {'k': 1}\nd['k'] -= 3\nprint(x, d, a[0, 0].tolist(), a[3, 3].tolist())\nresult = Image.fromarray(a)"
    )
    r = sandbox.run(code, [Image.new("RGB", (4, 4), (120, 0, 0))])
    assert r.ok, r.error
    assert r.stdout == "[6, 2] {'k': -2} [4, 0, 0] [130, 0, 0]\n"
    r = sandbox.run("t = (1, 2)\nt[0] += 1", [Image.new("L", (2, 2))])
    assert r.error_kind == "exception" and "TypeError" in r.error
    r = sandbox.run("a = np.zeros(3)\na.shape += (1,)", [Image.new("L", (2, 2))])
    assert r.error_kind == "forbidden"


def test_numpy_methods_that_import_lazily(sandbox: Sandbox, src: Image.Image) -> None:
    r = sandbox.run(
        "a = np.asarray(image)\nprint(a.max(), a.min(), a.mean() > 0, a.std() > 0, a.argmax() >= 0)\n"
        "result = image",
        [src],
    )
    assert r.ok, r.error
    assert r.stdout.startswith("255 0 True True True")
