"""Conversions of the agent's message list (image placeholders by index) to each backend's format."""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Callable
from typing import Any

from cv_protocol import wrap_tool_response_parts
from PIL import Image

from cv_agent.images import data_url


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise ValueError(f"message content must be a string or a list of parts, got {type(content).__name__}")
    return content


def _image_of(part: dict[str, Any], images: list[Image.Image]) -> Image.Image:
    k = part.get("image_index")
    if not isinstance(k, int) or not 0 <= k < len(images):
        raise ValueError(f"image placeholder refers to image {k!r} but {len(images)} images were given")
    return images[k]


def to_hf_messages(
    messages: list[dict[str, Any]], images: list[Image.Image]
) -> tuple[list[dict[str, Any]], list[Image.Image]]:
    """Messages for ``processor.apply_chat_template`` plus the images in placeholder order.

    Example:
        >>> msgs, ims = to_hf_messages([{"role": "user", "content": [{"type": "image", "image_index": 0}]}],
        ...                            [Image.new("RGB", (2, 2))])
        >>> msgs[0]["content"][0], len(ims)
        ({'type': 'image'}, 1)
    """
    out: list[dict[str, Any]] = []
    ordered: list[Image.Image] = []
    for m in messages:
        content = m.get("content", "")
        if isinstance(content, str):
            out.append({"role": m["role"], "content": content})
            continue
        parts: list[dict[str, Any]] = []
        for p in _parts(content):
            if p.get("type") == "image":
                ordered.append(_image_of(p, images))
                parts.append({"type": "image"})
            elif p.get("type") == "text":
                parts.append({"type": "text", "text": p.get("text", "")})
            else:
                raise ValueError(f"unsupported content part type {p.get('type')!r}")
        out.append({"role": m["role"], "content": parts})
    return out, ordered


class DataUrlCache:
    """Encodes each image once per object (turns resend the whole history; re-encoding would dominate).

    The cache keeps each image's data URL as its JSON string literal (UTF-8 bytes, quotes included), so a
    request body can splice it in (:func:`dumps_with_fragments`) instead of re-serialising hundreds of KB
    of base64 every turn.
    """

    def __init__(self, fmt: str = "png", quality: int = 90) -> None:
        self.fmt = fmt
        self.quality = quality
        self._cache: dict[int, tuple[weakref.ref[Image.Image], bytes]] = {}
        self._locks: dict[int, threading.Lock] = {}  # worker threads encoding one image wait for one encode

    def __call__(self, image: Image.Image) -> str:
        """The data URL of ``image``."""
        return json.loads(self.fragment(image))

    def cached(self, image: Image.Image) -> bool:
        """Whether ``image`` is already encoded (a :meth:`fragment` call does no image work)."""
        hit = self._cache.get(id(image))
        return hit is not None and hit[0]() is image

    def fragment(self, image: Image.Image) -> bytes:
        """The data URL of ``image`` as a JSON string literal, UTF-8 encoded: ``json.dumps(url).encode()``."""
        key = id(image)
        hit = self._cache.get(key)
        if hit is not None and hit[0]() is image:
            return hit[1]
        try:
            with self._locks.setdefault(key, threading.Lock()):
                hit = self._cache.get(key)
                if hit is not None and hit[0]() is image:
                    return hit[1]
                frag = json.dumps(data_url(image, self.fmt, self.quality), ensure_ascii=False).encode("utf-8")
                self._cache[key] = (weakref.ref(image, lambda _r, k=key, c=self._cache: c.pop(k, None)), frag)
                return frag
        finally:
            self._locks.pop(key, None)


def dumps_with_fragments(body: Any, fragments: dict[str, bytes]) -> bytes:
    """``json.dumps(body, ensure_ascii=False).encode()`` where each placeholder string ``p`` in ``body`` (a key of
    ``fragments``) is replaced by the pre-serialised JSON value ``fragments[p]``.

    Placeholders must be strings that serialise without escapes and occur nowhere else in the output; the
    count is checked and a mismatch raises ``ValueError`` (callers fall back to plain ``json.dumps``).

    Example:
        >>> dumps_with_fragments({"a": ["@p0@", 1]}, {"@p0@": b'"xyz"'})
        b'{"a": ["xyz", 1]}'
    """
    text = json.dumps(body, ensure_ascii=False)
    if not fragments:
        return text.encode("utf-8")
    pieces: list[bytes] = []
    pos = 0
    # Placeholders appear in body order; find each one's quoted form in turn.
    for placeholder, frag in fragments.items():
        quoted = '"' + placeholder + '"'
        i = text.find(quoted, pos)
        if i < 0 or text.find(quoted, i + len(quoted)) >= 0:
            raise ValueError(f"placeholder {placeholder!r} must occur exactly once in the serialised body")
        pieces.append(text[pos:i].encode("utf-8"))
        pieces.append(frag)
        pos = i + len(quoted)
    pieces.append(text[pos:].encode("utf-8"))
    return b"".join(pieces)


def to_openai_messages(
    messages: list[dict[str, Any]],
    images: list[Image.Image],
    *,
    encode: Callable[[Image.Image], str],
    tool_role: str = "user",
) -> list[dict[str, Any]]:
    """OpenAI chat-completions messages with images as data URLs.

    ``tool_role="user"`` sends a tool message as a user turn wrapped in ``<tool_response>`` tags, exactly what
    the Qwen chat templates render for a tool turn, so any OpenAI-compatible server (and hosted APIs that
    reject images in tool messages) sees the same prompt. ``tool_role="tool"`` keeps the role.

    Example:
        >>> to_openai_messages([{"role": "tool", "content": "ok"}], [], encode=str)[0]["content"][0]["text"]
        '<tool_response>\\nok\\n</tool_response>'
    """
    if tool_role not in ("user", "tool"):
        raise ValueError(f"tool_role must be 'user' or 'tool', got {tool_role!r}")
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m["role"]
        content = m.get("content", "")
        if isinstance(content, str) and role != "tool":
            out.append({"role": role, "content": content})
            continue
        parts: list[dict[str, Any]] = []
        for p in _parts(content):
            if p.get("type") == "image":
                parts.append({"type": "image_url", "image_url": {"url": encode(_image_of(p, images))}})
            elif p.get("type") == "text":
                parts.append({"type": "text", "text": p.get("text", "")})
            else:
                raise ValueError(f"unsupported content part type {p.get('type')!r}")
        if role == "tool" and tool_role == "user":
            out.append({"role": "user", "content": wrap_tool_response_parts(parts)})
        else:
            out.append({"role": role, "content": parts})
    return out
