"""Pixel transfer through shared memory: native layouts, fallbacks, copy-on-write inputs, independent results."""

from __future__ import annotations

import mmap
from collections.abc import Iterator

import numpy as np
import pytest
from cv_sandbox import Sandbox, SandboxConfig
from cv_sandbox._shared_image import SharedImage, map_image
from cv_sandbox._wire import WireError, check_image, read_image, write_image
from PIL import Image, ImageDraw

MODES = ("1", "L", "LA", "RGB", "RGBA", "I", "F", "I;16", "CMYK", "RGBX", "YCbCr")
SIZES = ((1, 1), (7, 3), (1, 13), (13, 1), (65, 33))


def _noise(mode: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    rgba = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8), "RGBA")
    return rgba.convert(mode)


@pytest.fixture()
def shm() -> Iterator[mmap.mmap]:
    m = mmap.mmap(-1, 32 << 20)
    yield m
    m.close()


@pytest.fixture(scope="module")
def one_worker() -> Iterator[Sandbox]:
    """One worker, so consecutive calls share a child (calls_per_child > 1)."""
    sb = Sandbox(SandboxConfig(workers=1, timeout_s=5.0, memory_mb=1024, calls_per_child=32))
    yield sb
    sb.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", SIZES)
def test_write_read_roundtrip(shm: mmap.mmap, mode: str, size: tuple[int, int]) -> None:
    im = _noise(mode, size)
    meta, n = write_image(shm, im)
    assert meta.get("native", False) == (mode in ("L", "RGB", "RGBA"))
    back = read_image(shm, meta, n)
    assert back.mode == mode and back.size == size and back.tobytes() == im.tobytes()
    assert not back.readonly
    shm[:n] = b"\xa5" * n  # the result owns its pixels
    assert back.tobytes() == im.tobytes()
    mapped = map_image(shm, *write_image(shm, im))
    assert mapped.mode == mode and mapped.size == size and mapped.tobytes() == im.tobytes()


def test_palette_modes_become_rgb_or_rgba(shm: mmap.mmap) -> None:
    p = _noise("RGB", (9, 5)).convert("P")
    meta, n = write_image(shm, p)
    assert meta == {"mode": "RGB", "w": 9, "h": 5, "native": True}
    assert read_image(shm, meta, n).tobytes() == p.convert("RGB").tobytes()
    pa = _noise("RGBA", (9, 5)).convert("PA")
    meta, n = write_image(shm, pa)
    assert meta["mode"] == "RGBA"
    assert read_image(shm, meta, n).tobytes() == pa.convert("RGBA").tobytes()


def test_images_spanning_several_blocks_fall_back_to_packed(shm: mmap.mmap) -> None:
    im = _noise("RGB", (64, 48)).resize((2400, 2000))  # > 16 MiB natively: several Pillow blocks
    meta, n = write_image(shm, im)
    assert "native" not in meta and n == 2400 * 2000 * 3
    assert read_image(shm, meta, n).tobytes() == im.tobytes()


def test_write_rejects_images_that_do_not_fit() -> None:
    small = mmap.mmap(-1, 100)
    with pytest.raises(WireError):
        write_image(small, Image.new("RGB", (10, 10)))
    with pytest.raises(WireError):
        write_image(small, Image.new("I", (10, 10)))
    small.close()


def test_native_headers_are_validated() -> None:
    assert check_image({"mode": "RGB", "w": 3, "h": 2, "native": True}, 24) == ("RGB", 3, 2)
    assert check_image({"mode": "L", "w": 3, "h": 2, "native": True}, 6) == ("L", 3, 2)
    for meta, n in (
        ({"mode": "RGB", "w": 3, "h": 2, "native": True}, 18),  # packed size with the native flag
        ({"mode": "RGB", "w": 3, "h": 2}, 24),  # native size without it
        ({"mode": "LA", "w": 3, "h": 2, "native": True}, 24),  # not a native transfer mode
        ({"mode": "RGB", "w": 3, "h": 2, "native": 1}, 24),
        ({"mode": "RGB", "w": True, "h": 2, "native": True}, 8),
    ):
        with pytest.raises(WireError):
            check_image(meta, n)


def test_shared_input_is_copy_on_write(shm: mmap.mmap) -> None:
    src = _noise("RGB", (16, 12))
    meta, n = write_image(shm, src)
    before = bytes(shm[:n])
    ro = mmap.mmap(-1, n)
    ro[:] = before
    for mutate in (
        lambda im: im.paste((255, 0, 0), (0, 0, 4, 4)),
        lambda im: im.putpixel((1, 1), (1, 2, 3)),
        lambda im: ImageDraw.Draw(im).rectangle((2, 2, 9, 9), fill=(0, 255, 0)),
        lambda im: im.thumbnail((4, 4)),
        lambda im: im.frombytes(bytes(16 * 12 * 3)),
    ):
        im = map_image(ro, meta, n)
        assert isinstance(im, SharedImage) and im.readonly
        assert im == src and src == im and im != src.convert("L")
        mutate(im)
        assert im != src
        assert bytes(ro[:n]) == before
    ro.close()


