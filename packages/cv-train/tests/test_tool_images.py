"""The image a tool returns reaches the model: its pixels, its placeholder tokens and the loss, in SFT and GRPO.

A tool-turn image that is dropped, duplicated or put under the wrong placeholder passes every count-based
check when the counts happen to agree, and the model then learns to answer without it. These tests follow
the tool image itself: its pixel rows in the batch, the vision features written into its placeholder
tokens, and the log-probabilities of the answer, which must change when (and only when) the tool image does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from cv_data.testing import tiny_item
from cv_train.config import tiny_rl_recipe, tiny_sft_recipe
from cv_train.rl import build_rl_trainer
from cv_train.testing import script_rollouts, tool_call_turn
from PIL import Image

from .test_data import hand_record

pytestmark = pytest.mark.slow


def _quadrants(colours: tuple[str, str, str, str], size: int = 56) -> Image.Image:
    """Four coloured quadrants (top-left, top-right, bottom-left, bottom-right): every image token differs."""
    im = Image.new("RGB", (size, size))
    h = size // 2
    for (x, y), c in zip(((0, 0), (h, 0), (0, h), (h, h)), colours, strict=True):
        im.paste(c, (x, y, x + h, y + h))
    return im


def _image_features(model: Any, pixel_values: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model.model.get_image_features(pixel_values, grid)
    feats = getattr(out, "pooler_output", out)
    return torch.cat(list(feats)) if isinstance(feats, list | tuple) else feats


def _placeholder_embeddings(model: Any, inputs: dict[str, Any], image_pad_id: int) -> list[torch.Tensor]:
    """What the language model receives at each image's placeholder run (one tensor per image, in order)."""
    seen: dict[str, torch.Tensor] = {}
    hook = model.model.language_model.register_forward_pre_hook(
        lambda _m, _a, kw: seen.update(embeds=kw["inputs_embeds"]), with_kwargs=True
    )
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        hook.remove()
    runs: list[torch.Tensor] = []
    for row, ids in zip(seen["embeds"], inputs["input_ids"], strict=True):
        positions = (ids == image_pad_id).nonzero().flatten().tolist()
        start = 0
        for k in range(1, len(positions) + 1):
            if k == len(positions) or positions[k] != positions[k - 1] + 1:
                runs.append(row[positions[start:k]])
                start = k
    return runs


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen3_vl"])
def sft_parts(request: pytest.FixtureRequest, runs_root: Path) -> tuple[Any, Any, Any]:
    from cv_agent.templates import load_chat_template
    from cv_train.models import load_model_and_processor
    from cv_train.sft import make_sft_collator

    recipe = tiny_sft_recipe(
        model=f"tiny:{request.param}", output_dir=str(runs_root / f"tool-img-{request.param}")
    )
    model, processor, family = load_model_and_processor(recipe)
    model.eval()
    collator = make_sft_collator(
        processor, chat_template=load_chat_template(family, training=True), max_length=4096
    )
    return model, processor, collator


def _record(tool_image: Image.Image) -> dict[str, Any]:
    rec = hand_record()
    rec["images"] = [_quadrants(("black", "red", "green", "blue")).rotate(90), tool_image]
    return rec


def test_sft_batch_carries_the_tool_image_into_its_placeholders(sft_parts) -> None:
    model, processor, collator = sft_parts
    tool_image = _quadrants(("black", "red", "green", "blue"))
    rec = _record(tool_image)
    batch = collator([{"messages": rec["messages"], "images": rec["images"]}])
    # Pixels: the batch holds the input image's rows, then the tool image's, exactly as processed alone.
    alone = [processor.image_processor(images=[im], return_tensors="pt") for im in rec["images"]]
    assert torch.equal(batch["pixel_values"], torch.cat([a["pixel_values"] for a in alone]))
    assert batch["image_grid_thw"].tolist() == [a["image_grid_thw"][0].tolist() for a in alone]
    # Features: the second placeholder run holds the tool image's vision features, not the input's.
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    runs = _placeholder_embeddings(model, inputs, pad)
    assert len(runs) == 2
    for run, a in zip(runs, alone, strict=True):
        assert torch.allclose(run, _image_features(model, a["pixel_values"], a["image_grid_thw"]), atol=1e-5)
    assert not torch.allclose(runs[0], runs[1], atol=1e-3)


