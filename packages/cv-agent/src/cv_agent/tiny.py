"""Tiny random Qwen-VL checkpoints built locally (no hub access).

Used by cv-train's tiny recipes (CPU-sized SFT/GRPO runs) and by the tests of every package.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from cv_protocol import (
    DEFAULT_PRESET,
    SYSTEM_PROMPT,
    TOOL_CALL_END,
    TOOL_CALL_START,
    TOOL_RESPONSE_END,
    TOOL_RESPONSE_START,
    TOOL_SCHEMA,
    render_tool_call,
    wrap_tool_response,
)

from .templates import TEMPLATE_FAMILIES, load_chat_template

__all__ = ["SPECIAL_TOKENS", "build_tiny_vlm"]

#: Bump when the build recipe changes, so cached directories from an older recipe are rebuilt.
_BUILD_VERSION = 3
_MARKER = "cv_agent_tiny.json"

#: Special tokens in Qwen's order; the first ids of the vocabulary. ``special`` ones are stripped by
#: ``skip_special_tokens``; tags the model writes as text (tool calls, think, answer) are not, as in Qwen.
SPECIAL_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    (TOOL_CALL_START, False),
    (TOOL_CALL_END, False),
    (TOOL_RESPONSE_START, False),
    (TOOL_RESPONSE_END, False),
    ("<think>", False),
    ("</think>", False),
    ("<answer>", False),
    ("</answer>", False),
)

_VOCAB_SIZE = 1024

_CODE_SNIPPETS = (
    "result = image.rotate(90, expand=True)",
    "result = image.rotate(270, expand=True)",
    "result = image.transpose(Image.FLIP_LEFT_RIGHT)",
    "result = ImageOps.flip(image)",
    "w, h = image.size\nresult = image.crop((0, 0, w // 2, h // 2))",
    "result = ImageEnhance.Contrast(image).enhance(2.0)",
    "result = image.filter(ImageFilter.SHARPEN)",
    "arr = np.array(image)\nresult = Image.fromarray(cv2.flip(arr, 1))",
    "result = image.convert('L').point(lambda p: 255 if p > 128 else 0)",
    "result = image.resize((image.width * 2, image.height * 2))",
)


def _corpus() -> list[str]:
    lines = [SYSTEM_PROMPT, json.dumps(TOOL_SCHEMA)]
    for i, code in enumerate(_CODE_SNIPPETS):
        call = render_tool_call(code, f"Step {i}: fix the image.", i % 3)
        lines.append(f"<think>The text looks rotated; I will fix it first.</think>\n{call}")
        ok = DEFAULT_PRESET.success_template.format(index=i + 1, width=64 + i, height=48 + i)
        lines.append(wrap_tool_response(ok))
        lines.append(f"<think>Now it is readable.</think>\n<answer>{chr(65 + i % 4)}</answer>")
    lines += [
        "What is the title of the chart? Options: A. Sales B. Revenue C. Profit D. Growth",
        "The quick brown fox jumps over the lazy dog. 0123456789 + - * / = ( ) [ ] { } , . : ; ' \"",
        "Execution failed (exception): NameError: name 'foo' is not defined",
    ]
    return lines * 4


def _build_tokenizer(out: Path) -> Any:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB_SIZE,
        special_tokens=[AddedToken(t, special=True, normalized=False) for t, s in SPECIAL_TOKENS if s],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    # The trainer marks all its tokens special; the text tags must stay visible after decoding, as in Qwen.
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t, s in SPECIAL_TOKENS if not s])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=32768,
        # Qwen-VL processors read these attributes to find the placeholder tokens.
        extra_special_tokens={
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_bos_token": "<|vision_start|>",
            "vision_eos_token": "<|vision_end|>",
        },
    )
    fast.padding_side = "left"
    return fast


def _token_ids(tokenizer: Any) -> dict[str, int]:
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t, _ in SPECIAL_TOKENS}
    for t, i in ids.items():
        if i is None or i == tokenizer.unk_token_id:
            raise RuntimeError(f"tiny tokenizer lost special token {t!r}")
    return ids


def _build_model(family: str, ids: dict[str, int], vocab: int, seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    common_ids = {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }
    text_common: dict[str, Any] = {
        "vocab_size": vocab,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

        config = Qwen2_5_VLConfig(
            text_config={
                **text_common,
                # head_dim 16 -> 8 rotary pairs split over (t, h, w)
                "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
            },
            vision_config={
                "depth": 2,
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_heads": 2,
                "out_hidden_size": 64,
                "window_size": 56,
                "fullatt_block_indexes": [1],
            },
            **common_ids,
        )
        return Qwen2_5_VLForConditionalGeneration(config)
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    config = Qwen3VLConfig(
        text_config={
            **text_common,
            "head_dim": 16,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 5e6,
                "mrope_section": [2, 3, 3],
                "mrope_interleaved": True,
            },
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "num_position_embeddings": 256,
            "deepstack_visual_indexes": [1],
        },
        **common_ids,
    )
    return Qwen3VLForConditionalGeneration(config)


def _build_processor(family: str, tokenizer: Any, min_pixels: int, max_pixels: int) -> Any:
    from transformers import Qwen2VLImageProcessor

    patch = 14 if family == "qwen2_5_vl" else 16
    norm = {} if family == "qwen2_5_vl" else {"image_mean": [0.5] * 3, "image_std": [0.5] * 3}
    geometry = {"patch_size": patch, "temporal_patch_size": 2, "merge_size": 2}
    image_processor = Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels, **geometry, **norm)
    template = load_chat_template(family)
    tokenizer.chat_template = template
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor as Proc
        from transformers import Qwen2VLVideoProcessor as Video
    else:
        from transformers import Qwen3VLProcessor as Proc
        from transformers import Qwen3VLVideoProcessor as Video
    video_processor = Video(**geometry, **norm)
    return Proc(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=template,
    )


def build_tiny_vlm(
    out_dir: str | os.PathLike[str],
    family: str = "qwen2_5_vl",
    seed: int = 0,
    *,
    min_pixels: int = 56 * 56,
    max_pixels: int = 256 * 28 * 28,
) -> Path:
    """Build and save a tiny random Qwen-VL model plus processor, without any hub access.

    The model comes from its config class (2 text layers, hidden 64, a 2-block vision tower of width 32);
    the tokenizer is a byte-level BPE trained on the fly on a small corpus of prompts, tags and code, with
    Qwen's special tokens (``<|im_start|>``, ``<|im_end|>``, ``<|endoftext|>``, ``<|vision_start|>``,
    ``<|vision_end|>``, ``<|image_pad|>``, ``<|video_pad|>``) and text tags (``<tool_call>``, ``<think>``,
    ``<answer>``, ...) as single tokens whose ids the model config uses. The processor carries our chat
    template (hermes tools, images inside tool turns). Builds are cached: calling again with the same
    arguments returns the existing directory without rebuilding (a marker file records the arguments).

    Args:
        out_dir: Directory to write (created; reused when it already holds a build with these arguments).
        family: ``"qwen2_5_vl"`` or ``"qwen3_vl"``.
        seed: Torch seed for the random weights.
        min_pixels: Processor minimum pixels per image.
        max_pixels: Processor maximum pixels per image (small by default, to keep CPU tests fast).

    Returns:
        ``Path(out_dir)``, loadable with ``AutoModelForImageTextToText.from_pretrained`` and
        ``AutoProcessor.from_pretrained``.

    Example:
        >>> path = build_tiny_vlm("/tmp/tiny-qwen2_5_vl")  # doctest: +SKIP
        >>> AutoModelForImageTextToText.from_pretrained(path)  # doctest: +SKIP
    """
    if family not in TEMPLATE_FAMILIES:
        raise ValueError(f"unknown family {family!r}; set family to one of {TEMPLATE_FAMILIES}")
    if not 0 < min_pixels <= max_pixels:
        raise ValueError(f"need 0 < min_pixels <= max_pixels, got {min_pixels} and {max_pixels}")
    out = Path(out_dir)
    wanted = {
        "version": _BUILD_VERSION,
        "family": family,
        "seed": seed,
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
    }
    marker = out / _MARKER
    if marker.is_file():
        try:
            if json.loads(marker.read_text()) == wanted:
                return out
        except (OSError, ValueError):
            pass
        shutil.rmtree(out)  # our own stale build: safe to replace
    elif out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not a tiny-model build; pass an empty or new directory")

    tokenizer = _build_tokenizer(out)
    ids = _token_ids(tokenizer)
    model = _build_model(family, ids, len(tokenizer), seed)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = ids["<|endoftext|>"]
    processor = _build_processor(family, tokenizer, min_pixels, max_pixels)

    # Write to a sibling temp dir and rename, so concurrent builders never see a half-written model.
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the build is meant to be shared
    try:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / _MARKER).write_text(json.dumps(wanted))
        if out.exists():
            out.rmdir()  # empty (checked above)
        try:
            os.replace(tmp, out)
        except OSError:
            if not (out / _MARKER).is_file():  # lost a race to a builder that did not finish
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
