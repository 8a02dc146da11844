"""Self-contained HTML pages for trajectories: one page per trajectory (images embedded) and an index."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cv_protocol import TOOL_CALL_END, TOOL_CALL_START, ParsedCall, extract_answer, parse_tool_calls
from PIL import Image

from .images import data_url
from .trajectory import IMAGES_DIR, ToolCall, Trajectory

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;background:#f4f5f7;color:#1d2125}
header{background:#1d2b3a;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header .meta{font-size:13px;opacity:.85;margin-top:4px}
main{max-width:1100px;margin:0 auto;padding:16px 24px}
.msg{background:#fff;border-radius:8px;margin:12px 0;padding:12px 16px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.role{font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:#5e6c84;margin-bottom:6px}
.assistant{border-left:4px solid #0052cc}.tool{border-left:4px solid #36b37e}.tool.err{border-left-color:#de350b}
.user{border-left:4px solid #6554c0}.system{border-left:4px solid #97a0af}
.think{background:#f4f5f7;color:#42526e;padding:8px 10px;border-radius:6px;white-space:pre-wrap;font-style:italic}
pre{background:#0d1117;color:#e6edf3;padding:10px;border-radius:6px;overflow-x:auto;font-size:13px}
.answer{background:#e3fcef;border:1px solid #36b37e;padding:6px 10px;border-radius:6px;display:inline-block;font-weight:600}
.error{color:#bf2600;white-space:pre-wrap}.text{white-space:pre-wrap}.warn{color:#974f0c;font-size:12px}
img.shot{max-width:100%;max-height:520px;border:1px solid #dfe1e6;border-radius:4px;display:block;margin:6px 0;image-rendering:auto}
.caption{font-size:12px;color:#5e6c84}table{border-collapse:collapse;width:100%;background:#fff}
td,th{border-bottom:1px solid #dfe1e6;padding:6px 10px;text-align:left;font-size:14px}
.stop-answer{color:#006644}.stop-error{color:#bf2600}
.verdict{margin-top:8px;padding:8px 12px;border-radius:6px;font-size:14px;display:inline-block}
.verdict.ok{background:#e3fcef;color:#006644}.verdict.bad{background:#ffebe6;color:#bf2600}
a.full{display:inline-block}a.full:hover img.shot{outline:2px solid #0052cc}
"""


@dataclass(frozen=True)
class Verdict:
    """How an episode was scored, for the top of its page.

    Attributes:
        gt: The ground-truth answer.
        correct: Whether the model's answer was accepted.
        method: Who decided: a rule (``choice``, ``numeric``, ``text``, ``math``, ``none``) or
            ``judge:<model>``.
        detail: The matcher's explanation.
    """

    gt: str
    correct: bool
    method: str
    detail: str = ""

    @property
    def decided_by(self) -> str:
        """``"judge (<model>)"`` or ``"rule (<method>)"``.

        Example:
            >>> Verdict("4", True, "judge:gpt-4o").decided_by, Verdict("4", False, "numeric").decided_by
            ('judge (gpt-4o)', 'rule (numeric)')
        """
        if self.method.startswith("judge:"):
            return f"judge ({self.method.removeprefix('judge:')})"
        return f"rule ({self.method or 'none'})"


_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.S)
# Spans removed from the free text shown beside the parsed think / call / answer blocks.
_ANSWER = re.compile(r"<answer>.*?</answer>", re.S)
_CALL = re.compile(re.escape(TOOL_CALL_START) + r".*?(?:" + re.escape(TOOL_CALL_END) + "|$)", re.S)


def _display_copy(image: Image.Image, max_side: int) -> Image.Image:
    if max(image.size) <= max_side:
        return image
    im = image.copy()
    im.thumbnail((max_side, max_side))
    return im


