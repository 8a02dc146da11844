"""SFT on the tiny random Qwen-VL: the loss mask is exactly the assistant turns, parameters move, resume works."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from cv_data.testing import tiny_sft_records
from cv_train.cli import main
from cv_train.config import RecipeError, tiny_sft_recipe
from cv_train.invariants import ImageTokenMismatchError
from cv_train.sft import build_sft_trainer, make_sft_collator, train_sft

from .test_data import hand_record

pytestmark = pytest.mark.slow


def _segments(labels: torch.Tensor) -> list[tuple[int, int]]:
    """Contiguous [start, end) spans of trained-on positions."""
    spans, start = [], None
    for i, keep in enumerate((labels != -100).tolist() + [False]):
        if keep and start is None:
            start = i
        elif not keep and start is not None:
            spans.append((start, i))
            start = None
    return spans


@pytest.fixture(scope="module")
def trainer(runs_root: Path):
    recipe = tiny_sft_recipe(
        output_dir=str(runs_root / "sft-mask"), max_steps=2, per_device_train_batch_size=2
    )
    return build_sft_trainer(recipe, records=[hand_record(), *tiny_sft_records(3, seed=5)])


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_trained_tokens_are_exactly_the_assistant_turns(runs_root: Path, family: str) -> None:
    from cv_agent.templates import load_chat_template
    from cv_protocol import TOOL_SCHEMA
    from cv_train.models import resolve_model_path
    from transformers import AutoProcessor

    recipe = tiny_sft_recipe(model=f"tiny:{family}", output_dir=str(runs_root / f"mask-{family}"))
    processor = AutoProcessor.from_pretrained(resolve_model_path(recipe))
    template = load_chat_template(family, training=True)
    collator = make_sft_collator(processor, chat_template=template, max_length=4096, tools=[TOOL_SCHEMA])
    rec = hand_record()
    batch = collator([{"messages": rec["messages"], "images": rec["images"]}])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    tok = processor.tokenizer
    trained = [tok.decode(ids[s:e]) for s, e in _segments(labels)]
    expected = [m["content"][0]["text"] + "<|im_end|>\n" for m in rec["messages"] if m["role"] == "assistant"]
    assert trained == expected
    full = tok.decode(ids)
    # Everything else is masked: system prompt, tool schema, user question, tool response and both images.
    for masked in ("SYS", "# Tools", "What is written?", "<tool_response>", "Execution succeeded"):
        assert masked in full and all(masked not in t for t in trained)
    assert int((ids == tok.convert_tokens_to_ids("<|image_pad|>")).sum()) > 0
    assert batch["image_grid_thw"].shape[0] == 2  # the tool turn's image reached the processor too


def test_collator_refuses_truncation_and_bad_image_counts(trainer) -> None:
    collate = trainer.data_collator
    rec = hand_record()
    small = make_sft_collator(trainer.processing_class, chat_template=collate.chat_template, max_length=16)
    with pytest.raises(ValueError, match="longer than max_length=16 tokens"):
        small([{"messages": rec["messages"], "images": rec["images"]}])
    with pytest.raises(ValueError, match="2 images but only 1 image placeholders"):
        msgs = [m for m in rec["messages"][:3]] + [rec["messages"][4]]
        collate([{"messages": msgs, "images": rec["images"]}])
    # A template that drops tool-turn images (the tool branch renders no placeholder) breaks the invariant;
    # the processor itself does not notice, we stop instead of training on misaligned images.
    tag = "<|vision_start|><|image_pad|><|vision_end|>"
    i = collate.chat_template.rfind(tag)
    dropping = collate.chat_template[:i] + collate.chat_template[i + len(tag) :]
    broken = make_sft_collator(trainer.processing_class, chat_template=dropping, max_length=4096)
    with pytest.raises(ImageTokenMismatchError, match="sample 0 has 1 <\\|image_pad\\|> runs but 2 images"):
        broken([{"messages": rec["messages"], "images": rec["images"]}])


def test_training_updates_language_model_only_and_loss_is_finite(trainer) -> None:
    model = trainer.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    vision = [n for n, p in model.named_parameters() if "visual." in n]
    assert vision and all(not model.get_parameter(n).requires_grad for n in vision)
    trainer.train()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert any("language_model" in n for n in changed) and not any("visual." in n for n in changed)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses and all(math.isfinite(x) for x in losses)
    assert trainer.state.global_step == 2


def test_lora_trains_adapters_only_and_qlora_errors_on_cpu(runs_root: Path) -> None:
    recipe = tiny_sft_recipe(
        output_dir=str(runs_root / "sft-lora"), use_peft=True, lora_r=4, lora_alpha=8, max_steps=1
    )
    tr = build_sft_trainer(recipe, records=tiny_sft_records(2, seed=3))
    trainable = [n for n, p in tr.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable) and not any("visual" in n for n in trainable)
    before = {n: tr.model.get_parameter(n).detach().clone() for n in trainable}
    tr.train()
    assert any(not torch.equal(before[n], tr.model.get_parameter(n).detach()) for n in trainable)
    if not torch.cuda.is_available():
        with pytest.raises(RecipeError, match="QLoRA\\) needs a CUDA GPU"):
            build_sft_trainer(
                tiny_sft_recipe(output_dir=str(runs_root / "sft-qlora"), use_peft=True, load_in_4bit=True),
                records=tiny_sft_records(1),
            )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="QLoRA needs CUDA + bitsandbytes")
def test_qlora_builds_on_gpu(runs_root: Path) -> None:  # pragma: no cover - GPU only
    recipe = tiny_sft_recipe(
        output_dir=str(runs_root / "sft-qlora-gpu"), use_peft=True, load_in_4bit=True, max_steps=1
    )
    build_sft_trainer(recipe, records=tiny_sft_records(1)).train()


def test_checkpoint_and_resume(runs_root: Path) -> None:
    out = runs_root / "sft-resume"
    recipe = tiny_sft_recipe(output_dir=str(out), max_steps=1, save_steps=1, num_synthetic=2)
    final = train_sft(recipe)
    assert (
        (out / "checkpoint-1").is_dir()
        and (final / "config.json").is_file()
        and (out / "recipe.yaml").is_file()
    )
    resumed = build_sft_trainer(
        tiny_sft_recipe(
            output_dir=str(out), max_steps=2, save_steps=1, num_synthetic=2, resume_from_checkpoint="latest"
        )
    )
    from cv_train.sft import resolve_resume

    ckpt = resolve_resume(tiny_sft_recipe(output_dir=str(out), resume_from_checkpoint="latest"))
    assert ckpt is not None and ckpt.endswith("checkpoint-1")
    resumed.train(resume_from_checkpoint=ckpt)
    assert resumed.state.global_step == 2 and (out / "checkpoint-2").is_dir()


def test_cli_default_sft_run_writes_a_checkpoint(runs_root: Path) -> None:
    out = runs_root / "sft-cli"
    assert main(["sft", "--output_dir", str(out), "--max_steps", "2", "--num_synthetic", "4"]) == 0
    assert (out / "checkpoint-2").is_dir() and (out / "final" / "model.safetensors").is_file()


def test_cli_bad_dataset_exits_2(runs_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "records.jsonl").write_text(
        '{"messages": [{"role": "user", "content": "hi"}], "images": []}\n'
    )
    assert main(["sft", "--output_dir", str(runs_root / "sft-bad"), "--dataset", str(tmp_path)]) == 2
    assert "has no assistant turn" in capsys.readouterr().err


def test_drop_long_removes_only_overlong_conversations(
    runs_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    short, long = hand_record(), hand_record()
    long["id"] = "long"
    long["messages"][4]["content"][0]["text"] = (
        "<think>" + "very long reasoning " * 400 + "</think><answer>X</answer>"
    )
    recipe = tiny_sft_recipe(output_dir=str(runs_root / "sft-droplong"), drop_long=True, max_length=2000)
    with caplog.at_level("WARNING"):
        tr = build_sft_trainer(recipe, records=[short, long])
    assert tr.train_dataset["id"] == ["hand-1"]
    assert "dropped 1 of 2 conversations longer than max_length=2000" in caplog.text
