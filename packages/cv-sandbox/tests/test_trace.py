"""Op trace and source map: canonical names for every spelling, crop boxes in the source frame."""

from __future__ import annotations

import numpy as np
import pytest
from cv_sandbox import ExecResult, Sandbox
from PIL import Image


def assert_maps_to_source(r: ExecResult, src: Image.Image) -> None:
    """Every output pixel equals the source pixel that ``to_source`` says it came from."""
    assert r.ok, r.error
    assert r.to_source is not None
    a, b, c, d, e, f = r.to_source
    out = np.asarray(r.image.convert("RGB"))
    s = np.asarray(src)
    h, w = out.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    sx = np.floor(a * (xs + 0.5) + b * (ys + 0.5) + c).astype(int)
    sy = np.floor(d * (xs + 0.5) + e * (ys + 0.5) + f).astype(int)
    assert sx.min() >= 0 and sy.min() >= 0 and sx.max() < src.width and sy.max() < src.height
    np.testing.assert_array_equal(out, s[sy, sx])


GEOMETRIC = [
    # (code, expected ops)
    ("result = image.rotate(90, expand=True)", ["rotate_90"]),
    ("result = image.rotate(-90, expand=True)", ["rotate_270"]),
    ("result = image.rotate(270, expand=True)", ["rotate_270"]),
    ("result = image.rotate(180)", ["rotate_180"]),
    ("result = image.rotate(450, expand=True)", ["rotate_90"]),
    ("result = image.transpose(Image.ROTATE_90)", ["rotate_90"]),
    ("result = image.transpose(Image.Transpose.ROTATE_270)", ["rotate_270"]),
    ("result = image.transpose(Image.FLIP_LEFT_RIGHT)", ["flip_horizontal"]),
    ("result = image.transpose(Image.FLIP_TOP_BOTTOM)", ["flip_vertical"]),
    ("result = image.transpose(Image.TRANSPOSE)", ["transpose"]),
    ("result = image.transpose(Image.TRANSVERSE)", ["transverse"]),
    ("result = ImageOps.mirror(image)", ["flip_horizontal"]),
    ("result = ImageOps.flip(image)", ["flip_vertical"]),
    ("result = Image.fromarray(np.rot90(np.array(image)))", ["rotate_90"]),
    ("result = Image.fromarray(np.rot90(np.asarray(image), 3))", ["rotate_270"]),
    ("result = Image.fromarray(np.rot90(np.asarray(image), k=-1))", ["rotate_270"]),
    ("result = Image.fromarray(np.rot90(np.asarray(image), 2))", ["rotate_180"]),
    ("result = Image.fromarray(np.rot90(np.asarray(image), 1, axes=(1, 0)))", ["rotate_270"]),
    ("result = Image.fromarray(np.fliplr(np.asarray(image)))", ["flip_horizontal"]),
    ("result = Image.fromarray(np.flipud(np.asarray(image)))", ["flip_vertical"]),
    ("result = Image.fromarray(np.flip(np.asarray(image), axis=1))", ["flip_horizontal"]),
    ("result = Image.fromarray(np.flip(np.asarray(image), 0))", ["flip_vertical"]),
    ("result = Image.fromarray(np.flip(np.asarray(image), (0, 1)))", ["rotate_180"]),
    ("result = Image.fromarray(np.asarray(image)[:, ::-1])", ["flip_horizontal"]),
    ("result = Image.fromarray(np.asarray(image)[::-1])", ["flip_vertical"]),
    ("result = Image.fromarray(np.asarray(image)[::-1, ::-1, :])", ["rotate_180"]),
    ("result = Image.fromarray(np.asarray(image)[5:30, 10:50])", ["crop"]),
    ("result = Image.fromarray(np.asarray(image)[5:30, 10:50, ...])", ["crop"]),
    ("result = Image.fromarray(np.ascontiguousarray(np.asarray(image).transpose(1, 0, 2)))", ["transpose"]),
    ("result = Image.fromarray(np.swapaxes(np.asarray(image), 0, 1))", ["transpose"]),
    ("result = Image.fromarray(cv2.rotate(np.asarray(image), cv2.ROTATE_90_CLOCKWISE))", ["rotate_270"]),
    (
        "result = Image.fromarray(cv2.rotate(np.asarray(image), cv2.ROTATE_90_COUNTERCLOCKWISE))",
        ["rotate_90"],
    ),
    ("result = Image.fromarray(cv2.rotate(np.asarray(image), cv2.ROTATE_180))", ["rotate_180"]),
    ("result = Image.fromarray(cv2.flip(np.asarray(image), 1))", ["flip_horizontal"]),
    ("result = Image.fromarray(cv2.flip(np.asarray(image), 0))", ["flip_vertical"]),
    ("result = Image.fromarray(cv2.flip(np.asarray(image), -1))", ["rotate_180"]),
    ("result = Image.fromarray(cv2.transpose(np.asarray(image)))", ["transpose"]),
    ("result = image.crop((10, 5, 40, 30))", ["crop"]),
    ("result = ImageOps.crop(image, 4)", ["crop"]),
    ("result = image.rotate(90, expand=True).crop((5, 10, 20, 30))", ["rotate_90", "crop"]),
    (
        "result = image.transpose(Image.FLIP_LEFT_RIGHT).crop((0, 0, 16, 12)).rotate(270, expand=True)",
        ["flip_horizontal", "crop", "rotate_270"],
    ),
    (
        "a = np.rot90(np.asarray(image))\nb = a[3:40, 2:20]\nresult = Image.fromarray(cv2.flip(b, 1))",
        ["rotate_90", "crop", "flip_horizontal"],
    ),
    ("result = image.rotate(90)", ["rotate_90"]),  # not expanded, non-square: rotated about the centre
    ("x = image.copy()\nresult = x", []),
    ("r, g, b = image.split()\nresult = Image.merge('RGB', (r, g, b)).crop((1, 1, 9, 9))", ["crop"]),
    ("im = image\nfor _ in range(4):\n    im = im.rotate(90, expand=True)\nresult = im", ["rotate_90"] * 4),
]