def _esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _assistant_html(text: str, call: ToolCall | None) -> str:
    parts: list[str] = []
    for m in _THINK.finditer(text):
        parts.append(f'<div class="think">{_esc(m.group(1).strip())}</div>')
    parsed = parse_tool_calls(text)
    if isinstance(parsed, ParsedCall):
        desc = f'<div class="caption">code on image {parsed.image_index}: {_esc(parsed.description)}</div>'
        parts.append(f"{desc}<pre><code>{_esc(parsed.code)}</code></pre>")
        if parsed.warnings:
            parts.append(f'<div class="warn">parser: {_esc("; ".join(parsed.warnings))}</div>')
    elif _CALL.search(text):
        parts.append(f'<pre class="raw"><code>{_esc(_CALL.search(text).group(0))}</code></pre>')  # type: ignore[union-attr]
    answer = extract_answer(text)
    if answer is not None:
        parts.append(f'<div>Answer: <span class="answer">{_esc(answer)}</span></div>')
    rest = _ANSWER.sub("", _CALL.sub("", _THINK.sub("", text))).strip()
    if rest:
        parts.append(f'<div class="text">{_esc(rest)}</div>')
    if call is not None and call.ops:
        ops = ", ".join(
            op["name"]
            + (f" box={op['box']}" if op.get("box") else "")
            + (f" → input {op['box_input']}" if op.get("box_input") else "")
            for op in call.ops
        )
        parts.append(f'<div class="caption">traced ops: {_esc(ops)}</div>')
    return "".join(parts)


def _content_html(
    content: Any, urls: dict[int, str], sizes: Sequence[tuple[int, int]], links: Sequence[str | None] = ()
) -> str:
    if isinstance(content, str):
        return f'<div class="text">{_esc(content)}</div>'
    out = []
    for p in content:
        if p.get("type") == "image":
            k = p.get("image_index")
            if isinstance(k, int) and k in urls:
                size = f"{sizes[k][0]}x{sizes[k][1]}" if k < len(sizes) else ""
                img = f'<img class="shot" alt="image {k}" src="{urls[k]}">'
                href = links[k] if k < len(links) else None
                if href:
                    img = f'<a class="full" href="{_esc(href)}" target="_blank" title="open at full size">{img}</a>'
                    size += ' · <a href="' + _esc(href) + '" target="_blank">full size</a>'
                out.append(f'{img}<div class="caption">image {k} {size}</div>')
            else:
                out.append(f'<div class="error">[image {_esc(k)} missing]</div>')
        elif p.get("type") == "text":
            out.append(f'<div class="text">{_esc(p.get("text", ""))}</div>')
    return "".join(out)


def trajectory_html(
    traj: Trajectory,
    *,
    max_side: int = 1024,
    verdict: Verdict | None = None,
    image_links: Sequence[str | None] = (),
) -> str:
    """The HTML page of one trajectory as a string (images embedded as PNG data URLs).

    Args:
        traj: The trajectory.
        max_side: Longest side of the embedded copies.
        verdict: How the episode was scored (ground truth, verdict, who decided), shown at the top.
        image_links: Per image index, a link (relative to the page) to the full-resolution file; each
            embedded copy opens it.

    Example:
        >>> "<html" in trajectory_html(Trajectory("a", "q"))
        True
    """
    urls = {k: data_url(_display_copy(im, max_side)) for k, im in enumerate(traj.images)}
    sizes = [im.size for im in traj.images]
    calls_by_turn = {c.turn: c for c in traj.tool_calls}
    body: list[str] = []
    turn = 0
    for m in traj.messages:
        role = m["role"]
        if role == "assistant":
            inner = _assistant_html(m["content"], calls_by_turn.get(turn))
            body.append(
                f'<section class="msg assistant"><div class="role">assistant · turn {turn}</div>{inner}</section>'
            )
            turn += 1
        elif role == "tool":
            call = calls_by_turn.get(turn - 1)
            err = call is not None and not call.ok
            body.append(
                f'<section class="msg tool{" err" if err else ""}"><div class="role">tool</div>'
                + (
                    f'<div class="error">{_esc(call.error)}</div>'
                    if err and call is not None
                    else _content_html(m["content"], urls, sizes, image_links)
                )
                + "</section>"
            )
        elif role == "system":
            body.append(
                f'<section class="msg system"><details><summary class="role">system prompt</summary>'
                f'<div class="text">{_esc(m["content"] if isinstance(m["content"], str) else "")}</div></details></section>'
            )
        else:
            body.append(
                f'<section class="msg {_esc(role)}"><div class="role">{_esc(role)}</div>'
                f"{_content_html(m['content'], urls, sizes, image_links)}</section>"
            )
    if traj.error:
        body.append(
            f'<section class="msg tool err"><div class="role">episode error</div><div class="error">{_esc(traj.error)}</div></section>'
        )
    t = traj.timings
    meta = (
        f"stop: <b>{_esc(traj.stop_reason)}</b> · answer: <b>{_esc(traj.answer)}</b> · turns: {traj.turns} · "
        f"tool calls: {len(traj.tool_calls)} ({sum(not c.ok for c in traj.tool_calls)} failed) · "
        f"time: {t.get('total_s', 0):.2f}s (model {t.get('model_s', 0):.2f}s, sandbox {t.get('sandbox_s', 0):.2f}s)"
    )
    title = f"{traj.item_id or 'trajectory'}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
        f"<style>{_CSS}</style></head><body><header><h1>{_esc(title)}: {_esc(traj.question)}</h1>"
        f'<div class="meta">{meta}</div>{_verdict_html(verdict, traj.answer)}</header>'
        f"<main>{''.join(body)}</main></body></html>"
    )


