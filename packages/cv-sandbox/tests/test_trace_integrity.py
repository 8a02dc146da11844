"""The trace is what rewards trust: every case here tries to make it lie (credit for ops that did not
shape the returned image, for no-ops, for names the code made up) or to make it inconsistent."""

from __future__ import annotations

import numpy as np
import pytest
from cv_sandbox import Sandbox
from PIL import Image

IMG = Image.fromarray(np.random.default_rng(3).integers(0, 256, (40, 60, 3), dtype=np.uint8))


def _run(sb: Sandbox, code: str):  # type: ignore[no-untyped-def]
    r = sb.run(code, [IMG])
    assert r.ok, r.error
    return r


@pytest.mark.parametrize(
    ("code", "credited", "discarded"),
    [
        ("x = image.rotate(90, expand=True)\nresult = image", [], ["rotate_90"]),
        ("x = image.crop((0, 0, 10, 10))\nresult = image.rotate(180)", ["rotate_180"], ["crop"]),
        (
            "a = image.transpose(Image.FLIP_LEFT_RIGHT)\nb = image.rotate(90, expand=True)\nresult = b",
            ["rotate_90"],
            ["flip_horizontal"],
        ),
        (
            "for k in range(3):\n    image.rotate(90)\nresult = image.crop((1, 1, 5, 5))",
            ["crop"],
            ["rotate_90"] * 3,
        ),
        (
            "g = np.asarray(image)[::-1]\nresult = Image.fromarray(np.asarray(image)[:, ::-1])",
            ["flip_horizontal"],
            ["flip_vertical"],
        ),
        (
            "c = cv2.flip(np.asarray(image), 0)\nresult = Image.fromarray(cv2.rotate(np.asarray(image), cv2.ROTATE_180))",
            ["rotate_180"],
            ["flip_vertical"],
        ),
        (
            "e = ImageEnhance.Contrast(image).enhance(2)\nresult = ImageOps.mirror(image)",
            ["flip_horizontal"],
            ["contrast"],
        ),
        (
            "t = cv2.threshold(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY), 0, 255, cv2.THRESH_OTSU)[1]\n"
            "ys, xs = np.nonzero(t)\nresult = image.crop((0, 0, 20, 20))",
            ["crop"],
            ["grayscale", "threshold"],
        ),
    ],
)
def test_only_ops_that_reach_the_result_are_credited(
    sandbox: Sandbox, code: str, credited, discarded
) -> None:
    r = _run(sandbox, code)
    assert r.ops == credited
    assert [op.name for op in r.discarded] == discarded


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("result = image.rotate(0)", "rotate"),
        ("result = image.rotate(360)", "rotate"),
        ("result = ImageEnhance.Brightness(image).enhance(1.0)", "brightness"),
        ("result = ImageEnhance.Contrast(image).enhance(1)", "contrast"),
        ("result = image.resize(image.size)", "resize"),
        ("result = image.crop((0, 0, image.width, image.height))", "crop"),
        ("result = image.convert('RGB')", "convert"),
        ("result = image.filter(ImageFilter.GaussianBlur(0))", "blur"),
        ("result = Image.fromarray(cv2.resize(np.asarray(image), (60, 40)))", "resize"),
        ("result = Image.fromarray(np.pad(np.asarray(image), 0))", "pad"),
    ],
)
def test_ops_that_change_nothing_are_marked_ineffective(sandbox: Sandbox, code: str, name: str) -> None:
    r = _run(sandbox, code)
    assert [(op.name, op.effective) for op in r.trace] == [(name, False)]
    assert r.summary()["trace"][0]["effective"] is False


@pytest.mark.parametrize(
    "code",
    [
        "result = image.rotate(90, expand=True)",
        "result = ImageEnhance.Contrast(image).enhance(1.5)",
        "result = image.resize((30, 20))",
        "result = image.crop((1, 1, 20, 20))",
        "result = image.convert('L')",
    ],
)
def test_ops_that_change_pixels_are_effective(sandbox: Sandbox, code: str) -> None:
    assert all(op.effective for op in _run(sandbox, code).trace)