@pytest.mark.parametrize(("code", "ops"), GEOMETRIC)
def test_geometric_ops_trace_and_map(sandbox: Sandbox, src: Image.Image, code: str, ops: list[str]) -> None:
    r = sandbox.run(code, [src])
    assert r.ok, r.error
    assert r.ops == ops
    if code == "result = image.rotate(90)":
        assert r.to_source is not None  # about the centre; black corners do not map, so no pixel check
        return
    assert_maps_to_source(r, src)


def test_crop_box_in_source_frame_after_rotation(sandbox: Sandbox, src: Image.Image) -> None:
    r = sandbox.run("result = image.rotate(90, expand=True).crop((5, 10, 20, 30))", [src])
    (box,) = r.crop_boxes
    # rotate_90 maps output (x, y) to source (W - y, x): W = 64
    assert box == (64 - 30, 5, 64 - 10, 20)
    assert r.image.tobytes() == src.crop(box).rotate(90, expand=True).tobytes()


def test_crop_box_clipped_and_through_flip(sandbox: Sandbox, src: Image.Image) -> None:
    r = sandbox.run("result = image.crop((-5, -5, 20, 20))", [src])
    assert r.crop_boxes == [(0, 0, 20, 20)]
    r = sandbox.run("a = np.asarray(image)[:, ::-1]\nresult = Image.fromarray(a[0:10, 0:16])", [src])
    assert r.crop_boxes == [(48, 0, 64, 10)]
    r = sandbox.run(
        "a = cv2.rotate(np.asarray(image), cv2.ROTATE_90_CLOCKWISE)\nresult = Image.fromarray(a[0:10, 0:5])",
        [src],
    )
    # rotate_270 maps output (x, y) to source (y, H - x): H = 48
    assert r.crop_boxes == [(0, 43, 10, 48)]