def _verdict_html(verdict: Verdict | None, answer: str | None) -> str:
    if verdict is None:
        return ""
    mark = "correct" if verdict.correct else "wrong"
    detail = f" · {_esc(verdict.detail)}" if verdict.detail else ""
    return (
        f'<div class="verdict {"ok" if verdict.correct else "bad"}" id="verdict">'
        f"<b>{mark}</b> · ground truth: <b>{_esc(verdict.gt)}</b> · model answer: <b>{_esc(answer)}</b> · "
        f"decided by: <b>{_esc(verdict.decided_by)}</b>{detail}</div>"
    )


def render_trajectory_html(
    traj: Trajectory,
    path: str | os.PathLike[str],
    *,
    max_side: int = 1024,
    verdict: Verdict | None = None,
    image_links: Sequence[str | None] = (),
) -> Path:
    """Write one self-contained HTML page (thinking, code, errors, every image) for ``traj``.

    Args:
        traj: The trajectory.
        path: Output ``.html`` file (parent directories are created).
        max_side: Images larger than this are downscaled for display (the page stays small).
        verdict: How the episode was scored, shown at the top (ground truth, verdict, who decided).
        image_links: Per image, a link relative to the page to the full-resolution file (e.g. the PNGs
            :func:`~cv_agent.save_trajectories` writes); the embedded copies open it.

    Returns:
        The written path.

    Example:
        >>> render_trajectory_html(traj, "out/q1.html")  # doctest: +SKIP
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        trajectory_html(traj, max_side=max_side, verdict=verdict, image_links=image_links), encoding="utf-8"
    )
    return out


def render_index_html(entries: Sequence[tuple[Trajectory, str]], path: str | os.PathLike[str]) -> Path:
    """Write an index page linking to per-trajectory pages.

    Args:
        entries: ``(trajectory, href)`` pairs; ``href`` relative to the index file.
        path: Output ``.html`` file.

    Example:
        >>> render_index_html([(traj, "q1.html")], "out/index.html")  # doctest: +SKIP
    """
    rows = []
    for traj, href in entries:
        stop = traj.stop_reason or "running"
        rows.append(
            f'<tr><td><a href="{_esc(href)}">{_esc(traj.item_id or href)}</a></td><td>{_esc(traj.question[:120])}</td>'
            f'<td class="stop-{_esc(stop)}">{_esc(stop)}</td><td>{_esc(traj.answer)}</td><td>{traj.turns}</td>'
            f"<td>{len(traj.tool_calls)}</td><td>{sum(not c.ok for c in traj.tool_calls)}</td></tr>"
        )
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Trajectories</title><style>{_CSS}</style></head>'
        f"<body><header><h1>Trajectories ({len(entries)})</h1></header><main><table><tr><th>item</th><th>question</th>"
        f"<th>stop</th><th>answer</th><th>turns</th><th>calls</th><th>errors</th></tr>{''.join(rows)}</table></main></body></html>"
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def write_html_report(
    trajectories: Sequence[Trajectory],
    directory: str | os.PathLike[str],
    *,
    saved_in: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``directory/index.html`` plus one page per trajectory (``directory/traj_<n>.html``).

    Args:
        trajectories: The trajectories, in the order of their ``trajectories.jsonl`` lines.
        directory: Where the pages go.
        saved_in: The directory they were loaded from (:func:`~cv_agent.load_trajectories`): the pages then
            link every image to its full-resolution PNG there.

    Example:
        >>> write_html_report(trajs, "out/html")  # doctest: +SKIP
    """
    root = Path(directory)
    entries = []
    for n, traj in enumerate(trajectories):
        name = f"traj_{n:05d}.html"
        links: list[str | None] = []
        if saved_in is not None:
            rel = Path(os.path.relpath(Path(saved_in) / IMAGES_DIR / f"{n:06d}", root)).as_posix()
            links = [f"{rel}/{k}.png" for k in range(len(traj.images))]
        render_trajectory_html(traj, root / name, image_links=links)
        entries.append((traj, name))
    return render_index_html(entries, root / "index.html")