def test_user_load_gets_a_private_writable_copy(shm: mmap.mmap) -> None:
    src = _noise("RGBA", (5, 4))
    meta, n = write_image(shm, src)
    before = bytes(shm[:n])
    im = map_image(shm, meta, n)
    im.load()  # library-internal calls keep the zero-copy view
    assert im.readonly
    user_globals = {"__name__": "tool_code", "image": im}
    exec("px = image.load()\npx[0, 0] = (1, 2, 3, 4)", user_globals)  # noqa: S102 - test of the hook
    assert not im.readonly and im.getpixel((0, 0)) == (1, 2, 3, 4)
    assert bytes(shm[:n]) == before
    assert repr(im).startswith("<PIL.Image.Image image mode=RGBA size=5x4")


@pytest.mark.parametrize("mode", ("L", "RGB", "RGBA", "LA", "1", "I", "P", "PA", "CMYK"))
@pytest.mark.parametrize("size", ((1, 1), (7, 3), (13, 29)))
def test_sandbox_roundtrip_modes_and_odd_sizes(sandbox: Sandbox, mode: str, size: tuple[int, int]) -> None:
    im = _noise("RGBA", size).convert(mode)
    r = sandbox.run("result = image", [im])
    assert r.ok, r.error
    expected = im.convert("RGBA" if mode == "PA" else "RGB") if mode in ("P", "PA") else im
    assert r.image.mode == expected.mode and r.image.size == size
    assert r.image.tobytes() == expected.tobytes()
    r = sandbox.run("result = image.rotate(90, expand=True)", [im])
    assert r.ok and r.image.tobytes() == expected.rotate(90, expand=True).tobytes()


def test_sandbox_array_inputs(sandbox: Sandbox) -> None:
    rng = np.random.default_rng(1)
    for shape in ((5, 7), (5, 7, 3), (5, 7, 4), (5, 7, 1)):
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        r = sandbox.run("result = np.asarray(image)", [a])
        assert r.ok, r.error
        assert np.array_equal(np.asarray(r.image), a[:, :, 0] if shape[-1:] == (1,) else a)


@pytest.mark.parametrize(
    "mutation",
    [
        "image.paste((255, 0, 0), (0, 0, 20, 20))",
        "image.putpixel((3, 3), (0, 0, 255))",
        "ImageDraw.Draw(image).rectangle((5, 5, 30, 30), fill=(0, 255, 0))",
        "px = image.load()\nfor x in range(10):\n    px[x, 2] = (9, 9, 9)",
        "image.thumbnail((8, 8))",
        "image.frombytes(bytes(40 * 30 * 3))",
        "image.putalpha(7)",
    ],
)
def test_in_place_mutation_does_not_leak_into_next_call(one_worker: Sandbox, mutation: str) -> None:
    src = _noise("RGB", (40, 30), seed=3)
    r = one_worker.run(mutation + "\nresult = image", [src])
    assert r.ok, r.error
    assert r.image.tobytes() != src.tobytes()
    for _ in range(2):  # same child, same shared input region
        again = one_worker.run("result = image", [src])
        assert again.ok and again.image.tobytes() == src.tobytes()
    assert src.tobytes() == _noise("RGB", (40, 30), seed=3).tobytes()  # the caller's image is untouched


def test_results_are_independent_of_later_calls(one_worker: Sandbox) -> None:
    a, b = _noise("RGB", (64, 48), seed=4), _noise("RGB", (64, 48), seed=5)
    ra = one_worker.run("result = image", [a])
    keep = ra.image.tobytes()
    rb = one_worker.run("result = image.convert('L').convert('RGB')", [b])
    rc = one_worker.run("result = image", [b])
    assert ra.ok and rb.ok and rc.ok
    assert ra.image.tobytes() == keep == a.tobytes()
    assert rc.image.tobytes() == b.tobytes()
    ra.image.paste((1, 2, 3), (0, 0, 10, 10))  # results are ordinary, writable images
    assert rc.image.tobytes() == b.tobytes()


def test_large_input_and_output_fall_back_cleanly(one_worker: Sandbox) -> None:
    im = _noise("RGB", (32, 32), seed=6).resize((2400, 2000))  # several Pillow blocks in the caller
    r = one_worker.run("result = image.crop((0, 0, 2400, 1999))", [im])
    assert r.ok, r.error
    assert r.image.tobytes() == im.crop((0, 0, 2400, 1999)).tobytes()