@pytest.mark.parametrize(
    ("code", "to_source"),
    [
        (
            "a = np.array(image)\na[:] = a[:, ::-1]\nresult = Image.fromarray(a)",
            (-1.0, 0.0, 60.0, 0.0, 1.0, 0.0),
        ),
        (
            "a = np.array(image)\na[...] = np.flipud(a)\nresult = Image.fromarray(a)",
            (1.0, 0.0, 0.0, 0.0, -1.0, 40.0),
        ),
        (
            "a = np.array(image)\ncv2.flip(a, 1, a)\nresult = Image.fromarray(a)",
            (-1.0, 0.0, 60.0, 0.0, 1.0, 0.0),
        ),
        (
            "im = image.copy()\nim.paste(image.transpose(Image.FLIP_TOP_BOTTOM))\nresult = im",
            (1.0, 0.0, 0.0, 0.0, -1.0, 40.0),
        ),
        ("a = np.array(image)\na[:10] = 0\nresult = Image.fromarray(a)", (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)),
    ],
)
def test_to_source_stays_true_after_in_place_ops(sandbox: Sandbox, code: str, to_source) -> None:
    r = _run(sandbox, code)
    assert r.to_source == to_source
    # Check the claim on real pixels: output pixel (x, y) is source pixel to_source(x, y).
    a, b, c, d, e, f = r.to_source
    out, src = np.asarray(r.image), np.asarray(IMG)
    for x, y in ((0, 0), (5, 30), (59, 39)):
        if (x, y) == (0, 0) and "a[:10] = 0" in code:
            continue
        sx, sy = a * (x + 0.5) + b * (y + 0.5) + c - 0.5, d * (x + 0.5) + e * (y + 0.5) + f - 0.5
        assert (out[y, x] == src[int(sy), int(sx)]).all(), (x, y)


def test_partial_in_place_write_of_image_data_loses_the_map(sandbox: Sandbox) -> None:
    r = _run(sandbox, "a = np.array(image)\na[:20] = np.array(image)[20:][::-1]\nresult = Image.fromarray(a)")
    assert r.to_source is None and r.ops == ["crop", "flip_vertical"]


@pytest.mark.parametrize(
    ("code", "ops"),
    [
        ("class GaussianBlur:\n    pass\nresult = image.point(lambda v: 255 - v)", ["point"]),
        (
            "class GaussianBlur(ImageFilter.Kernel):\n    pass\n"
            "result = image.filter(GaussianBlur((3, 3), [1] * 9))",
            ["filter"],
        ),
        (
            "class Contrast(ImageEnhance.Brightness):\n    pass\nresult = Contrast(image).enhance(1.3)",
            ["enhance"],
        ),
        ("def rotate_90(im):\n    return im\nresult = rotate_90(image)", []),
        ("class Im:\n    def rotate(self, a):\n        return image\nresult = Im().rotate(90)", []),
    ],
)
def test_user_defined_names_are_never_library_ops(sandbox: Sandbox, code: str, ops) -> None:
    assert _run(sandbox, code).ops == ops


@pytest.mark.parametrize(
    ("code", "ops"),
    [
        # An op run inside a callback a library function calls is the code's own op.
        (
            "def f(v):\n    global r\n    r = image.rotate(90, expand=True)\n    return v\n"
            "image.point(f)\nresult = r",
            ["rotate_90"],
        ),
        (
            "def f(v):\n    global r\n    r = ImageOps.mirror(image)\n    return v\n"
            "Image.eval(image, f)\nresult = r",
            ["flip_horizontal"],
        ),
        ("result = list(map(lambda im: im.rotate(180), [image]))[0]", ["rotate_180"]),
        (
            "out = []\ndef f(row):\n    out.append(1)\n    return row\nnp.apply_along_axis(f, 1, np.zeros((2, 2)))\n"
            "result = image.crop((0, 0, 5, 5))",
            ["crop"],
        ),
    ],
)
def test_ops_inside_callbacks_are_traced(sandbox: Sandbox, code: str, ops) -> None:
    assert _run(sandbox, code).ops == ops


@pytest.mark.parametrize(
    "code",
    [
        "z = np.float32(np.asarray(image).reshape(-1, 3))\n"
        "_, labels, centers = cv2.kmeans(z, 3, None, (cv2.TERM_CRITERIA_MAX_ITER, 5, 1.0), 2, cv2.KMEANS_RANDOM_CENTERS)\n"
        "print(np.round(np.sort(centers[:, 0]), 2))\nresult = image",
        "print(np.random.rand(3))\nresult = image",
        "print(np.random.default_rng().integers(0, 100, 3))\nresult = image",
        "m = np.float32([[1, 0, 5], [0, 1, 5]])\n"
        "w = cv2.warpAffine(np.asarray(image), m, (80, 80), borderMode=cv2.BORDER_TRANSPARENT)\n"
        "result = Image.fromarray(w)",
    ],
)
def test_same_code_same_image_same_result(sandbox: Sandbox, code: str) -> None:
    runs = [sandbox.run(code, [IMG]) for _ in range(3)]
    assert all(r.ok for r in runs), runs[0].error
    assert len({r.stdout for r in runs}) == 1
    assert len({r.image.tobytes() for r in runs}) == 1
