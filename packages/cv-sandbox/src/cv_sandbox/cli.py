"""``cv-sandbox`` command line: run a code file on images, or a short demo."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image

from .sandbox import IsolationError, Sandbox, SandboxConfig, load_image

_DEMO_SNIPPETS: list[tuple[str, str]] = [
    ("undo a 90-degree rotation", "result = image.rotate(-90, expand=True)"),
    (
        "crop a region with NumPy slicing and rotate with OpenCV",
        "a = np.asarray(image)\nresult = Image.fromarray(cv2.rotate(a[20:120, 40:200], cv2.ROTATE_90_CLOCKWISE))",
    ),
    (
        "enhance contrast and sharpen",
        "im = ImageEnhance.Contrast(image).enhance(1.8)\nresult = im.filter(ImageFilter.SHARPEN)",
    ),
    ("an escape attempt (must fail)", "import os\nresult = image"),
    ("an infinite loop (must time out)", "while True:\n    pass"),
]


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cv-sandbox", description="Run model-written image code in the sandbox.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run CODE_FILE on images and print the summary and trace as JSON")
    r.add_argument("code_file", help="Python file with the code ('-' reads stdin)")
    r.add_argument(
        "--image", action="append", required=True, help="input image path (repeatable; index 0 first)"
    )
    r.add_argument(
        "--image-index", type=int, default=0, help="which image the code sees as `image` (default 0)"
    )
    r.add_argument("-o", "--output", help="where to write the result image (PNG by extension)")
    r.add_argument("--timeout", type=float, default=SandboxConfig.timeout_s, help="seconds per execution")
    r.add_argument("--memory-mb", type=int, default=SandboxConfig.memory_mb, help="memory allowance in MiB")
    d = sub.add_parser("demo", help="create an image, run example snippets and print the results")
    d.add_argument(
        "--timeout", type=float, default=2.0, help="seconds per execution (the demo times out a loop)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cv-sandbox``; returns the process exit status (2 and a one-line message on bad
    input, never a traceback).

    Example:
        >>> main(["demo"])  # doctest: +SKIP
        0
    """
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        return _demo(args)
    except UsageError as exc:
        print(f"cv-sandbox: error: {exc}", file=sys.stderr)
        return 2


class UsageError(Exception):
    """Bad input on the command line (reported in one line)."""


def _read_code(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.buffer.read().decode("utf-8")
        return Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UsageError(f"code file not found: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"code file is a directory: {path}") from None
    except PermissionError:
        raise UsageError(f"cannot read code file (permission denied): {path}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"code file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"cannot read code file {path}: {exc.strerror or exc}") from None


def _check_output(path: str) -> Path:
    out = Path(path)
    if out.suffix.lower() not in Image.registered_extensions():
        raise UsageError(f"cannot tell the image format of -o {path}: use an extension such as .png or .jpg")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if out.is_dir() or not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise UsageError(f"cannot write the result to {path}: not writable")
    return out


def _run(args: argparse.Namespace) -> int:
    code = _read_code(args.code_file)
    out = _check_output(args.output) if args.output else None
    try:
        config = SandboxConfig(workers=1, timeout_s=args.timeout, memory_mb=args.memory_mb)
    except ValueError as exc:
        raise UsageError(
            str(exc).replace("timeout_s", "--timeout").replace("memory_mb", "--memory-mb")
        ) from None
    images = []
    for p in args.image:
        try:
            images.append(load_image(Path(p), config.max_input_pixels))
        except ValueError as exc:
            raise UsageError(str(exc).splitlines()[0]) from None
    try:
        with Sandbox(config) as sb:
            res = sb.run(code, images, image_index=args.image_index)
    except IsolationError as exc:
        raise UsageError(str(exc)) from None
    if res.error_kind == "bad_input":
        raise UsageError(res.error or "bad input")
    summary = res.summary()
    if res.ok and out is not None and res.image is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            res.image.save(out)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot write the result to {out}: {exc}") from None
        summary["output"] = str(out)
    print(json.dumps(summary, indent=2))
    return 0 if res.ok else 1


def _demo(args: argparse.Namespace) -> int:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (320, 200), (245, 245, 240))
    draw = ImageDraw.Draw(img)
    draw.rectangle((40, 20, 200, 120), outline=(20, 60, 160), width=4)
    draw.text((60, 60), "CodeVision", fill=(10, 10, 10))
    img = img.rotate(90, expand=True)  # the "perturbed" input the model would see
    failures = 0
    with (
        Sandbox(SandboxConfig(workers=1, timeout_s=args.timeout)) as sb,
        tempfile.TemporaryDirectory() as tmp,
    ):
        print(f"hardening: {json.dumps(sb.hardening)}")
        for title, code in _DEMO_SNIPPETS:
            res = sb.run(code, [img])
            expect_fail = "must" in title
            good = (not res.ok) if expect_fail else res.ok
            failures += 0 if good else 1
            print(f"\n== {title} ({'as expected' if good else 'UNEXPECTED'})")
            print(code)
            line = {
                "ok": res.ok,
                "size": list(res.image.size) if res.image else None,
                "ops": res.ops,
                "crop_boxes": res.crop_boxes,
                "to_source": res.to_source,
                "error_kind": res.error_kind,
                "error": res.error,
                "ms": round(res.duration_s * 1000, 1),
            }
            print(json.dumps(line))
            if res.image is not None:
                res.image.save(Path(tmp) / "out.png")
    return 1 if failures else 0
