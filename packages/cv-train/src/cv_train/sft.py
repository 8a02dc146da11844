"""Supervised fine-tuning on multi-turn tool trajectories with TRL's ``SFTTrainer``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cv_protocol import content_text

from ._run import ResumeWeightsMixin, train_and_save, training_args_kwargs, use_cpu
from ._run import resolve_resume as resolve_resume  # re-exported: part of this module's API
from .config import SFTRecipe
from .invariants import check_image_tokens

logger = logging.getLogger(__name__)


def fill_image_placeholders(messages: list[dict[str, Any]], images: list[Any]) -> list[dict[str, Any]]:
    """Put ``images`` into the ``{"type": "image"}`` parts of *all* turns, tool turns included, in order.

    TRL's ``prepare_multimodal_messages`` skips tool turns, so a trajectory whose tool outputs are images
    fails its placeholder count; we fill them ourselves (workaround, see the package README).

    Example:
        >>> msgs = [{"role": "user", "content": [{"type": "image", "text": None}]},
        ...         {"role": "tool", "content": [{"type": "image"}]}]
        >>> [p["image"] for m in fill_image_placeholders(msgs, ["a", "b"]) for p in m["content"]]
        ['a', 'b']
    """
    out = []
    k = 0
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, str):
            out.append({"role": msg["role"], "content": [{"type": "text", "text": content}]})
            continue
        parts = []
        for part in content or []:
            if part.get("type") == "image" and "image" not in part:
                if k >= len(images):
                    raise ValueError(f"more image placeholders than images ({len(images)})")
                parts.append({"type": "image", "image": images[k]})
                k += 1
            elif part.get("type") == "text":
                parts.append({"type": "text", "text": part.get("text") or ""})
            else:
                parts.append(dict(part))
        out.append({"role": msg["role"], "content": parts})
    if k != len(images):
        raise ValueError(f"{len(images)} images but only {k} image placeholders")
    return out


def make_sft_collator(
    processor: Any,
    *,
    chat_template: str,
    max_length: int,
    assistant_only_loss: bool = True,
    tools: list[dict[str, Any]] | None = None,
) -> Any:
    """Collator for multimodal trajectories: images in every turn, assistant-only labels, invariant-checked.

    Subclass of TRL's ``DataCollatorForVisionLanguageModeling`` that fills tool-turn images itself, optionally
    renders the tool schema (as GRPO and the agent do at inference), refuses to truncate (a cut through an image
    or an answer would silently corrupt training) and checks the image-token invariant on every batch.

    Example:
        >>> collator = make_sft_collator(processor, chat_template=tmpl, max_length=4096)  # doctest: +SKIP
        >>> batch = collator([{"messages": msgs, "images": imgs}])  # doctest: +SKIP
    """
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from .models import image_pad_token_id

    pad_id = image_pad_token_id(processor)
    merge = int(getattr(processor.image_processor, "merge_size", 2))

    class CodeVisionSFTCollator(DataCollatorForVisionLanguageModeling):
        def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            conversations = [
                fill_image_placeholders(ex["messages"], list(ex.get("images") or [])) for ex in examples
            ]
            num_images = [len(ex.get("images") or []) for ex in examples]
            output = self.processor.apply_chat_template(
                conversations,
                chat_template=self.chat_template,
                tools=tools,
                tokenize=True,
                return_dict=True,
                return_tensors="pt",
                return_assistant_tokens_mask=self.assistant_only_loss,
                processor_kwargs={
                    "padding": True,
                    "padding_side": "right",
                    "truncation": False,
                    "add_special_tokens": False,
                },
            )
            lengths = output["attention_mask"].sum(dim=1).tolist()
            too_long = [i for i, n in enumerate(lengths) if n > max_length]
            if too_long:
                raise ValueError(
                    f"{len(too_long)} conversation(s) are longer than max_length={max_length} tokens "
                    f"(longest {max(lengths)}); raise max_length, lower max_pixels, or set drop_long: true"
                )
            grid = output.get("image_grid_thw")
            check_image_tokens(
                output["input_ids"].tolist(),
                num_images,
                pad_id,
                image_grid_thw=grid.tolist() if grid is not None else None,
                merge_size=merge,
                where="sft collator",
            )
            labels = output["input_ids"].clone()
            labels[output["attention_mask"] == 0] = -100
            if self.assistant_only_loss:
                labels[output.pop("assistant_masks") == 0] = -100
            output["labels"] = labels
            return output

    return CodeVisionSFTCollator(
        processor=processor,
        max_length=None,
        assistant_only_loss=assistant_only_loss,
        chat_template=chat_template,
    )


def _drop_long(dataset: Any, collator: Any, max_length: int) -> Any:
    keep = []
    for i in range(len(dataset)):
        try:
            collator([dataset[i]])
            keep.append(i)
        except ValueError as e:
            if "longer than max_length" not in str(e):
                raise
    dropped = len(dataset) - len(keep)
    if dropped:
        logger.warning(
            "dropped %d of %d conversations longer than max_length=%d", dropped, len(dataset), max_length
        )
    if not keep:
        raise ValueError(f"every conversation is longer than max_length={max_length}: raise max_length")
    return dataset.select(keep)


def warn_other_system_prompts(records: Sequence[dict[str, Any]], preset: Any) -> int:
    """Warn (with a count) when records carry a system prompt other than ``preset``'s: the tool block the
    trainer renders is the preset's, so such data was probably built for another preset. Returns the count.

    Example:
        >>> from cv_protocol import get_preset
        >>> warn_other_system_prompts([{"messages": [{"role": "system", "content": "x"}]}], get_preset("default"))
        1
    """
    other = 0
    for rec in records:
        first = rec.get("messages", [{}])[0] if rec.get("messages") else {}
        if first.get("role") == "system" and content_text(first.get("content", "")) != preset.system_prompt:
            other += 1
    if other:
        logger.warning(
            "%d of %d SFT records have a system prompt other than preset %r's; set the recipe's preset to the "
            "one the data was built with",
            other,
            len(records),
            preset.name,
        )
    return other


def build_sft_trainer(recipe: SFTRecipe, records: list[dict[str, Any]] | None = None) -> Any:
    """Build a ready-to-train ``SFTTrainer`` from a recipe (and optional in-memory records).

    Example:
        >>> from cv_train.config import tiny_sft_recipe
        >>> trainer = build_sft_trainer(tiny_sft_recipe(max_steps=1))  # doctest: +SKIP
        >>> trainer.train()  # doctest: +SKIP
    """
    from cv_agent.templates import load_chat_template
    from cv_protocol import get_preset
    from trl import SFTConfig, SFTTrainer

    from .data import load_sft_records, sft_dataset
    from .models import load_model_and_processor, peft_config, quantization_config

    quantization_config(recipe)  # fail fast (QLoRA without CUDA) before building any data
    preset = get_preset(recipe.preset)
    if records is None:
        records = load_sft_records(recipe.dataset, recipe.num_synthetic, recipe.seed, preset)
    warn_other_system_prompts(records, preset)
    dataset = sft_dataset(records)
    model, processor, family = load_model_and_processor(recipe)
    template = load_chat_template(family, training=True)
    processor.chat_template = template
    processor.tokenizer.chat_template = template
    collator = make_sft_collator(
        processor,
        chat_template=template,
        max_length=recipe.max_length,
        assistant_only_loss=recipe.assistant_only_loss,
        tools=(preset.tools() or None) if recipe.render_tools else None,
    )
    if recipe.drop_long:
        dataset = _drop_long(dataset, collator, recipe.max_length)
    args = SFTConfig(
        **training_args_kwargs(recipe),
        max_length=recipe.max_length,
        assistant_only_loss=recipe.assistant_only_loss,
        # Our collator renders the conversations itself; keep the raw columns.
        remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        use_cpu=use_cpu(),
    )

    class CodeVisionSFTTrainer(ResumeWeightsMixin, SFTTrainer):
        """``SFTTrainer`` whose resume restores the checkpoint's weights (:class:`ResumeWeightsMixin`)."""

    trainer = CodeVisionSFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        data_collator=collator,
        peft_config=peft_config(recipe),
    )
    trainer.cv_family = family
    return trainer


def train_sft(recipe: SFTRecipe, records: list[dict[str, Any]] | None = None) -> Path:
    """Run SFT and save the final model + processor to ``<output_dir>/final``; returns that path.

    Example:
        >>> from cv_train.config import tiny_sft_recipe
        >>> train_sft(tiny_sft_recipe(output_dir="runs/sft-tiny"))  # doctest: +SKIP
        PosixPath('runs/sft-tiny/final')
    """
    return train_and_save(recipe, lambda: build_sft_trainer(recipe, records))
