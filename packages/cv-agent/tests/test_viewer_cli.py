"""HTML viewer (checked in headless Chromium) and the CLI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cv_agent import Agent, AgentConfig, load_trajectories, render_trajectory_html, write_html_report
from cv_agent.cli import main
from cv_agent.testing import ScriptedPolicy, StubOpenAIServer
from cv_protocol import render_tool_call
from PIL import Image

from ._fakes import FakeSandbox

MAGENTA = (255, 0, 255)
CALL = "<think>The text is sideways & tiny <b>.</think>\n" + render_tool_call("rotate90", "rotate upright", 0)


def _traj():
    im = Image.new("RGB", (420, 300), MAGENTA)
    agent = Agent(
        ScriptedPolicy(
            [CALL, "<think>fail next</think>" + render_tool_call("fail", "x", 1), "<answer>B</answer>"]
        ),
        sandbox=FakeSandbox(),
    )  # type: ignore[arg-type]
    return agent.run(im, "What is <written>?", item_id="v1")


def test_page_content(tmp_path: Path) -> None:
    traj = _traj()
    page = render_trajectory_html(traj, tmp_path / "v1.html").read_text()
    assert page.count('<img class="shot"') == 2  # the input and the rotated tool output
    assert page.count("data:image/png;base64,") == 2
    assert "rotate90" in page and "The text is sideways &amp; tiny &lt;b&gt;." in page  # thinking, escaped
    assert "What is &lt;written&gt;?" in page and "<written>" not in page
    assert "NameError" in page and 'class="answer">B<' in page
    assert "http://" not in page and "https://" not in page  # self-contained
    index = write_html_report([traj, traj], tmp_path / "html")
    html = index.read_text()
    assert html.count("<tr>") == 3 and 'href="traj_00001.html"' in html
    assert (tmp_path / "html" / "traj_00000.html").is_file()


def test_page_shows_the_verdict_and_links_full_size_images(tmp_path: Path) -> None:
    from cv_agent import Verdict, save_trajectories

    traj = _traj()
    plain = render_trajectory_html(traj, tmp_path / "plain.html").read_text()
    assert 'id="verdict"' not in plain and "full size" not in plain
    (line,) = save_trajectories([traj], tmp_path / "saved")
    links = [f"saved/images/{line:06d}/{k}.png" for k in range(len(traj.images))]
    page = render_trajectory_html(
        traj, tmp_path / "v.html", verdict=Verdict("B", True, "judge:qwen-72b", "same"), image_links=links
    ).read_text()
    assert "ground truth: <b>B</b>" in page and "decided by: <b>judge (qwen-72b)</b>" in page
    assert 'class="verdict ok"' in page
    for href in links:
        assert f'href="{href}"' in page and (tmp_path / href).is_file()
    wrong = render_trajectory_html(
        traj, tmp_path / "w.html", verdict=Verdict("A", False, "choice")
    ).read_text()
    assert 'class="verdict bad"' in wrong and "<b>wrong</b>" in wrong and "rule (choice)" in wrong
    # cv-agent view links its pages to the saved full-resolution PNGs
    index = write_html_report(
        load_trajectories(tmp_path / "saved"), tmp_path / "html", saved_in=tmp_path / "saved"
    )
    first = (index.parent / "traj_00000.html").read_text()
    assert 'href="../saved/images/000000/0.png"' in first
    assert Image.open(tmp_path / "saved/images/000000/0.png").size == (420, 300)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.browser
@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed")
def test_images_render_in_headless_chromium(tmp_path: Path) -> None:
    page = render_trajectory_html(_traj(), tmp_path / "v1.html")
    shot = tmp_path / "shot.png"
    cmd = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri(),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    px = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    magenta = (np.abs(px - np.array(MAGENTA)).sum(-1) < 30).sum()
    # the 420x300 input and its 300x420 rotated copy are drawn in full: ~250k magenta pixels
    assert magenta > 200_000, magenta
    # and a page without images shows none: the colour really comes from the embedded images
    empty = tmp_path / "empty.html"
    empty.write_text(page.read_text().replace('src="data:image/png', 'data-src="data:image/png'))
    shot2 = tmp_path / "shot2.png"
    subprocess.run(
        [*cmd[:-2], f"--screenshot={shot2}", empty.as_uri()], check=True, capture_output=True, timeout=120
    )
    px2 = np.asarray(Image.open(shot2).convert("RGB")).astype(int)
    assert (np.abs(px2 - np.array(MAGENTA)).sum(-1) < 30).sum() < 1000


def test_cli_run_against_http_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = tmp_path / "x.png"
    Image.new("RGB", (80, 60), "blue").save(img)
    with StubOpenAIServer(
        [render_tool_call("result = image.rotate(90, expand=True)", "rotate", 0), "<answer>7</answer>"]
    ) as server:
        rc = main(
            [
                "run",
                "--model",
                f"openai:{server.base_url}#stub",
                "--image",
                str(img),
                "How many?",
                "--out",
                str(tmp_path / "out"),
                "--max-turns",
                "4",
            ]
        )
    out = capsys.readouterr().out
    assert rc == 0
    assert "stop=answer answer='7' turns=2 calls=1" in out and "ok -> image 1" in out
    assert (tmp_path / "out" / "episode.html").is_file()
    traj = load_trajectories(tmp_path / "out")[0]
    assert traj.images[1].size == (60, 80)
    assert main(["view", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "html" / "index.html").is_file()


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--model", "openai:http://x/v1#m", "--image", str(tmp_path / "nope.png"), "q"]) == 2
    img = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(img)
    assert main(["run", "--model", "bogus", "--image", str(img), "q"]) == 2
    assert "bad model spec" in capsys.readouterr().err
    assert main(["view", str(tmp_path / "none")]) == 2


def test_cli_run_bad_image_files_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "ok.png"
    Image.new("RGB", (64, 64)).save(good)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(good.read_bytes()[:60])
    huge = tmp_path / "huge.png"
    Image.new("1", (20_000, 10_000)).save(huge)  # 200 MP: over PIL's decompression-bomb limit, small file
    cases = {
        str(tmp_path / "missing.png"): "image file not found",
        str(tmp_path): "it is a directory",
        str(text): "not an image file",
        str(truncated): "corrupt or truncated image",
        str(huge): "image too large to decode safely",
    }
    for path, want in cases.items():
        rc = main(
            ["run", "--model", "openai:http://127.0.0.1:9/v1#m", "--image", str(good), "--image", path, "q"]
        )
        err = capsys.readouterr().err
        assert rc == 2 and want in err and err.startswith("cv-agent run: ") and err.count("\n") == 1, err


def test_cli_run_dead_server_fails_up_front(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = tmp_path / "ok.png"
    Image.new("RGB", (64, 64)).save(img)
    out = tmp_path / "out"
    argv = [
        "run",
        "--model",
        "openai:http://127.0.0.1:9/v1#m",
        "--image",
        str(img),
        "q",
        "--max-retries",
        "0",
    ]
    rc = main([*argv, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "model check failed for 'm'" in err and err.count("\n") == 1, err
    assert not out.exists()  # nothing written for a model that cannot answer


def test_python_dash_m(tmp_path: Path) -> None:
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "cv_agent", "--help"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and "run" in r.stdout and "view" in r.stdout


def test_agent_config_max_pixels_applied_in_page(tmp_path: Path) -> None:
    agent = Agent(
        ScriptedPolicy(["<answer>A</answer>"]), AgentConfig(max_pixels=16 * 28 * 28), sandbox=FakeSandbox()
    )  # type: ignore[arg-type]
    traj = agent.run(Image.new("RGB", (2000, 1000)), "q")
    page = render_trajectory_html(traj, tmp_path / "p.html", max_side=256).read_text()
    assert "image 0 2000x1000" in page  # the caption shows the original size; the embedded copy is small
    assert len(page) < 50_000
