"""Recipes: every shipped YAML validates, bad values fail fast with a message naming the fix, CLI plumbing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from cv_train.cli import main
from cv_train.config import (
    RecipeError,
    RLRecipe,
    SFTRecipe,
    load_recipe,
    recipe_from_dict,
    tiny_rl_recipe,
    tiny_sft_recipe,
)
from cv_train.rl import grpo_config_kwargs

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
ACCEL = RECIPES / "accelerate"


def _recipe_files() -> list[Path]:
    return sorted(RECIPES.glob("*.yaml"))


def test_recipe_folder_has_the_promised_recipes() -> None:
    names = {p.name for p in _recipe_files()}
    for stem in ("qwen2_5_vl_7b", "qwen3_vl_8b"):
        assert {f"{stem}_sft.yaml", f"{stem}_rl.yaml", f"{stem}_rl_multinode.yaml"} <= names
    assert {p.name for p in ACCEL.glob("*.yaml")} == {
        "zero3_single_node.yaml",
        "zero3_multi_node.yaml",
        "fsdp_single_node.yaml",
        "fsdp_multi_node.yaml",
    }


@pytest.mark.parametrize("path", _recipe_files(), ids=lambda p: p.name)
def test_every_recipe_loads_and_validates(path: Path) -> None:
    cls = SFTRecipe if "_sft" in path.name else RLRecipe
    recipe = load_recipe(cls, path)
    family = "qwen3_vl" if "qwen3" in path.name else "qwen2_5_vl"
    assert recipe.family == family
    assert recipe.bf16 and recipe.freeze_vision and not recipe.use_peft
    if cls is SFTRecipe:  # SPEC SFT settings
        assert (recipe.learning_rate, recipe.num_train_epochs, recipe.lr_scheduler_type) == (
            1e-5,
            2.0,
            "cosine",
        )
        assert (
            recipe.warmup_ratio,
            recipe.per_device_train_batch_size,
            recipe.gradient_accumulation_steps,
        ) == (0.05, 4, 4)
        assert (recipe.max_length, recipe.max_pixels, recipe.assistant_only_loss) == (32768, 262144, True)
    else:  # SPEC RL settings
        assert (recipe.learning_rate, recipe.num_generations, recipe.max_turns, recipe.beta) == (
            1e-6,
            8,
            12,
            0.001,
        )
        assert (recipe.epsilon, recipe.epsilon_high, recipe.loss_type) == (0.2, 0.28, "dapo")
        assert recipe.max_completion_length == 16384 and recipe.max_pixels == 8192 * 28 * 28
        kw = grpo_config_kwargs(recipe)
        assert kw["max_tool_calling_iterations"] == 11 and kw["use_vllm"] and kw["vllm_mode"] == "colocate"
        # Paper batch: 32 prompts per optimizer step, 64 prompts per generation round, on the documented cluster.
        accel = yaml.safe_load(
            (
                ACCEL / ("zero3_multi_node.yaml" if "multinode" in path.name else "zero3_single_node.yaml")
            ).read_text()
        )
        procs = accel["num_processes"]
        per_step = recipe.per_device_train_batch_size * recipe.gradient_accumulation_steps * procs
        per_round = recipe.per_device_train_batch_size * recipe.steps_per_generation * procs
        assert per_step // recipe.num_generations == 32 and per_round // recipe.num_generations == 64


@pytest.mark.parametrize("path", sorted(ACCEL.glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_configs_parse(path: Path) -> None:
    from accelerate.commands.config.config_args import ClusterConfig

    cfg = ClusterConfig.from_yaml_file(str(path))
    assert cfg.num_processes % cfg.num_machines == 0
    assert cfg.mixed_precision == "bf16"
    if "zero3" in path.name:
        assert str(cfg.distributed_type).endswith("DEEPSPEED") and cfg.deepspeed_config["zero_stage"] == 3
    else:
        assert str(cfg.distributed_type).endswith("FSDP") and cfg.fsdp_config["fsdp_version"] == 2
    if "multi_node" in path.name:
        assert cfg.num_machines > 1 and cfg.main_process_ip


def test_dataclass_defaults_are_the_paper_settings() -> None:
    sft, rl = SFTRecipe(), RLRecipe()
    assert (sft.learning_rate, sft.warmup_ratio, sft.max_pixels, sft.freeze_vision) == (
        1e-5,
        0.05,
        262144,
        True,
    )
    assert (rl.learning_rate, rl.num_generations, rl.max_turns, rl.epsilon_high, rl.beta) == (
        1e-6,
        8,
        12,
        0.28,
        0.001,
    )


def test_tiny_recipes_are_cpu_sized() -> None:
    s, r = tiny_sft_recipe(), tiny_rl_recipe()
    assert s.is_tiny and r.is_tiny and not s.bf16 and not r.bf16
    assert s.max_steps > 0 and r.max_steps > 0


def test_yaml_overrides_and_cli_style_strings(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("model: tiny:qwen3_vl\nbf16: false\nlearning_rate: 2.0e-5\nreport_to: none\n")
    r = load_recipe(
        SFTRecipe, p, {"learning_rate": "3e-5", "use_peft": "true", "report_to": ["tensorboard", "wandb"]}
    )
    assert r.model == "tiny:qwen3_vl" and r.learning_rate == 3e-5 and r.use_peft is True
    assert r.report_to == ["tensorboard", "wandb"]


@pytest.mark.parametrize(
    ("cls", "data", "fragment"),
    [
        (SFTRecipe, {"learnig_rate": 1e-5}, "unknown field(s) ['learnig_rate']"),
        (SFTRecipe, {"learning_rate": "fast"}, "learning_rate='fast' is not a valid"),
        (SFTRecipe, {"learning_rate": 0.5}, "far too high"),
        (SFTRecipe, {"load_in_4bit": True}, "also set use_peft: true"),
        (SFTRecipe, {"model": "tiny:llava"}, "tiny family must be one of"),
        (SFTRecipe, {"family": "llama"}, "set family to one of"),
        (SFTRecipe, {"max_steps": 0}, "set a positive number of steps"),
        (SFTRecipe, {"min_pixels": 10_000, "max_pixels": 1000}, "lower min_pixels"),
        (SFTRecipe, {"resume_from_checkpoint": "/nope/checkpoint-3"}, "is not a directory"),
        (RLRecipe, {"num_generations": 1}, "at least 2 rollouts"),
        (RLRecipe, {"num_generations": 3}, "not a multiple of num_generations=3"),
        (RLRecipe, {"vllm_mode": "remote"}, "use 'colocate' or 'server'"),
        (RLRecipe, {"reward_variant": "dense"}, "use 'paper' or 'reference'"),
        (RLRecipe, {"temperature": 0}, "set temperature > 0"),
        (RLRecipe, {"max_turns": 0}, "max_turns=0: set a positive value"),
        (RLRecipe, {"bf16": "maybe"}, "bf16='maybe' is not a valid"),
    ],
)
def test_bad_recipes_fail_fast_with_a_fix(cls: type, data: dict, fragment: str) -> None:
    with pytest.raises(RecipeError) as err:
        recipe_from_dict(cls, data)
    assert fragment in str(err.value)


def test_missing_recipe_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="does not exist: pass --config"):
        load_recipe(SFTRecipe, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(RecipeError, match="must be a mapping"):
        load_recipe(SFTRecipe, bad)


def test_vllm_settings_map_to_grpo_config_fields() -> None:
    from trl import GRPOConfig

    server = grpo_config_kwargs(
        tiny_rl_recipe(
            use_vllm=True,
            vllm_mode="server",
            vllm_server_host="10.1.2.3",
            vllm_server_port=8123,
            vllm_server_base_url=None,
        )
    )
    colocate = grpo_config_kwargs(
        tiny_rl_recipe(
            use_vllm=True,
            vllm_mode="colocate",
            vllm_gpu_memory_utilization=0.3,
            vllm_tensor_parallel_size=2,
            vllm_max_model_length=8192,
        )
    )
    off = grpo_config_kwargs(tiny_rl_recipe())
    assert (server["vllm_mode"], server["vllm_server_host"], server["vllm_server_port"]) == (
        "server",
        "10.1.2.3",
        8123,
    )
    assert "vllm_gpu_memory_utilization" not in server
    assert (colocate["vllm_gpu_memory_utilization"], colocate["vllm_tensor_parallel_size"]) == (0.3, 2)
    assert colocate["vllm_max_model_length"] == 8192 and "vllm_server_port" not in colocate
    assert off["use_vllm"] is False and "vllm_mode" not in off
    # Every key is a real GRPOConfig field, and the config builds (vLLM itself is only imported at trainer init).
    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    for kw in (server, colocate, off):
        assert set(kw) <= fields
    cfg = GRPOConfig(**{**server, "output_dir": "/tmp/unused", "report_to": "none"}, use_cpu=True)
    assert cfg.use_vllm and cfg.vllm_mode == "server" and cfg.vllm_server_port == 8123
    assert cfg.max_tool_calling_iterations == 2 and cfg.epsilon_high == 0.28


def test_use_vllm_without_vllm_fails_clearly() -> None:
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401

        pytest.skip("vllm is installed here")
    except ImportError:
        pass
    from cv_train.rl import build_rl_trainer

    with pytest.raises(ImportError, match=r"pip install cv-train\[vllm\]"):
        build_rl_trainer(tiny_rl_recipe(use_vllm=True))


def test_cli_dry_run_prints_resolved_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sft", "--dry-run", "--max_steps", "7", "--report_to", "none"]) == 0
    out = yaml.safe_load(capsys.readouterr().out)
    assert out["max_steps"] == 7 and out["model"] == "tiny:qwen2_5_vl"
    assert (
        main(["rl", "--dry-run", "--config", str(RECIPES / "qwen3_vl_8b_rl.yaml"), "--num_generations", "4"])
        == 0
    )
    out = yaml.safe_load(capsys.readouterr().out)
    assert out["num_generations"] == 4 and out["model"] == "runs/qwen3_vl_8b_sft/final"


def test_cli_bad_recipe_exits_2_with_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rl", "--num_generations", "1"]) == 2
    assert "at least 2 rollouts" in capsys.readouterr().err


def test_cli_qlora_on_cpu_exits_2_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; QLoRA can run")
    assert (
        main(["rl", "--use_peft", "true", "--load_in_4bit", "true", "--output_dir", "/tmp/cv-train-unused"])
        == 2
    )
    assert "QLoRA) needs a CUDA GPU" in capsys.readouterr().err