def test_sft_answer_loss_depends_on_the_tool_image_and_nothing_before_it_does(sft_parts) -> None:
    model, processor, collator = sft_parts
    batches = [
        collator([{"messages": r["messages"], "images": r["images"]}])
        for r in (
            _record(_quadrants(("black", "red", "green", "blue"))),
            _record(_quadrants(("black", "yellow", "white", "cyan"))),
        )
    ]
    assert torch.equal(batches[0]["input_ids"], batches[1]["input_ids"])
    with torch.no_grad():
        logits = [model(**{k: v for k, v in b.items() if k != "labels"}).logits[0] for b in batches]
    ids = batches[0]["input_ids"][0]
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    tool_start = int((ids == pad).nonzero().flatten()[-1])  # inside the tool image's run
    first_tool_pad = next(i for i in range(tool_start, -1, -1) if ids[i] != pad) + 1
    answer = (batches[0]["labels"][0] != -100).nonzero().flatten()
    answer = answer[answer > tool_start]
    assert len(answer) > 0
    # Causal: every position before the tool image is identical; the trained answer tokens after it are not.
    assert torch.allclose(logits[0][:first_tool_pad], logits[1][:first_tool_pad], atol=1e-5)
    assert (logits[0][answer - 1] - logits[1][answer - 1]).abs().max() > 1e-4


@pytest.fixture(scope="module")
def grpo_run(runs_root: Path) -> tuple[Any, list[dict[str, Any]]]:
    recipe = tiny_rl_recipe(
        output_dir=str(runs_root / "rl-tool-images"),
        max_steps=1,
        max_completion_length=128,
        num_generations=2,
        per_device_train_batch_size=4,
    )
    items = [tiny_item(i, seed=7, transform=["rotate_90"]) for i in range(2)]
    trainer = build_rl_trainer(recipe, items=items)
    call = tool_call_turn("result = image.rotate(270, expand=True)", "Rotate upright.", 0)
    answer = "<think>Upright now.</think>\n<answer>Q</answer><|im_end|>"
    outputs: list[dict[str, Any]] = []
    script_rollouts(trainer, lambda i, after: answer if after else call, outputs=outputs)
    trainer.train()
    return trainer, outputs


def _rows_per_sample(batch: dict[str, Any]) -> list[list[torch.Tensor]]:
    grid = batch["image_grid_thw"]
    rows = torch.split(batch["pixel_values"], grid.prod(-1).tolist())
    out, k = [], 0
    for n in batch["num_images"]:
        out.append(list(rows[k : k + n]))
        k += n
    return out


def test_grpo_training_batch_holds_each_rollouts_tool_image(grpo_run) -> None:
    trainer, outputs = grpo_run
    batch = outputs[0]
    assert list(batch["num_images"]) == [2, 2, 2, 2]
    image_processor = trainer.processing_class.image_processor
    for env, rows in zip(trainer.environments, _rows_per_sample(batch), strict=True):
        assert len(env.trace) == 1 and env.trace[0].ok
        for image, got in zip(env.images, rows, strict=True):  # input image, then the tool's output
            assert torch.equal(got, image_processor(images=[image], return_tensors="pt")["pixel_values"])
    assert env.images[1].size == env.images[0].size[::-1]


def test_grpo_loss_logprobs_see_the_tool_image(grpo_run) -> None:
    """The forward that feeds the loss reads the tool image: the answer after it moves when its pixels do."""
    trainer, outputs = grpo_run
    batch = outputs[0]

    def logps(pixel_values: torch.Tensor) -> torch.Tensor:
        ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
        with torch.no_grad():
            out, _, _ = trainer._get_per_token_logps_and_entropies(
                trainer.model,
                ids,
                mask,
                batch["completion_ids"].size(1),
                pixel_values=pixel_values,
                image_grid_thw=batch["image_grid_thw"],
                num_images=list(batch["num_images"]),
                mm_token_type_ids=batch.get("mm_token_type_ids"),
            )
        return out

    base = logps(batch["pixel_values"])
    # Replace only the tool images' pixels (the second image of every rollout).
    grid_rows = batch["image_grid_thw"].prod(-1).tolist()
    changed = batch["pixel_values"].clone()
    start = 0
    for k, n in enumerate(grid_rows):
        if k % 2 == 1:
            changed[start : start + n] = -changed[start : start + n]
        start += n
    moved = logps(changed)
    pad = trainer.cv_image_pad_id
    live = (batch["completion_mask"] * batch["tool_mask"]).bool()
    for i in range(batch["completion_ids"].size(0)):
        comp = batch["completion_ids"][i]
        tool_pos = (comp == pad).nonzero().flatten()
        assert len(tool_pos) > 0
        before_tool = torch.arange(comp.size(0)) < tool_pos[0]
        after_tool = live[i] & (torch.arange(comp.size(0)) > tool_pos[-1])
        assert torch.allclose(base[i][before_tool & live[i]], moved[i][before_tool & live[i]], atol=1e-5)
        assert (base[i][after_tool] - moved[i][after_tool]).abs().max() > 1e-4
