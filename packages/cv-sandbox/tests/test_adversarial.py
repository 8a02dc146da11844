"""Adversarial corpus, written as an attacker would try it, one class of breach per section.

Every case asserts three things: nothing leaked (a secret planted in the caller's environment, in a file
and in an earlier call never shows up in the output), nothing was written (no file appears in a watched
directory), and the pool still serves (a canary call right after succeeds with the right trace). CI runs
this file as root and again as an unprivileged user with every capability dropped (``scripts/test.sh``).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from cv_sandbox import Sandbox, SandboxConfig
from PIL import Image

SECRET = "sk-" + uuid.uuid4().hex
SECRET_ENV = "CVS_ADVERSARIAL_SECRET"
WATCH = Path(tempfile.mkdtemp(prefix="cvs-watch-"))
TARGET = WATCH / "pwned"
SECRET_FILE = WATCH / "secret.txt"
SECRET_FILE.write_text(SECRET)
IMG = Image.fromarray(np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8))
CANARY = "result = image.rotate(90, expand=True).crop((1, 2, 9, 12))"


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    os.environ[SECRET_ENV] = SECRET  # set before the workers start: they must still never see it
    s = Sandbox(SandboxConfig(workers=1, timeout_s=3.0, memory_mb=512))
    yield s
    s.close()
    os.environ.pop(SECRET_ENV, None)


def _fill(template: str) -> str:
    return (
        template.replace("TARGET", str(TARGET))
        .replace("SECRET_FILE", str(SECRET_FILE))
        .replace("SECRET_ENV", SECRET_ENV)
    )


def _assert_contained(sb: Sandbox, r: object, extra_secrets: tuple[str, ...] = ()) -> None:
    blob = f"{getattr(r, 'stdout', '')}\n{getattr(r, 'error', '')}"
    for s in (SECRET, *extra_secrets):
        assert s not in blob, "secret leaked"
    for needle in ("<frame", "<function", "<module 'os'", "<code object", "root:x:0"):
        assert needle not in blob, f"interpreter internals leaked: {needle}"
    assert sorted(p.name for p in WATCH.iterdir()) == ["secret.txt"], "something was written"
    canary = sb.run(CANARY, [IMG])
    assert canary.ok, f"the pool no longer serves: {canary.error}"
    assert canary.ops == ["rotate_90", "crop"] and canary.image.size == (8, 10)


def _refused(sb: Sandbox, code: str, kinds: tuple[str, ...] = ("forbidden",)) -> None:
    r = sb.run(_fill(code) + "\nresult = image", [IMG])
    assert not r.ok and r.error_kind in kinds, (code, r.error_kind, r.error)
    _assert_contained(sb, r)


# ---------------------------------------------------------------------------------------------- 1. format
# No dunder, frame or harness object reachable by any route, format mini-language field names included.
FORMAT_ESCAPES = [
    "print('{0.__class__}'.format(image))",
    "print('{0.__init__.__globals__}'.format(image))",
    "print('{0[0].__class__}'.format([image]))",
    "print('{x.__class__}'.format_map({'x': image}))",
    "print('{0:{1.__class__}}'.format(1, image))",
    "print('{0.__class__!r}'.format(image))",
    "class S(str):\n    pass\nprint(S('{0.__class__}').format(image))",
    "class S(str):\n    pass\nprint(S.format('{0.__class__}', image))",
    "class S(str):\n    pass\nprint(getattr(S, 'format')('{0.__class__}', image))",
    "class S(str):\n    pass\nprint(getattr(S, 'format_map')('{x.__class__}', {'x': image}))",
    "f = list(map(getattr, [str], ['format']))[0]\nprint(f('{0.__class__}', image))",
    "t = np.dtype('U1').type\nprint(t.format('{0.__class__}', image))",
    "t = np.asarray(['a']).dtype.type\nprint(t('{0.__class__}').format(image))",
    "t = np.str_\nprint(t('{0.__init__}').format(image))",
    "print(type('').format('{0.__class__}', image))",
    "print(type('x')('{0.__class__}').format(image))",
    "print('{0.__self__}'.format(print))",
    "print('{0.gi_frame}'.format((x for x in [1])))",
    "g = (x for x in [1])\nprint('{0.gi_frame.f_back.f_locals}'.format(g))",
    "print('{0.__traceback__}'.format(ValueError()))",
    "try:\n    1 / 0\nexcept Exception as e:\n    print('{0.__traceback__.tb_frame.f_back.f_locals}'.format(e))",
    "print('{0.im}'.format(image))",
    "print('{0.getdata.__func__}'.format(image))",
    "d = image.getdata()\nprint('{0._cvs_image}'.format(d))",
    "print('{0.__dict__}'.format(np))",
    "print(''.join(map('{0.__class__}'.format, [image])))",
    "fmt = '{0.__class__}'.format\nprint(fmt(image))",
    "print(str.format('{0.__class__}', image))",
    "print(getattr(image, '__class__'))",
    "print(getattr(image, 'rotate').__globals__)",
    "print(list(map(getattr, [image], ['__class__'])))",
    "print(np.vectorize(getattr)(np.array([image], dtype=object), '__class__'))",
    "print(sorted([image], key=lambda x: x.__class__))",
    "print(hasattr(image, '__class__'))",
    "print(type(image).__mro__)",
    "print(type(np.asarray(image)).__subclasses__())",
    "type('X', (object,), {})",
    "print(type(image)(None))",
    "print(image.getdata().fillband)",
    "g = (x for x in [1])\nprint(g.gi_frame)",
    "print(getattr(ValueError(), 'with_traceback'), ValueError().__traceback__)",
    "print(vars(image))",
    "print(globals())",
]


@pytest.mark.parametrize("code", FORMAT_ESCAPES)
def test_format_and_dunder_traversal_is_refused(sb: Sandbox, code: str) -> None:
    _refused(sb, code, ("forbidden", "exception"))


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("print('{:.2f} {} {x}'.format(3.14159, 'a', x=1))", "3.14 a 1\n"),
        ("print('{0[1]} {0[0]}'.format([5, 6]))", "6 5\n"),
        ("print('{w}x{h}'.format_map({'w': image.width, 'h': image.height}))", "32x24\n"),
        ("print('{0.size} {0.mode}'.format(image))", "(32, 24) RGB\n"),
        ("print('%s-%d' % ('a', 3))", "a-3\n"),
    ],
)
def test_safe_formatting_still_works(sb: Sandbox, code: str, expected: str) -> None:
    r = sb.run(code + "\nresult = image", [IMG])
    assert r.ok and r.stdout == expected, r.error
    _assert_contained(sb, r)


# ---------------------------------------------------------------------------------------------- 2. confidentiality
# Nothing of an earlier call is observable by a later one: a fresh process per call.
PLANT = [
    "secret = '{s}'\nprint(secret)\nresult = Image.fromarray(np.full((40, 50, 3), 77, np.uint8))",
    "class Keep:\n    value = '{s}'\nresult = image",
    "np.random.seed(12345)\nresult = image",
    "buf = np.full((300, 300, 4), 201, np.uint8)\nresult = Image.fromarray(buf)",
    "print('{s}' * 50)\nresult = image.rotate(45)",
    "xs = ['{s}'] * 100000\nresult = image",
]
PROBES = [
    "print(secret)",
    "print(Keep.value)",
    "print(np.random.randint(0, 10 ** 9, 3))",
    "a = np.empty((300, 300, 4), np.uint8)\nprint(int(a.max()), int(a.sum()))",
    "b = Image.new('RGBA', (300, 300), None)\nprint(np.asarray(b).max())",
    "m = np.float32([[1, 0, 1000], [0, 1, 1000]])\n"
    "w = cv2.warpAffine(np.asarray(image), m, (300, 300), borderMode=cv2.BORDER_TRANSPARENT)\n"
    "print(int(w.max()), int(w.sum()))",
    "print(len(xs))",
    "print(dir())",
]


def test_nothing_of_an_earlier_call_is_observable(sb: Sandbox) -> None:
    baseline = {code: sb.run(code + "\nresult = image", [IMG]) for code in PROBES}
    for plant in PLANT:
        secret = "pl-" + uuid.uuid4().hex
        big = Image.fromarray(np.random.default_rng(7).integers(0, 256, (300, 300, 4), dtype=np.uint8))
        r1 = sb.run(plant.replace("{s}", secret), [big])
        assert r1.ok, r1.error
        for code in PROBES:
            r2 = sb.run(code + "\nresult = image", [IMG])
            assert secret not in f"{r2.stdout}{r2.error}"
            base = baseline[code]
            assert (r2.stdout, r2.error_kind) == (base.stdout, base.error_kind), (plant, code, r2.stdout)
            _assert_contained(sb, r2, (secret,))


@pytest.mark.parametrize("code", PROBES)
def test_probe_sees_only_zeros_or_nothing(sb: Sandbox, code: str) -> None:
    big = Image.fromarray(np.full((300, 300, 4), 233, np.uint8))
    assert sb.run("result = image.rotate(90)", [big]).ok  # pixels of an earlier call: 233 everywhere
    r = sb.run(code + "\nresult = image", [IMG])
    assert "233" not in r.stdout.replace("2330", "")
    _assert_contained(sb, r)


def test_every_call_gets_a_new_process(sb: Sandbox) -> None:
    (w,) = sb._pool.workers
    seen = set()
    for _ in range(5):
        assert sb.run("result = image", [IMG]).ok
        assert w.cur is None  # retired right after its one call
        seen.add(max(w.dirty | {0}))
    for _ in range(3):
        sb.run("import os", [IMG])
    r = sb.run("print(1)\nresult = image", [IMG])
    _assert_contained(sb, r)


def test_result_region_is_cleared_after_each_call(sb: Sandbox) -> None:
    big = Image.fromarray(np.full((100, 100, 3), 199, np.uint8))
    assert sb.run("result = image", [big]).ok
    (w,) = sb._pool.workers
    assert bytes(w.out_map[: 100 * 100 * 4]) == bytes(100 * 100 * 4)
    small = Image.new("RGB", (4, 4))
    assert sb.run("result = image", [small]).ok
    assert bytes(w.in_map[4 * 4 * 4 : 100 * 100 * 4]) == bytes(100 * 100 * 4 - 64)


# ---------------------------------------------------------------------------------------------- 3. native memory
# No decoder names, raw cores or unchecked resizes; one call's corruption never reaches another.
DECODERS = [
    "pcd",
    "jpeg",
    "zip",
    "gif",
    "tiff_lzw",
    "packbits",
    "pcx",
    "sgi_rle",
    "tga_rle",
    "bcn",
    "fli",
    "msp",
]
NATIVE_ESCAPES = [
    *(f"Image.frombytes('RGB', (768, 512), bytes(100), '{d}')" for d in DECODERS),
    *(f"image.frombytes(bytes(100), '{d}')" for d in DECODERS[:6]),
    "Image.frombytes('RGB', (4, 4), bytes(48), 'raw', 'RGB;16B')",
    "print(image.tobytes('jpeg', 'RGB'))",
    "print(image.tobytes('zip'))",
    "print(image.tobitmap())",
    "image.getdata().fillband(0, 7)",
    "d = image.getdata()\nprint(d.im)",
    "print(ImageDraw.Draw(image).draw)",
    "f = ImageFont.load_default()\nprint(f.font)",
    "f = ImageFont.load_default()\nm = f.getmask2('x')",
    "f = ImageFont.load_default()\nprint(f.getmask('x'))",
    "print(image.im)",
    "print(image.getim())",
    "print(Image.core)",
    "a = np.array(image)\na.resize((1 << 16,), refcheck=False)",
    "a = np.zeros((4, 4))\nb = a[1:]\na.resize((1,))",
    "a = np.zeros((4, 4))\ntype(a).resize(a, (1,))",
    "a = np.zeros((4, 4))\nnp.ndarray.resize(a, (1,))",
    "print(np.asarray(image).ctypes)",
    "a = np.zeros(4)\na.strides = (0,)",
    "a = np.zeros(4)\na.shape = (1000,)",
    "print(np.lib.stride_tricks.as_strided(np.zeros(4), (10 ** 6,), (8,)))",
    "print(np.frombuffer(b'x' * 8, np.uint8, offset=100))",
    "print(Image.frombuffer('L', (100, 100), b'x'))",
    "print(ImageFont.truetype('/etc/passwd', 10))",
    "f = ImageFont.load_default()\nprint(f.font_variant(font='/etc/passwd'))",
    "print(image.draft('L', (1, 1)))",
]


@pytest.mark.parametrize("code", NATIVE_ESCAPES)
def test_native_corruption_routes_are_refused(sb: Sandbox, code: str) -> None:
    _refused(sb, code, ("forbidden", "exception"))


def test_corruption_soak_never_reaches_innocent_calls(sb: Sandbox) -> None:
    """What a 84-call soak of such attempts did to 77 later innocent calls: now none is hurt."""
    for k in range(3):
        for code in NATIVE_ESCAPES[:: 3 + k]:
            sb.run(code + "\nresult = image", [IMG])
            r = sb.run(CANARY, [IMG])
            assert r.ok and r.ops == ["rotate_90", "crop"], (code, r.error)
    _assert_contained(sb, sb.run(CANARY, [IMG]))


@pytest.mark.parametrize(
    "code",
    [
        "a = np.asarray(image).copy()\nprint(a.setflags(write=True))",
        "print(list(image.getdata())[:2], len(image.getdata()))",
        "print(np.asarray(image.getdata()).shape)",
        "print(Image.frombytes('L', (2, 2), bytes([1, 2, 3, 4])).getpixel((1, 1)))",
        "print(len(image.tobytes()))",
        "f = ImageFont.load_default(12)\nprint(f.getbbox('ab'))",
    ],
)
def test_checked_forms_still_work(sb: Sandbox, code: str) -> None:
    r = sb.run(code + "\nresult = image", [IMG])
    assert r.ok, r.error
    _assert_contained(sb, r)


# ---------------------------------------------------------------------------------------------- 4. OS reach
# Even with the language layer intact, every route to files, network, processes goes nowhere.
OS_ESCAPES = [
    "import os\nos.kill(1, 9)",
    "import signal",
    "import ctypes\nctypes.CDLL(None).kill(1, 9)",
    "import resource",
    "import socket\nsocket.socket()",
    "import mmap",
    "import multiprocessing.shared_memory",
    "import subprocess\nsubprocess.run(['touch', 'TARGET'])",
    "open('SECRET_FILE').read()",
    "print(Image.open('SECRET_FILE'))",
    "print(np.fromfile('SECRET_FILE', np.uint8))",
    "print(np.loadtxt('SECRET_FILE'))",
    "np.save('TARGET', np.zeros(3))",
    "image.save('TARGET')",
    "cv2.imwrite('TARGET', np.zeros((2, 2), np.uint8))",
    "print(cv2.imread('SECRET_FILE'))",
    "cv2.VideoCapture('SECRET_FILE')",
    "print(Image.os.environ['SECRET_ENV'])",
    "print(np.f2py)",
    "print(cv2.utils)",
    "__import__('os')",
    "import posix",
    "import _posixsubprocess",
    "import PIL.Image as I\nprint(I.os)",
    "from numpy import ctypeslib",
]


@pytest.mark.parametrize("code", OS_ESCAPES)
def test_os_reach_is_refused(sb: Sandbox, code: str) -> None:
    _refused(sb, code, ("forbidden", "exception"))


# ---------------------------------------------------------------------------------------------- 5. fairness
def test_greedy_callers_cannot_starve_a_third() -> None:
    with Sandbox(SandboxConfig(workers=1, timeout_s=0.6)) as s:
        assert s.run("result = image", [IMG]).ok
        done: dict[str, float] = {}
        t0 = time.monotonic()

        def greedy(tag: str) -> None:
            for k in range(3):
                s.run("while True:\n    pass", [IMG])
                done.setdefault(tag, 0.0)
                done[f"{tag}{k}"] = time.monotonic() - t0

        def polite() -> None:
            r = s.run("result = image", [IMG])
            done["polite"] = time.monotonic() - t0
            done["polite_ok"] = float(r.ok)

        threads = [threading.Thread(target=greedy, args=(t,)) for t in "ab"]
        for t in threads:
            t.start()
        time.sleep(0.2)  # both greedy callers hold or wait for the worker
        p = threading.Thread(target=polite)
        p.start()
        for t in (*threads, p):
            t.join(30)
        assert done["polite_ok"] == 1.0
        # First come, first served: the polite call runs after at most the two calls queued before it.
        assert done["polite"] < 3 * 0.6 + 2.0, done
        _assert_contained(s, s.run("result = image", [IMG]))


def test_acquire_timeout_is_a_clear_busy_error() -> None:
    with Sandbox(SandboxConfig(workers=1, timeout_s=2.0, acquire_timeout_s=0.3)) as s:
        t = threading.Thread(target=lambda: s.run("while True:\n    pass", [IMG]))
        t.start()
        time.sleep(0.3)
        r = s.run("result = image", [IMG])
        assert r.error_kind == "busy" and "acquire_timeout_s" in r.error and "workers" in r.error
        t.join(10)
        _assert_contained(s, s.run("result = image", [IMG]))


def test_close_with_calls_in_flight_returns_closed_errors() -> None:
    s = Sandbox(SandboxConfig(workers=1, timeout_s=5.0))
    results: list = []
    threads = [
        threading.Thread(target=lambda: results.append(s.run("while True:\n    pass", [IMG])))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    time.sleep(0.5)
    s.close()
    for t in threads:
        t.join(10)
    assert len(results) == 3
    assert all(r.error_kind == "closed" and "closed" in r.error for r in results), [r.error for r in results]
    with pytest.raises(RuntimeError, match="closed"):
        s.run("result = image", [IMG])
    assert sorted(p.name for p in WATCH.iterdir()) == ["secret.txt"]