@pytest.mark.parametrize(
    ("code", "ops"),
    [
        ("result = image.resize((32, 24))", ["resize"]),
        ("result = image.resize((32, 24), box=(0, 0, 32, 24))", ["crop", "resize"]),
        ("result = image.reduce(2)", ["resize"]),
        ("im = image.copy()\nim.thumbnail((16, 16))\nresult = im", ["resize"]),
        (
            "result = Image.fromarray(cv2.resize(np.asarray(image), (128, 96), interpolation=cv2.INTER_NEAREST))",
            ["resize"],
        ),
        ("result = Image.fromarray(cv2.resize(np.asarray(image), None, fx=2, fy=2))", ["resize"]),
        ("result = ImageOps.scale(image, 2)", ["resize"]),
        ("result = ImageOps.fit(image, (20, 20))", ["crop", "resize"]),
        ("result = Image.fromarray(np.asarray(image)[::2, ::2])", ["resize"]),
        ("result = Image.fromarray(cv2.pyrDown(np.asarray(image)))", ["resize"]),
    ],
)
def test_resizes_keep_an_exact_scale(sandbox: Sandbox, src: Image.Image, code: str, ops: list[str]) -> None:
    r = sandbox.run(code, [src])
    assert r.ok, r.error
    assert r.ops == ops
    assert r.to_source is not None
    a, b, c, d, e, f = r.to_source
    w, h = r.image.size
    assert b == 0 and d == 0
    # the output's far corner lands inside the source region it was made from
    assert 0 <= a * w + c <= src.width + 1e-6 and 0 <= e * h + f <= src.height + 1e-6


def test_nearest_resize_maps_pixels(sandbox: Sandbox, src: Image.Image) -> None:
    r = sandbox.run("result = image.resize((128, 96), Image.NEAREST)", [src])
    assert_maps_to_source(r, src)
    r = sandbox.run("result = Image.fromarray(np.asarray(image)[1::2, ::3])", [src])
    assert_maps_to_source(r, src)


PIXELWISE = [
    ("result = ImageEnhance.Contrast(image).enhance(1.5)", ["contrast"]),
    ("result = ImageEnhance.Brightness(image).enhance(1.2)", ["brightness"]),
    ("result = ImageEnhance.Sharpness(image).enhance(2.0)", ["sharpen"]),
    ("result = ImageEnhance.Color(image).enhance(0.5)", ["saturation"]),
    ("result = image.filter(ImageFilter.SHARPEN)", ["sharpen"]),
    ("result = image.filter(ImageFilter.UnsharpMask(2, 150, 3))", ["sharpen"]),
    ("result = image.filter(ImageFilter.GaussianBlur(2))", ["blur"]),
    ("result = image.filter(ImageFilter.MedianFilter(3))", ["blur"]),
    ("result = image.filter(ImageFilter.FIND_EDGES)", ["edges"]),
    ("result = image.convert('L')", ["grayscale"]),
    ("result = ImageOps.grayscale(image)", ["grayscale"]),
    ("result = ImageOps.equalize(image)", ["equalize"]),
    ("result = ImageOps.autocontrast(image)", ["autocontrast"]),
    ("result = ImageOps.invert(image)", ["invert"]),
    ("result = image.convert('L').point(lambda p: 255 if p > 100 else 0)", ["grayscale", "point"]),
    ("result = Image.fromarray(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY))", ["grayscale"]),
    (
        "g = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY)\n_, b = cv2.threshold(g, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)\nresult = Image.fromarray(b)",
        ["grayscale", "threshold"],
    ),
    (
        "g = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY)\nresult = Image.fromarray(cv2.adaptiveThreshold(g, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 11, 2))",
        ["grayscale", "threshold"],
    ),
    (
        "g = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY)\nresult = Image.fromarray(cv2.equalizeHist(g))",
        ["grayscale", "equalize"],
    ),
    (
        "g = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY)\nresult = Image.fromarray(cv2.createCLAHE(2.0, (8, 8)).apply(g))",
        ["grayscale", "equalize"],
    ),
    ("result = Image.fromarray(cv2.GaussianBlur(np.asarray(image), (5, 5), 0))", ["blur"]),
    ("result = Image.fromarray(cv2.medianBlur(np.asarray(image), 3))", ["blur"]),
    ("result = Image.fromarray(cv2.convertScaleAbs(np.asarray(image), alpha=1.5, beta=10))", ["contrast"]),
    (
        "k = np.ones((3, 3), np.uint8)\nresult = Image.fromarray(cv2.dilate(np.asarray(image), k))",
        ["morphology"],
    ),
    (
        "a = np.asarray(image).astype(np.float32) * 1.3\nresult = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))",
        [],
    ),
    ("a = 255 - np.array(image)\nresult = Image.fromarray(a)", []),
    ("d = ImageDraw.Draw(image)\nd.rectangle((1, 1, 10, 10), outline=(255, 0, 0))\nresult = image", ["draw"]),
]


