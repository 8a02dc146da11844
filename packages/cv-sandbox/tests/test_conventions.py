"""The public CodeVision release's code conventions (github ByteDance-BandAI/CodeVision @ e098588,
``verl/tools/code_image_tool.py``): each one a release-trained model relies on runs here, or is refused
for a stated reason."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cv_sandbox import Sandbox
from PIL import Image

IMG = Image.fromarray(np.random.default_rng(5).integers(0, 256, (30, 40, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    ("code", "check"),
    [
        # the globals the release puts in scope
        ("draw.rectangle((2, 2, 10, 10), outline='red')\nresult = image", lambda r: r.ops == ["draw"]),
        ("draw.line((0, 0, 39, 29), fill=(0, 255, 0), width=2)", lambda r: r.ops == ["draw"]),
        ("result = PIL.ImageOps.mirror(image)", lambda r: r.ops == ["flip_horizontal"]),
        (
            "result = PIL.Image.fromarray(numpy.fliplr(numpy.asarray(image)))",
            lambda r: r.ops == ["flip_horizontal"],
        ),
        (
            "result = Image.fromarray(cv.rotate(np.asarray(image), cv.ROTATE_90_CLOCKWISE))",
            lambda r: r.ops == ["rotate_270"],
        ),
        (
            "f = ImageFont.load_default()\nd = ImageDraw.Draw(image)\nd.text((1, 1), 'hi', font=f, fill=0)\nresult = image",
            lambda r: r.ops == ["draw"],
        ),
        (
            "f = ImageFont.load_default(size=14)\nprint(f.getbbox('x')[2] > 0)\nresult = image",
            lambda r: r.stdout == "True\n",
        ),
        (
            "print(round(PI, 5), round(E, 5))\nresult = image",
            lambda r: r.stdout == f"{round(math.pi, 5)} {round(math.e, 5)}\n",
        ),
        (
            "print(type(3), type(image))\nresult = image",
            lambda r: r.stdout == "<class 'int'> <class 'PIL.Image.Image'>\n",
        ),
        (
            "print(type(np.asarray(image)) == np.ndarray, type(image) is Image.Image)\nresult = image",
            lambda r: r.stdout == "True True\n",
        ),
        ("print(isinstance(image, type(image)))\nresult = image", lambda r: r.stdout == "True\n"),
        # results left in the release's other names, its lookup order
        ("processed_image = image.rotate(90, expand=True)", lambda r: r.image.size == (30, 40)),
        ("img = img.crop((0, 0, 10, 5))", lambda r: r.image.size == (10, 5)),
        # the release returned the unrotated copy here (its `img` global shadowed `image`); fixed
        (
            "image = image.rotate(90, expand=True)",
            lambda r: r.image.size == (30, 40) and r.ops == ["rotate_90"],
        ),
        (
            "img = image.rotate(180)\nprocessed_image = image.crop((0, 0, 4, 4))",
            lambda r: r.image.size == (4, 4),
        ),
        ("output = image.crop((0, 0, 3, 3))\nprocessed_image = image", lambda r: r.image.size == (3, 3)),
        # today's names keep working
        ("result = image.crop((0, 0, 5, 5))\nimage = image.rotate(90)", lambda r: r.image.size == (5, 5)),
        ("from PIL import ImageFont\nresult = image", lambda r: r.ok),
        (
            "import PIL.ImageFont as F\nprint(F.load_default() is not None)\nresult = image",
            lambda r: r.stdout == "True\n",
        ),
    ],
)
def test_release_convention_runs(sandbox: Sandbox, code: str, check) -> None:
    r = sandbox.run(code, [IMG])
    assert r.ok, r.error
    assert check(r), (r.ops, r.stdout, r.image.size)


@pytest.mark.parametrize(
    ("code", "why"),
    [
        # three-argument type builds classes with dunder attributes: a way around the dunder rule
        ("T = type('T', (int,), {'x': 1})\nresult = image", "type(name, bases, dict)"),
        # font files: no file is ever opened in the sandbox
        ("f = ImageFont.truetype('DejaVuSans.ttf', 12)\nresult = image", "truetype"),
        ("f = ImageFont.load('font.pil')\nresult = image", "font files"),
        ("f = ImageFont.load_default().font_variant(font='/x.ttf')\nresult = image", "font_variant"),
        # the release's setattr/getattr on anything: modules and library objects stay read-only
        ("setattr(np, 'pi', 3)\nresult = image", "setattr"),
        # no image at all: the release silently returned the unchanged input; here the model is told
        ("print(image.size)", "did not assign"),
    ],
)
def test_unsafe_or_silent_conventions_are_refused(sandbox: Sandbox, code: str, why: str) -> None:
    r = sandbox.run(code, [IMG])
    assert not r.ok and why in (r.error or ""), r.error
