"""Escape corpus: module walks, dunder tricks, format strings, file/network/process access through
numpy/PIL/cv2, environment reads, monkey-patching. Every attempt must fail and leave no trace."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cv_sandbox import Sandbox, SandboxConfig
from PIL import Image

SECRET_NAME = "CVS_TEST_SECRET_TOKEN"
SECRET = "sk-" + uuid.uuid4().hex
TARGET = Path("/tmp") / f"cvs-escape-{uuid.uuid4().hex}"

ESCAPES: list[str] = [
    # imports and builtins
    "import os\nos.system('touch {target}')",
    "import subprocess\nsubprocess.run(['touch', '{target}'])",
    "import sys\nresult = sys.modules",
    "import ctypes",
    "import importlib\nimportlib.import_module('os')",
    "import socket\nsocket.create_connection(('1.1.1.1', 80))",
    "import urllib.request\nurllib.request.urlopen('http://1.1.1.1')",
    "import multiprocessing",
    "from PIL import ImageShow",
    "import PIL.ImageFile",
    "from . import x",
    "__import__('os').system('touch {target}')",
    "open('{target}', 'w').write('x')",
    "print(open('/etc/passwd').read())",
    "eval('1 + 1')",
    "exec('import os')",
    "compile('1', 'x', 'exec')",
    "print(globals())",
    "print(vars(image))",
    "setattr(np, 'rot90', None)",
    # dunder walks
    "print(image.__class__.__mro__)",
    "print(().__class__.__bases__[0].__subclasses__())",
    "print(getattr(image, '__class__'))",
    "print(getattr(np, '__dict__'))",
    "f = lambda: 0\nprint(f.__globals__)",
    "def f():\n    pass\nprint(f.__code__)",
    "print(Image.Image.rotate.__globals__['os'])",
    "print(math.__loader__)",
    "print(__builtins__)",
    # frames and tracebacks without underscores
    "g = (x for x in [1])\nprint(g.gi_frame.f_globals)",
    "g = (x for x in [1])\nprint(getattr(g, 'gi_frame').f_back)",
    "try:\n    1 / 0\nexcept Exception as e:\n    print(e.__traceback__.tb_frame.f_globals)",
    "try:\n    1 / 0\nexcept Exception as e:\n    print(getattr(e, 'with_traceback')(None).args, getattr(e, '__traceback__'))",
    # format strings
    "print('{{0.__class__.__mro__}}'.format(image))",
    "print('{{0.__init__.__globals__}}'.format(image))",
    "print(str.format('{{0.__class__}}', image))",
    "print('{{x.__class__}}'.format_map({{'x': image}}))",
    "print(f'{{image.__class__}}')",
    # module attributes that reach the OS
    "print(Image.os.environ)",
    "print(Image.core)",
    "print(Image.builtins)",
    "print(np.ctypeslib)",
    "print(np.f2py)",
    "print(np.lib.stride_tricks.as_strided)",
    "print(cv2.utils)",
    "print(cv2.data.haarcascades)",
    "print(cv2.samples.findFile('lena.jpg'))",
    # library file / network / process functions
    "print(np.fromfile('/etc/passwd', dtype=np.uint8))",
    "print(np.load('/etc/passwd'))",
    "print(np.loadtxt('/proc/self/environ'))",
    "print(np.genfromtxt('/etc/passwd'))",
    "m = np.memmap('{target}', mode='w+', shape=(4,))",
    "np.save('{target}', np.zeros(3))",
    "np.zeros(3).tofile('{target}')",
    "np.zeros(3).dump('{target}')",
    "print(np.zeros(3).ctypes.data)",
    "print(np.asarray(image).ctypes.data_as)",
    "print(np.random.default_rng().bit_generator.ctypes)",
    "image.save('{target}')",
    "image.convert('L').save('{target}', 'PNG')",
    "print(Image.open('/etc/passwd'))",
    "im = Image.new('L', (2, 2))\nim.show()",
    "print(image.im)",
    "print(image.getim())",
    "print(image.fp, image.filename)",
    "cv2.imwrite('{target}', np.zeros((2, 2), np.uint8))",
    "print(cv2.imread('/etc/passwd'))",
    "cap = cv2.VideoCapture('http://1.1.1.1/x.mp4')",
    "print(cv2.imdecode(np.zeros(10, np.uint8), 0))",
    "d = ImageDraw.Draw(image)\nprint(d.im)",
    "d = ImageDraw.Draw(image)\nf = d.getfont().font_variant(font='/etc/passwd')",
    "print(ImageDraw.ImageFont)",
    "np.set_printoptions(threshold=1)",
    # environment reads
    "print(Image.os.getenv('{secret_name}'))",
    "import os\nprint(os.environ['{secret_name}'])",
    # monkey-patching shared objects
    "np.rot90 = lambda a: a",
    "Image.Image.rotate = None",
    "cv2.flip = None",
    "image.mode = 'L'",
    "a = np.zeros(3)\na.flags.writeable = True",
    "ImageOps.mirror = ImageOps.flip",
]


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    os.environ[SECRET_NAME] = SECRET  # set before the workers start: they must still never see it
    s = Sandbox(SandboxConfig(workers=2, timeout_s=3.0))
    yield s
    s.close()
    os.environ.pop(SECRET_NAME, None)


@pytest.mark.parametrize("template", ESCAPES)
def test_escape_fails_without_side_effects(sb: Sandbox, template: str) -> None:
    code = template.format(target=TARGET, secret_name=SECRET_NAME) + "\nresult = image"
    r = sb.run(code, [Image.new("RGB", (8, 8))])
    assert not r.ok, f"escape attempt succeeded: {code!r}"
    assert r.error_kind in ("forbidden", "exception"), r.error
    assert not TARGET.exists()
    blob = f"{r.stdout}\n{r.error}"
    assert SECRET not in blob
    assert "root:" not in blob  # /etc/passwd contents


def test_monkey_patching_cannot_leak_into_later_calls(sb: Sandbox) -> None:
    im = Image.new("RGB", (8, 4))
    sb.run("np.rot90 = lambda a: a\nImage.Image.rotate = None\nresult = image", [im])
    for _ in range(4):  # both workers, more than once
        r = sb.run("result = Image.fromarray(np.rot90(np.asarray(image)))", [im])
        assert r.ok and r.image.size == (4, 8) and r.ops == ["rotate_90"]


def test_worker_environment_is_scrubbed(sb: Sandbox) -> None:
    assert sb.run("result = image", [Image.new("L", (2, 2))]).ok
    for pid in sb.worker_pids():
        env = Path(f"/proc/{pid}/environ").read_bytes()
        assert SECRET.encode() not in env and SECRET_NAME.encode() not in env


def test_caught_forbidden_error_still_fails(sb: Sandbox) -> None:
    code = "try:\n    x = image.__class__\nexcept Exception:\n    pass\nresult = image"
    assert sb.run(code, [Image.new("L", (2, 2))]).error_kind == "forbidden"
    code = "try:\n    print(Image.os)\nexcept:\n    pass\nresult = image"
    assert not sb.run(code, [Image.new("L", (2, 2))]).ok
