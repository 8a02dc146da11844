"""Code as models actually write it must just work (no false 'forbidden')."""

from __future__ import annotations

import pytest
from cv_sandbox import Sandbox
from PIL import Image

SNIPPETS = [
    "w, h = image.size\nresult = image.crop((w // 4, h // 4, 3 * w // 4, 3 * h // 4)).resize((w, h), Image.Resampling.LANCZOS)",
    "from PIL import Image, ImageEnhance\nenhancer = ImageEnhance.Contrast(img)\nresult = enhancer.enhance(2.0)",
    "import numpy as np\nimport cv2\nimg_np = np.array(img)\ngray = cv2.cvtColor(img_np, cv2.COLOR_RGB2GRAY)\nresult = Image.fromarray(gray)",
    "result = image.rotate(90, expand=True, resample=Image.BICUBIC)",
    "result = ImageOps.exif_transpose(image)",
    "def fix(im):\n    return im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)\nresult = fix(image)",
    "kernel = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])\nsharp = cv2.filter2D(np.array(image), -1, kernel)\nresult = Image.fromarray(sharp)",
    "arr = np.array(image).astype(np.float32)\nresult = Image.fromarray(np.uint8(np.clip(arr * 1.5, 0, 255)))",
    "arr = np.asarray(image)\nprint(arr.shape, arr.dtype, len(arr), arr.T.shape)\nresult = image",
    "assert isinstance(image, Image.Image)\nprint(image.mode, image.width, image.height, image.getbbox())\nresult = image",
    "px = image.load()\nprint(image.getpixel((0, 0)))\nim = image.copy()\npx = im.load()\npx[0, 0] = (255, 0, 0)\nresult = im",
    "d = ImageDraw.Draw(image)\nd.text((2, 2), 'hi', fill='red')\nd.rectangle([1, 1, 10, 10], outline='blue', width=2)\nresult = image",
    "g = cv2.cvtColor(np.array(image), cv2.COLOR_RGB2GRAY)\n_, th = cv2.threshold(g, 127, 255, cv2.THRESH_BINARY)\ncontours, _ = cv2.findContours(th, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)\nboxes = [cv2.boundingRect(c) for c in contours]\nboxes = sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)\nprint(len(boxes) >= 0)\nresult = image",
    "try:\n    x = image.crop((0, 0, 5, 5))\nexcept Exception as e:\n    print('error', e)\n    x = image\nresult = x",
    "print(f'size: {image.size}')\nparts = ['a', 'b']\nprint('-'.join(parts).upper())\nresult = image",
    "total = 0\nfor i, (a, b) in enumerate(zip(range(3), range(3))):\n    total += a * b\ni = 0\nwhile i < 3:\n    i += 1\nprint(total, i, max(1, 2), round(2.567, 1), abs(-3))\nresult = image",
    "print(image.info.get('dpi'), math.ceil(2.1), math.hypot(3, 4))\nresult = image",
    "a = np.asarray(image).astype(np.float64)\nlo, hi = np.percentile(a, (2, 98))\nb = np.interp(a, (lo, hi), (0, 255)).astype(np.uint8)\nresult = Image.fromarray(b)",
    "n = cv2.normalize(np.array(image), None, 0, 255, cv2.NORM_MINMAX)\nresult = Image.fromarray(n)",
    "big = cv2.resize(np.array(image), (0, 0), fx=2, fy=2, interpolation=cv2.INTER_CUBIC)\nresult = Image.fromarray(big)",
    "r, g, b = image.split()\nresult = Image.merge('RGB', [b, g, r])",
    "arr = np.array(image)\nresult = Image.fromarray(arr.astype('uint8'), 'RGB')",
    "hist = image.convert('L').histogram()\nprint(len(hist))\nresult = image",
    "x = np.zeros((10, 10, 3), dtype=np.uint8)\nx[2:5, 2:5] = [255, 0, 0]\nresult = Image.fromarray(x)",
    "import math\nangle = math.degrees(math.atan2(1, 1))\nresult = image.rotate(angle, expand=True, fillcolor=(255, 255, 255))",
    "class Helper:\n    pass\nh = Helper()\nresult = image",
    "lab = cv2.cvtColor(np.array(image), cv2.COLOR_RGB2LAB)\nl, a, b = cv2.split(lab)\nl2 = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(l)\nresult = Image.fromarray(cv2.cvtColor(cv2.merge((l2, a, b)), cv2.COLOR_LAB2RGB))",
    "output = ImageOps.autocontrast(image, cutoff=2)",
    "import numpy\nfrom numpy import rot90\nresult = Image.fromarray(rot90(numpy.asarray(image)))",
    "f = np.vectorize(lambda v: 255 - v)\nb = np.apply_along_axis(lambda r: r[::-1], 1, np.asarray(image.convert('L')))\nresult = Image.fromarray(f(b).astype(np.uint8))",
    "data = list(image.convert('L').getdata()) if False else []\nresult = image.point(lambda v: min(255, int(v * 1.2)))",
]


@pytest.mark.parametrize("code", SNIPPETS)
def test_model_style_code_runs(sandbox: Sandbox, code: str) -> None:
    im = Image.new("RGB", (40, 30), (100, 120, 140))
    r = sandbox.run(code, [im])
    assert r.ok, f"{r.error_kind}: {r.error}"
