"""Chat templates for Qwen-VL models that render hermes tool calls and images inside tool turns."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: Model families with a template shipped in ``cv_agent/chat_templates/``.
TEMPLATE_FAMILIES: tuple[str, ...] = ("qwen2_5_vl", "qwen3_vl")


def chat_template_path(family: str = "qwen2_5_vl", training: bool = False) -> Path:
    """Path of the packaged Jinja chat template for ``family``.

    ``qwen2_5_vl`` is our own template (the stock Qwen2.5-VL one has no tool calling); ``qwen3_vl`` is a
    byte-identical copy of the template TRL ships (so TRL's template identity checks still recognise it).
    The ``training`` variants wrap assistant output in ``{% generation %}`` markers for assistant-only loss.

    Args:
        family: ``"qwen2_5_vl"`` or ``"qwen3_vl"``.
        training: Return the variant with generation markers.

    Returns:
        Path of the ``.jinja`` file.

    Example:
        >>> chat_template_path("qwen2_5_vl", training=True).name
        'qwen2_5_vl_training.jinja'
    """
    if family not in TEMPLATE_FAMILIES:
        raise ValueError(f"unknown chat template family {family!r}; set family to one of {TEMPLATE_FAMILIES}")
    name = f"{family}_training.jinja" if training else f"{family}.jinja"
    return Path(str(resources.files("cv_agent") / "chat_templates" / name))


def load_chat_template(family: str = "qwen2_5_vl", training: bool = False) -> str:
    """Text of :func:`chat_template_path`.

    Example:
        >>> "<tool_call>" in load_chat_template("qwen2_5_vl")
        True
    """
    return chat_template_path(family, training).read_text(encoding="utf-8")
