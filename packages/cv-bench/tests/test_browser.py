"""The HTML report renders in headless Chromium and its plots draw real pixels."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cv_bench.report import write_report
from PIL import Image

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None, reason="needs headless Chromium (scripts/bootstrap.sh --browser installs it)"
    ),
]


def screenshot(page: Path, out: Path, tmp: Path, size: str = "1300,1500") -> np.ndarray:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp / 'chrome-profile'}",
        f"--window-size={size}",
        f"--screenshot={out}",
        page.resolve().as_uri(),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=90)
    return np.asarray(Image.open(out).convert("RGB"))


def count_color(px: np.ndarray, rgb: tuple[int, int, int], tol: int = 6) -> int:
    return int((np.abs(px.astype(int) - np.array(rgb)).max(axis=-1) <= tol).sum())


def test_report_plots_render(run_dir: Path, tmp_path: Path) -> None:
    write_report(run_dir)
    px = screenshot(run_dir / "report.html", tmp_path / "shot.png", tmp_path)
    assert px.shape[0] > 1000 and px.shape[1] > 1000
    # bars are drawn in the palette: first bar of each plot #4e79a7, second #f28e2b, third #59a14f
    blue, orange, green = (
        count_color(px, (0x4E, 0x79, 0xA7)),
        count_color(px, (0xF2, 0x8E, 0x2B)),
        count_color(px, (0x59, 0xA1, 0x4F)),
    )
    assert blue > 2000, blue
    assert orange > 500, orange  # the rot90 bar is 0 % in the accuracy plot, others still draw it
    assert green > 2000, green
    # the page is not blank: plenty of dark text pixels
    assert count_color(px, (0, 0, 0), tol=80) > 5000


def test_real_run_report_and_trajectory_page_render(tmp_path: Path) -> None:
    from cv_bench import EvalConfig, evaluate, load_results

    run = tmp_path / "run"
    evaluate(EvalConfig(model="reference", suite="multi-tool", size=1, out=run, progress=False))
    px = screenshot(run / "report.html", tmp_path / "report.png", tmp_path)
    assert count_color(px, (0x4E, 0x79, 0xA7)) > 2000  # the accuracy bar (100 %) and histogram bars
    r = load_results(run)[0]
    assert r.trajectory is not None and len(r.tool_calls) == 2  # crop, then undo the rotation
    page = screenshot(run / r.trajectory, tmp_path / "traj.png", tmp_path, size="1000,3000")
    # the page shows the input and both tool outputs: a large share of the page is image content, not
    # background (the synthetic scene is colourful; the page background is near-white)
    colourful = (page.max(axis=-1).astype(int) - page.min(axis=-1).astype(int)) > 40
    assert colourful.sum() > 20_000, colourful.sum()


def test_trajectory_page_shows_the_verdict_and_links_every_image_at_full_size(tmp_path: Path) -> None:
    import re

    from cv_bench import EvalConfig, evaluate, load_results, load_suite

    run = tmp_path / "run"
    evaluate(EvalConfig(model="reference", suite="orientation", size=1, limit=2, out=run, progress=False))
    r = next(x for x in load_results(run) if x.tool_calls)
    page = run / r.trajectory
    text = page.read_text()
    assert f"ground truth: <b>{r.gt}</b>" in text and "decided by: <b>rule (" in text
    links = re.findall(r'<a class="full" href="([^"]+)"', text)
    assert len(links) == 2  # the input and the tool output
    item = next(it for it in load_suite("orientation", size=1) if it.id == r.item_id)
    full = Image.open(page.parent / links[0])
    assert full.size == item.images[0].size and max(full.size) > 384  # not the 384 px thumbnail
    px = screenshot(page, tmp_path / "traj.png", tmp_path, size="1000,1200")
    assert count_color(px, (0xE3, 0xFC, 0xEF), tol=3) > 2000  # the green "correct" verdict banner
    # the linked file opens in the browser at full size
    shot = screenshot(
        page.parent / links[0], tmp_path / "full.png", tmp_path, size=f"{full.size[0]},{full.size[1]}"
    )
    assert shot.shape[1] == full.size[0]


def test_report_with_unscored_items_shows_the_warning(run_dir: Path, tmp_path: Path) -> None:
    import json

    line = {
        "item_id": "b9/rot90",
        "sample": 0,
        "error": "b9/rot90#s0: HarnessError: context too long",
        "time": 0,
    }
    (run_dir / "errors.jsonl").write_text(json.dumps(line) + "\n")
    write_report(run_dir)
    px = screenshot(run_dir / "report.html", tmp_path / "warn.png", tmp_path, size="1300,600")
    assert count_color(px, (0xFF, 0xF4, 0xE0), tol=3) > 5000  # the orange warning box at the top
    assert count_color(px, (0xE8, 0xA3, 0x3D), tol=10) > 500  # its border
