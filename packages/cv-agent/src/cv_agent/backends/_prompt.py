"""What the local backends (transformers, vLLM) share: choosing the chat template and rendering the prompt."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cv_protocol import DEFAULT_PRESET
from PIL import Image

from cv_agent.templates import TEMPLATE_FAMILIES, load_chat_template

from ._messages import to_hf_messages
from .base import BackendError

#: How every image placeholder starts in a rendered Qwen-VL prompt.
IMAGE_RUN = "<|vision_start|><|image_pad|>"


def pick_chat_template(
    choice: str, own: str | None, *, model: str, auto_family: str | None, model_type: str = ""
) -> str:
    """The template a backend renders with, for its ``chat_template`` setting.

    Args:
        choice: ``"auto"``, ``"model"``, a family in :data:`~cv_agent.templates.TEMPLATE_FAMILIES` or a path.
        own: The model's own template (``None`` if it has none).
        model: The model path, for messages.
        auto_family: Family whose template ``"auto"`` uses when the model's own cannot render tool calls
            (``None``: fall back to the model's own, else fail).
        model_type: The model's ``config.model_type``, for messages.

    Example:
        >>> pick_chat_template("auto", "{{ tool_call }}", model="m", auto_family="qwen2_5_vl")
        '{{ tool_call }}'
    """
    if choice == "model":
        if not own:
            raise BackendError(f"{model} has no chat template; set chat_template to a family or a file")
        return own
    if choice in TEMPLATE_FAMILIES:
        return load_chat_template(choice)
    if choice == "auto":
        if own and "tool_call" in own:
            return own
        if auto_family is None:
            if own:
                return own
            raise BackendError(
                f"no chat template for model type {model_type!r}; set chat_template to a .jinja path"
            )
        return load_chat_template(auto_family)
    path = Path(choice)
    if not path.is_file():
        raise ValueError(
            f"chat_template {choice!r} is not 'auto', 'model', a family {TEMPLATE_FAMILIES} or a file"
        )
    return path.read_text(encoding="utf-8")


def render_prompt(
    apply_chat_template: Callable[..., str],
    template: str | None,
    messages: list[dict[str, Any]],
    images: list[Image.Image],
    *,
    pass_tools: bool,
    tools: list[dict[str, Any]] | None = None,
) -> tuple[str, list[Image.Image]]:
    """Prompt text (the tool schemas in the system turn when ``pass_tools``) and the images in placeholder order.

    Args:
        tools: The tool schemas to render (the agent's preset's, :meth:`cv_protocol.Preset.tools`; ``[]``:
            none); ``None``: the default preset's.

    Raises:
        BackendError: The template dropped image placeholders (the invariant whose violation breaks vision
            features).
    """
    hf_messages, ordered = to_hf_messages(messages, images)
    if tools is None:
        tools = DEFAULT_PRESET.tools()
    text = apply_chat_template(
        hf_messages,
        chat_template=template,
        # None, not []: some templates render tool boilerplate for an empty list.
        tools=(tools or None) if pass_tools else None,
        add_generation_prompt=True,
        tokenize=False,
    )
    runs = text.count(IMAGE_RUN)
    if runs != len(ordered):
        raise BackendError(
            f"prompt has {runs} image placeholders but {len(ordered)} images; the chat template dropped some"
        )
    return text, ordered
