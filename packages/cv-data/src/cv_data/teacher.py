"""Teacher mode: an OpenAI-compatible model writes trajectories; every call is executed in cv-sandbox and
only trajectories whose final answer is verified correct (by :func:`cv_rewards.match_answer`) are kept."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cv_protocol import (
    SYSTEM_PROMPT,
    TOOL_CALL_START,
    ParsedCall,
    extract_answer,
    parse_error_text,
    parse_tool_calls,
    render_tool_call,
    tool_response_text,
    wrap_tool_response_parts,
)
from cv_rewards import match_answer
from cv_sandbox import Sandbox, SandboxConfig
from PIL import Image
from tqdm.auto import tqdm

from .item import Item
from .report import BuildReport


@dataclass
class TeacherConfig:
    """An OpenAI-compatible chat endpoint used as the trajectory writer.

    Attributes:
        base_url: Endpoint root, e.g. ``"http://localhost:8000/v1"``.
        model: Model name sent in the request.
        api_key_env: Environment variable holding the API key (empty: no key).
        max_turns: Maximum assistant turns per trajectory.
        temperature: Sampling temperature.
        max_tokens: Max tokens per reply.
        timeout_s: HTTP timeout per request.
        max_image_side: Images sent to the teacher are downscaled to this longest side (the sandbox and the
            saved trajectory keep full resolution).
    """

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    max_turns: int = 6
    temperature: float = 0.7
    max_tokens: int = 1024
    timeout_s: float = 120.0
    max_image_side: int = 1536

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"base_url must be an http(s) URL such as http://localhost:8000/v1, got {self.base_url!r}"
            )
        if not self.model:
            raise ValueError("model must name the teacher model")
        if self.max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {self.max_turns}")


def _data_url(im: Image.Image, max_side: int) -> str:
    im = im.convert("RGB")
    if max(im.size) > max_side:
        im = im.copy()
        im.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _to_openai(
    messages: list[dict[str, Any]], images: list[Image.Image], max_side: int
) -> list[dict[str, Any]]:
    out, k = [], 0
    for m in messages:
        parts = []
        for p in m["content"]:
            if p["type"] == "image":
                parts.append({"type": "image_url", "image_url": {"url": _data_url(images[k], max_side)}})
                k += 1
            else:
                parts.append({"type": "text", "text": p["text"]})
        # Tool results go back as user turns: hermes-style tool calls are plain text, so no tool_call_id exists.
        if m["role"] == "tool":
            out.append({"role": "user", "content": wrap_tool_response_parts(parts)})
        else:
            out.append({"role": m["role"], "content": parts})
    return out


def canonical_call_text(text: str, call: ParsedCall) -> str:
    r"""The reply with its (possibly repaired) call rewritten exactly as the model is trained to emit it.

    Teachers write readable but sloppy calls (code fences, single quotes, trailing text, several calls); SFT
    data must teach the one format the parser reads without repairs. The reasoning before the call is kept,
    anything after the executed call is dropped (it was never executed).

    Example:
        >>> t = "<think>flip</think>\n<tool_call>{'name': 'code_image_tool', 'arguments': {'code': 'result = image'}}"
        >>> canonical_call_text(t, parse_tool_calls(t)).endswith('"image_index": 0}}\n</tool_call>')
        True
    """
    raw_at = text.find(call.raw) if call.raw else -1
    tag_at = text.find(TOOL_CALL_START)
    start = tag_at if 0 <= tag_at and (raw_at < 0 or tag_at <= raw_at) else raw_at
    head = text[:start].rstrip() if start >= 0 else ""
    return (head + "\n" if head else "") + render_tool_call(call.code, call.description, call.image_index)


def teacher_trajectory(item: Item, config: TeacherConfig, client: Any, sandbox: Sandbox) -> dict[str, Any]:
    """Let the teacher solve ``item`` with real tool execution; returns the record (see :mod:`cv_data.sft`)
    with ``correct`` set. Tool calls are read with :func:`cv_protocol.parse_tool_calls`; one it cannot
    read is answered with its error message, as the agent does. Raises ``RuntimeError`` for HTTP failures."""
    images: list[Image.Image] = [item.images[0]]
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": item.question}]},
    ]
    key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = None
    for _ in range(config.max_turns):
        body = {
            "model": config.model,
            "messages": _to_openai(msgs, images, config.max_image_side),
            "temperature": config.temperature,
            "max_tokens": config.max_tokens,
        }
        r = client.post(
            config.base_url.rstrip("/") + "/chat/completions",
            json=body,
            headers=headers,
            timeout=config.timeout_s,
        )
        if r.status_code != 200:
            raise RuntimeError(f"teacher HTTP {r.status_code}: {r.text[:200]}")
        text = r.json()["choices"][0]["message"]["content"] or ""
        # Same reading as the agent loop: a call is executed (even beside an answer), else an answer ends the
        # trajectory, else an unreadable call is answered with the parser's message so the teacher can fix it.
        call = parse_tool_calls(text)
        if isinstance(call, ParsedCall):
            text = canonical_call_text(text, call)
        msgs.append({"role": "assistant", "content": [{"type": "text", "text": text}]})
        if isinstance(call, ParsedCall):
            res = sandbox.run(call.code, images, image_index=call.image_index)
            if res.ok and res.image is not None:
                images.append(res.image if res.image.mode in ("RGB", "L") else res.image.convert("RGB"))
                msgs.append(
                    {
                        "role": "tool",
                        "content": [
                            {"type": "image"},
                            {"type": "text", "text": tool_response_text(res, len(images) - 1)},
                        ],
                    }
                )
            else:
                msgs.append(
                    {"role": "tool", "content": [{"type": "text", "text": tool_response_text(res, None)}]}
                )
            continue
        answer = extract_answer(text)
        if answer is not None or call.kind == "no_call":
            break
        msgs.append({"role": "tool", "content": [{"type": "text", "text": parse_error_text(call)}]})
    ok = match_answer(answer, item.answer, choices=item.choices, task_type=item.task_type).correct
    kinds = sum(1 for m in msgs if m["role"] == "tool")
    return {
        "messages": msgs,
        "images": images,
        "id": f"teacher-{item.id}",
        "kind": "teacher" if kinds else "no_tool",
        "data_source": item.data_source,
        "item_id": item.id,
        "answer": item.answer,
        "transform": list(item.transform),
        "correct": ok,
        "teacher_answer": answer,
    }


def build_teacher_sft(
    items: Sequence[Item],
    config: TeacherConfig,
    *,
    client: Any = None,
    sandbox: Sandbox | None = None,
    report: BuildReport | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run the teacher on ``items`` and keep only verified-correct trajectories (others go to ``report``).

    ``client`` is any ``httpx.Client``-like object (tests pass one with a mock transport).

    Example:
        >>> build_teacher_sft(items, TeacherConfig("http://localhost:8000/v1", "Qwen/Qwen3-VL-32B"))  # doctest: +SKIP
    """
    import httpx

    report = report if report is not None else BuildReport()
    own_client = client is None
    client = client or httpx.Client()
    sb = sandbox or Sandbox(SandboxConfig())
    out = []
    try:
        for i, it in enumerate(tqdm(items, desc="teacher", disable=not progress)):
            report.total += 1
            try:
                rec = teacher_trajectory(it, config, client, sb)
            except (
                RuntimeError,
                ValueError,
                httpx.HTTPError,
                KeyError,
                IndexError,
                json.JSONDecodeError,
            ) as e:
                report.add_error(i, it.id, "teacher", str(e))
                continue
            if not rec["correct"]:
                report.add_error(
                    i, it.id, "verify", f"teacher answer {rec['teacher_answer']!r} != {it.answer!r}"
                )
                continue
            out.append(rec)
            report.ok += 1
    finally:
        if own_client:
            client.close()
        if sandbox is None:
            sb.close()
    return out