@pytest.mark.parametrize(("code", "ops"), PIXELWISE)
def test_pixelwise_ops_keep_identity_map(
    sandbox: Sandbox, src: Image.Image, code: str, ops: list[str]
) -> None:
    r = sandbox.run(code, [src])
    assert r.ok, r.error
    assert r.ops == ops
    assert r.to_source == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert r.image.size == src.size


def test_pixelwise_after_rotation_keeps_map(sandbox: Sandbox, src: Image.Image) -> None:
    code = (
        "a = np.rot90(np.asarray(image))\nb = cv2.GaussianBlur(a, (3, 3), 0)\n"
        "c = ImageEnhance.Contrast(Image.fromarray(b)).enhance(1.3)\nresult = c.crop((2, 2, 20, 30))"
    )
    r = sandbox.run(code, [src])
    assert r.ops == ["rotate_90", "blur", "contrast", "crop"]
    assert r.to_source == (0.0, -1.0, 62.0, 1.0, 0.0, 2.0)
    assert r.crop_boxes == [(34, 2, 62, 20)]


@pytest.mark.parametrize(
    "code",
    [
        "result = image.rotate(33)",
        "result = image.rotate(45, expand=True)",
        "M = cv2.getRotationMatrix2D((32, 24), 10, 1.0)\nresult = Image.fromarray(cv2.warpAffine(np.asarray(image), M, (64, 48)))",
        "result = image.transform(image.size, Image.AFFINE, (1, 0.2, 0, 0, 1, 0))",
        "result = Image.fromarray(np.roll(np.asarray(image), 5, axis=1))",
        "result = Image.new('RGB', (10, 10))",
    ],
)
def test_untrackable_ops_have_no_map(sandbox: Sandbox, src: Image.Image, code: str) -> None:
    r = sandbox.run(code, [src])
    assert r.ok, r.error
    assert r.to_source is None


def test_arbitrary_rotation_recorded_with_angle(sandbox: Sandbox, src: Image.Image) -> None:
    r = sandbox.run("result = image.rotate(33, expand=True)", [src])
    assert r.ops == ["rotate"] and r.trace[0].params["angle"] == 33.0


def test_ops_that_raise_are_not_recorded(sandbox: Sandbox, src: Image.Image) -> None:
    r = sandbox.run("im = image.rotate(90, expand=True)\nim = im.crop((0, 0, 'x', 1))", [src])
    assert r.error_kind == "exception"
    assert r.ops == ["rotate_90"]


def test_array_padding_tracked(sandbox: Sandbox, src: Image.Image) -> None:
    r = sandbox.run(
        "a = np.pad(np.asarray(image), ((3, 3), (5, 5), (0, 0)))\nresult = Image.fromarray(a[3:51, 5:69])",
        [src],
    )
    assert r.ops == ["pad", "crop"]
    assert_maps_to_source(r, src)
    r = sandbox.run("result = ImageOps.expand(image, border=4).crop((4, 4, 68, 52))", [src])
    assert r.ops == ["pad", "crop"]
    assert_maps_to_source(r, src)


def test_trace_is_deterministic(sandbox: Sandbox, src: Image.Image) -> None:
    code = "result = ImageOps.mirror(image.rotate(90, expand=True)).crop((3, 4, 30, 40))"
    a = sandbox.run(code, [src])
    b = sandbox.run(code, [src])
    assert a.trace == b.trace and a.to_source == b.to_source
