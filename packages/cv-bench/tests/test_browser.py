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
