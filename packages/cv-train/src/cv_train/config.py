"""Training recipes: one dataclass per stage, loaded from YAML and overridden from the command line.

The same dataclasses back the CLI (``cv-train sft --config recipe.yaml --learning_rate 5e-6``), the YAML recipes
in ``packages/cv-train/recipes/`` and the Python API, the way TRL's ``TrlParser`` does it. Defaults are the
paper's reference settings (SPEC, "Training reference settings"). :func:`toy_sft_recipe` and
:func:`toy_rl_recipe` are the default CPU runs of the command line: a tiny model that learns cv-data's toy task
in about a minute (RL warm-started from it, so the tool is called and rewards differ within a group);
:func:`tiny_sft_recipe` and :func:`tiny_rl_recipe` are the few-step fixtures of the tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from cv_protocol import get_preset

#: Model families we ship chat templates and model classes for.
FAMILIES: tuple[str, ...] = ("qwen2_5_vl", "qwen3_vl")

#: ``model`` values that build a tiny random model locally instead of loading weights.
TINY_PREFIX = "tiny:"
#: ``model`` values that use a tiny model SFT'd on the toy task (:func:`toy_sft_recipe`), trained on first use
#: and cached: the warm start of the default RL run.
TINY_SFT_PREFIX = "tiny-sft:"

_LM_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


class RecipeError(ValueError):
    """A recipe (YAML file or overrides) is invalid; the message says which field to fix and how."""


@dataclass
class ModelRecipe:
    """Settings shared by SFT and RL: the model, PEFT, precision, logging and checkpoints.

    Attributes:
        model: Hugging Face model id or local path; ``"tiny:qwen2_5_vl"`` / ``"tiny:qwen3_vl"`` to build a
            tiny random model locally (tests and the default CPU SFT run); ``"tiny-sft:qwen2_5_vl"`` for that
            tiny model after the default toy-task SFT (:func:`toy_sft_recipe`), trained once and cached next to
            the run folders (the warm start of the default RL run).
        family: Chat-template family, ``"qwen2_5_vl"`` or ``"qwen3_vl"``; ``None`` infers it from the model.
        output_dir: Where checkpoints, logs and the final model go.
        seed: Random seed for data order, model init (tiny models) and sampling.
        learning_rate: Peak learning rate.
        lr_scheduler_type: transformers scheduler name (``"cosine"``, ``"constant"``, ...).
        warmup_ratio: Fraction of steps used for linear warmup.
        num_train_epochs: Epochs over the dataset (ignored when ``max_steps > 0``).
        max_steps: Optimizer steps to run; ``-1`` runs ``num_train_epochs``.
        per_device_train_batch_size: Micro-batch size per device.
        gradient_accumulation_steps: Micro-batches per optimizer step.
        bf16: Train in bfloat16 (needs a GPU with bf16; set ``false`` on CPU).
        gradient_checkpointing: Recompute activations in the backward pass to save memory.
        max_pixels: Pixel budget of every image the model sees (the processor resizes to it).
        min_pixels: Lower pixel bound of the image processor.
        freeze_vision: Freeze the vision tower and the vision-language projector (paper setting).
        use_peft: Train LoRA adapters instead of the full model.
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling numerator.
        lora_dropout: LoRA dropout.
        lora_target_modules: Regex (full match) or module names LoRA adapts; default: the language model's
            attention and MLP projections (never the vision tower).
        load_in_4bit: QLoRA: load the base model in 4-bit NF4 (needs ``use_peft``, CUDA and bitsandbytes).
        attn_implementation: ``"sdpa"``, ``"eager"`` or ``"flash_attention_2"``; ``None`` lets transformers pick.
        logging_steps: Log every N optimizer steps.
        save_steps: Save a checkpoint every N optimizer steps.
        save_total_limit: Keep at most this many checkpoints (``None``: keep all).
        report_to: Trackers for TRL/transformers logging: ``["tensorboard"]``, ``["wandb"]``, ``["none"]``...
        resume_from_checkpoint: ``None`` (fresh run), ``"latest"`` (newest ``checkpoint-*`` in
            ``output_dir``) or a checkpoint path.
        deepspeed: Path of a DeepSpeed JSON config passed to the trainer (usually set via accelerate instead).
        dataloader_num_workers: DataLoader worker processes.
        preset: What the model is shown (a ``cv_protocol.PRESETS`` name: ``"default"``, ``"release"``, ...):
            the system prompt and tool texts of data built in-process, the tool schema rendered into SFT and
            RL prompts, the RL environment's tool description and responses and its code limit. Evaluate
            with the same name (``cv-bench eval --preset``); it is saved in ``recipe.yaml``.
        tiny_hidden_size: Width of a ``tiny:`` / ``tiny-sft:`` model's language model (a multiple of 16).
        tiny_num_layers: Decoder layers of a ``tiny:`` / ``tiny-sft:`` model.
        tiny_vision_depth: Vision-tower blocks of a ``tiny:`` / ``tiny-sft:`` model.
    """

    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    family: str | None = None
    output_dir: str = "runs/codevision"
    seed: int = 42
    learning_rate: float = 1e-5
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.05
    num_train_epochs: float = 2.0
    max_steps: int = -1
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 4
    bf16: bool = True
    gradient_checkpointing: bool = True
    max_pixels: int = 262144
    min_pixels: int = 3136
    freeze_vision: bool = True
    use_peft: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str = _LM_TARGETS
    load_in_4bit: bool = False
    attn_implementation: str | None = None
    logging_steps: int = 1
    save_steps: int = 200
    save_total_limit: int | None = 3
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    resume_from_checkpoint: str | None = None
    deepspeed: str | None = None
    dataloader_num_workers: int = 0
    preset: str = "default"
    tiny_hidden_size: int = 64
    tiny_num_layers: int = 2
    tiny_vision_depth: int = 2

    def __post_init__(self) -> None:
        try:
            get_preset(self.preset)
        except ValueError as e:
            raise RecipeError(f"preset: {e}") from None
        if not self.model:
            raise RecipeError(
                "model is empty: set model to a Hugging Face id, a local path or 'tiny:qwen2_5_vl'"
            )
        if self.is_tiny and self.tiny_family not in FAMILIES:
            raise RecipeError(
                f"model {self.model!r}: the tiny family must be one of {FAMILIES}, e.g. 'tiny:qwen2_5_vl'"
            )
        if self.tiny_hidden_size < 16 or self.tiny_hidden_size % 16:
            raise RecipeError(
                f"tiny_hidden_size={self.tiny_hidden_size}: use a multiple of 16 (64, 128, 256)"
            )
        if self.family is not None and self.family not in FAMILIES:
            raise RecipeError(
                f"family {self.family!r} is unknown: set family to one of {FAMILIES} (or null to infer it)"
            )
        _positive(
            self,
            "learning_rate",
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "logging_steps",
            "save_steps",
            "max_pixels",
            "min_pixels",
            "lora_r",
            "lora_alpha",
            "tiny_num_layers",
            "tiny_vision_depth",
        )
        if self.learning_rate > 1e-2:
            raise RecipeError(
                f"learning_rate={self.learning_rate} is far too high for fine-tuning: use 1e-6..1e-4"
            )
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise RecipeError(f"warmup_ratio={self.warmup_ratio}: set it in [0, 1)")
        if self.max_steps == 0 or self.max_steps < -1:
            raise RecipeError(
                f"max_steps={self.max_steps}: set a positive number of steps, or -1 to use num_train_epochs"
            )
        if self.max_steps == -1 and self.num_train_epochs <= 0:
            raise RecipeError("num_train_epochs must be > 0 when max_steps is -1")
        if self.min_pixels > self.max_pixels:
            raise RecipeError(
                f"min_pixels={self.min_pixels} > max_pixels={self.max_pixels}: lower min_pixels"
            )
        if not 0.0 <= self.lora_dropout < 1.0:
            raise RecipeError(f"lora_dropout={self.lora_dropout}: set it in [0, 1)")
        if self.load_in_4bit and not self.use_peft:
            raise RecipeError("load_in_4bit (QLoRA) trains adapters only: also set use_peft: true")
        if self.attn_implementation not in (None, "sdpa", "eager", "flash_attention_2", "flash_attention_3"):
            raise RecipeError(
                f"attn_implementation={self.attn_implementation!r}: use sdpa, eager or flash_attention_2"
            )
        if isinstance(self.report_to, str):
            self.report_to = [self.report_to]
        if (
            self.resume_from_checkpoint not in (None, "latest")
            and not Path(self.resume_from_checkpoint).is_dir()
        ):
            raise RecipeError(
                f"resume_from_checkpoint={self.resume_from_checkpoint!r} is not a directory: "
                "give a checkpoint-* folder, 'latest', or null"
            )
        if self.deepspeed is not None and not Path(self.deepspeed).is_file():
            raise RecipeError(
                f"deepspeed={self.deepspeed!r} does not exist: give the path of a DeepSpeed JSON config"
            )

    @property
    def is_tiny(self) -> bool:
        """The model is built locally (``tiny:`` or ``tiny-sft:``), not loaded."""
        return self.model.startswith((TINY_PREFIX, TINY_SFT_PREFIX))

    @property
    def tiny_family(self) -> str:
        """The family of a ``tiny:`` / ``tiny-sft:`` model (``""`` for other models)."""
        if not self.is_tiny:
            return ""
        return self.model.split(":", 1)[1]


@dataclass
class SFTRecipe(ModelRecipe):
    """Supervised fine-tuning on multi-turn tool trajectories (TRL ``SFTTrainer``).

    Attributes:
        dataset: ``"cv-data"`` (build trajectories in-process with cv-data's synthetic sources; set a small
            ``num_synthetic`` for smoke tests), ``"toy"`` (trajectories of cv-data's toy task, built
            in-process: the default CPU run), or a path: cv-data ``save_sft`` output (``sft.parquet`` /
            ``sharegpt.json``) or a ``.jsonl`` of records with image paths.
        num_synthetic: Number of trajectories built when ``dataset`` is ``"cv-data"`` or ``"toy"``.
        max_length: Token cutoff per conversation; longer ones are rejected (never silently cut through an
            image) unless ``drop_long`` is set.
        drop_long: Drop over-long conversations (with a warning and a count) instead of failing.
        assistant_only_loss: Train only on assistant tokens (system, user and tool tokens masked).
        render_tools: Render the preset's tool schema into the system turn, as GRPO and the agent do at
            inference (only where the preset shows it: ``Preset.tools_in_prompt``).
    """

    output_dir: str = "runs/sft"
    dataset: str = "cv-data"
    num_synthetic: int = 64
    max_length: int = 32768
    drop_long: bool = False
    assistant_only_loss: bool = True
    render_tools: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "max_length", "num_synthetic")
        if not self.dataset:
            raise RecipeError("dataset is empty: set it to a cv-data SFT folder/JSONL or 'cv-data'")


@dataclass
class RLRecipe(ModelRecipe):
    """Multi-turn GRPO with the code tool (TRL ``GRPOTrainer`` + ``environment_factory``).

    With ``P`` processes, one optimizer step sees ``per_device_train_batch_size * gradient_accumulation_steps * P``
    completions, i.e. that divided by ``num_generations`` prompts (the paper's mini-batch: 32 prompts); one
    generation round produces ``steps_per_generation`` micro-batches per process (paper batch: 64 prompts).

    Attributes:
        dataset: ``"cv-data"`` (RL items built in-process by cv-data), ``"toy"`` (items of cv-data's toy
            task, the four orientations equally often) or a file/folder written by ``cv_data.write_items``.
        num_synthetic: Number of RL items built when ``dataset`` is ``"cv-data"`` or ``"toy"``.
        num_generations: Rollouts per prompt (GRPO group size, paper: 8).
        steps_per_generation: Micro-batches per generation round (``None``: ``gradient_accumulation_steps``).
        max_turns: Assistant turns per rollout (paper: 12); tool rounds = ``max_turns - 1``.
        max_completion_length: Token budget of the whole multi-turn completion, tool tokens included.
        temperature: Sampling temperature.
        beta: KL coefficient (paper: 0.001).
        epsilon: Lower clip range (paper: 0.2).
        epsilon_high: Upper clip range (paper: 0.28).
        loss_type: TRL loss aggregation; ``"dapo"`` is the token-mean loss of the paper.
        num_iterations: PPO-style updates per generation round.
        scale_rewards: TRL advantage scaling: ``"group"``, ``"batch"`` or ``"none"``.
        reward_variant: cv-rewards variant: ``"paper"`` or ``"reference"`` (release weights and linear penalties).
        sandbox_timeout_s: Wall-clock limit per tool call.
        use_vllm: Generate with vLLM (``pip install cv-train[vllm]``, GPU only).
        vllm_mode: ``"colocate"`` (same GPUs) or ``"server"`` (a separate ``vllm serve`` / ``trl vllm-serve``).
        vllm_server_base_url: Server mode: base URL (overrides host/port).
        vllm_server_host: Server mode: host.
        vllm_server_port: Server mode: port.
        vllm_gpu_memory_utilization: Colocate mode: fraction of GPU memory vLLM may take.
        vllm_tensor_parallel_size: Colocate mode: tensor-parallel size.
        vllm_max_model_length: vLLM context length (``None``: the model's).
        log_completions: Log sample completions (and their reward columns) to the trackers.
        tool_collapse_threshold: Tool-use collapse: a logged step whose tool-call rate (share of rollouts
            that called the tool) is below this counts as collapsed.
        tool_collapse_patience: Warn after this many consecutive collapsed steps (``0``: never watch).
        tool_collapse_stop: Also stop training then (the last checkpoint and the final model are kept).
    """

    output_dir: str = "runs/rl"
    learning_rate: float = 1e-6
    num_train_epochs: float = 1.0
    warmup_ratio: float = 0.0
    lr_scheduler_type: str = "constant"
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 4
    max_pixels: int = 8192 * 28 * 28
    dataset: str = "cv-data"
    num_synthetic: int = 64
    num_generations: int = 8
    steps_per_generation: int | None = None
    max_turns: int = 12
    max_completion_length: int = 16384
    temperature: float = 1.0
    beta: float = 0.001
    epsilon: float = 0.2
    epsilon_high: float = 0.28
    loss_type: str = "dapo"
    num_iterations: int = 1
    scale_rewards: str = "group"
    reward_variant: str = "paper"
    sandbox_timeout_s: float = 10.0
    use_vllm: bool = False
    vllm_mode: str = "colocate"
    vllm_server_base_url: str | None = None
    vllm_server_host: str = "0.0.0.0"
    vllm_server_port: int = 8000
    vllm_gpu_memory_utilization: float = 0.4
    vllm_tensor_parallel_size: int = 1
    vllm_max_model_length: int | None = None
    log_completions: bool = False
    tool_collapse_threshold: float = 0.05
    tool_collapse_patience: int = 20
    tool_collapse_stop: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(
            self,
            "num_synthetic",
            "max_turns",
            "max_completion_length",
            "num_iterations",
            "sandbox_timeout_s",
            "vllm_tensor_parallel_size",
        )
        if self.num_generations < 2:
            raise RecipeError(
                f"num_generations={self.num_generations}: GRPO needs at least 2 rollouts per prompt (paper: 8)"
            )
        per_step = self.per_device_train_batch_size * (
            self.steps_per_generation or self.gradient_accumulation_steps
        )
        if per_step % self.num_generations:
            raise RecipeError(
                f"per_device_train_batch_size * steps_per_generation = {per_step} is not a multiple of "
                f"num_generations={self.num_generations}: every generation round must hold whole groups; adjust "
                "per_device_train_batch_size, steps_per_generation/gradient_accumulation_steps or num_generations"
            )
        if not self.dataset:
            raise RecipeError("dataset is empty: set it to a cv-data RL item folder or 'cv-data'")
        if self.temperature <= 0:
            raise RecipeError(
                f"temperature={self.temperature}: GRPO samples, set temperature > 0 (paper: 1.0)"
            )
        if (
            self.beta < 0
            or self.epsilon <= 0
            or (self.epsilon_high is not None and self.epsilon_high < self.epsilon)
        ):
            raise RecipeError(
                "need beta >= 0, epsilon > 0 and epsilon_high >= epsilon (paper: 0.001, 0.2, 0.28)"
            )
        losses = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo")
        if self.loss_type not in losses:
            raise RecipeError(f"loss_type={self.loss_type!r}: use one of {losses} ('dapo' = token-mean)")
        if self.scale_rewards not in ("group", "batch", "none"):
            raise RecipeError(f"scale_rewards={self.scale_rewards!r}: use 'group', 'batch' or 'none'")
        if self.reward_variant not in ("paper", "reference"):
            raise RecipeError(f"reward_variant={self.reward_variant!r}: use 'paper' or 'reference'")
        if self.vllm_mode not in ("colocate", "server"):
            raise RecipeError(f"vllm_mode={self.vllm_mode!r}: use 'colocate' or 'server'")
        if not 0.0 <= self.tool_collapse_threshold <= 1.0 or self.tool_collapse_patience < 0:
            raise RecipeError(
                "tool_collapse_threshold must be in [0, 1] and tool_collapse_patience >= 0 (0 turns the watch off)"
            )
        if not 0.0 < self.vllm_gpu_memory_utilization <= 1.0:
            raise RecipeError(
                f"vllm_gpu_memory_utilization={self.vllm_gpu_memory_utilization}: set it in (0, 1]"
            )


R = TypeVar("R", bound=ModelRecipe)


def _positive(recipe: Any, *names: str) -> None:
    for name in names:
        value = getattr(recipe, name)
        if value is None or value <= 0:
            raise RecipeError(f"{name}={value!r}: set a positive value")


def recipe_fields(cls: type[ModelRecipe]) -> dict[str, Any]:
    """Resolved type hints of a recipe class, by field name."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def _coerce(name: str, tp: Any, value: Any) -> Any:
    """Convert a YAML or command-line value to the field's type, with an error that names the field."""
    base, optional = _strip_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null", "")):
        if optional:
            return None
        raise RecipeError(f"{name} cannot be null: set a {getattr(base, '__name__', base)} value")
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError(value)
        if base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if base is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if base is str:
            if not isinstance(value, str | int | float):
                raise ValueError(value)
            return str(value)
        if typing.get_origin(base) is list:
            if isinstance(value, str):
                value = [v for v in value.split(",") if v]
            if not isinstance(value, list):
                raise ValueError(value)
            return [str(v) for v in value]
    except (TypeError, ValueError):
        raise RecipeError(
            f"{name}={value!r} is not a valid {typing.get_args(tp) or tp}: fix the value"
        ) from None
    return value


def recipe_from_dict(cls: type[R], data: dict[str, Any], *, source: str = "recipe") -> R:
    """Build and validate a recipe from a plain dict (a parsed YAML file).

    Unknown keys are an error (a typo must not silently fall back to a default).

    Example:
        >>> recipe_from_dict(SFTRecipe, {"model": "tiny:qwen2_5_vl", "bf16": False}).model
        'tiny:qwen2_5_vl'
    """
    if not isinstance(data, dict):
        raise RecipeError(f"{source} must be a mapping of field: value, got {type(data).__name__}")
    fields = recipe_fields(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise RecipeError(
            f"{source}: unknown field(s) {unknown} for {cls.__name__}; valid fields: {sorted(fields)}"
        )
    kwargs = {k: _coerce(k, fields[k], v) for k, v in data.items()}
    return cls(**kwargs)


def load_recipe(
    cls: type[R],
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    base: R | None = None,
) -> R:
    """Load a recipe from YAML (optionally on top of ``base``) and apply overrides.

    Args:
        cls: :class:`SFTRecipe` or :class:`RLRecipe`.
        path: YAML file; ``None`` uses ``base`` (or the class defaults).
        overrides: Field values that win over the file (command-line ``--field value``).
        base: Starting values (e.g. :func:`tiny_sft_recipe`) under the file and overrides.

    Example:
        >>> load_recipe(SFTRecipe, None, {"learning_rate": "5e-6"}, base=tiny_sft_recipe()).learning_rate
        5e-06
    """
    data: dict[str, Any] = dataclasses.asdict(base) if base is not None else {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise RecipeError(f"recipe file {str(p)!r} does not exist: pass --config PATH to a YAML recipe")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise RecipeError(f"recipe file {p} is not valid YAML: {e}") from None
        if not isinstance(loaded, dict):
            raise RecipeError(f"recipe file {p} must be a mapping of field: value")
        fields = recipe_fields(cls)
        unknown = sorted(set(loaded) - set(fields))
        if unknown:
            raise RecipeError(
                f"{p}: unknown field(s) {unknown} for {cls.__name__}; valid fields: {sorted(fields)}"
            )
        data.update(loaded)
    data.update(overrides or {})
    return recipe_from_dict(cls, data, source=str(path) if path else cls.__name__)


def tiny_sft_recipe(**overrides: Any) -> SFTRecipe:
    """The default CPU run: a tiny random Qwen2.5-VL on cv-data's synthetic trajectories, 16 steps.

    Example:
        >>> tiny_sft_recipe().model
        'tiny:qwen2_5_vl'
    """
    values: dict[str, Any] = dict(
        model="tiny:qwen2_5_vl",
        output_dir="runs/sft-tiny",
        dataset="cv-data",
        num_synthetic=16,
        max_steps=16,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        learning_rate=5e-4,
        lr_scheduler_type="constant",
        warmup_ratio=0.0,
        bf16=False,
        gradient_checkpointing=False,
        max_pixels=64 * 64,
        min_pixels=28 * 28,
        max_length=4096,
        save_steps=8,
        logging_steps=2,
        report_to=["none"],
    )
    values.update(overrides)
    return SFTRecipe(**values)


def tiny_rl_recipe(**overrides: Any) -> RLRecipe:
    """The default CPU RL run: tiny random Qwen2.5-VL, cv-data synthetic items, 2 rollouts per prompt, 2 steps.

    Example:
        >>> tiny_rl_recipe().num_generations
        2
    """
    values: dict[str, Any] = dict(
        model="tiny:qwen2_5_vl",
        output_dir="runs/rl-tiny",
        dataset="cv-data",
        num_synthetic=8,
        max_steps=2,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        num_generations=2,
        max_turns=3,
        max_completion_length=48,
        learning_rate=1e-4,
        bf16=False,
        gradient_checkpointing=False,
        max_pixels=64 * 64,
        min_pixels=28 * 28,
        save_steps=1,
        logging_steps=1,
        report_to=["none"],
        log_completions=False,
    )
    values.update(overrides)
    return RLRecipe(**values)


def toy_sft_recipe(**overrides: Any) -> SFTRecipe:
    """The default ``cv-train sft`` run: a tiny Qwen2.5-VL learns cv-data's toy task on two CPU cores.

    600 steps of 8 toy trajectories with the ``minimal`` preset (a one-paragraph system prompt, no tool schema)
    at a high learning rate with the vision tower trainable: enough for the
    corrective rotation to be learned (about step 400), not always for the colour read from the tool's image
    (later, about step 900-1200, see ``benchmarks/learning_proof.py``). Evaluate the result with
    ``cv-bench eval --model hf:runs/sft-tiny/final --suite toy --preset minimal``.

    Example:
        >>> r = toy_sft_recipe()
        >>> r.dataset, r.freeze_vision
        ('toy', False)
    """
    # The tiny recipe's settings, changed only where the toy task needs it.
    toy: dict[str, Any] = dict(
        dataset="toy",
        preset="minimal",
        num_synthetic=256,
        max_steps=600,
        per_device_train_batch_size=8,
        learning_rate=2e-3,
        freeze_vision=False,
        save_steps=200,
        logging_steps=25,
    )
    return tiny_sft_recipe(**(toy | overrides))


def toy_rl_recipe(**overrides: Any) -> RLRecipe:
    """The default ``cv-train rl`` run: GRPO on the toy task from the cached toy-SFT tiny model.

    The warm start (``model="tiny-sft:qwen2_5_vl"``: :func:`toy_sft_recipe`, then a brief fine-tune on a noisy
    teacher that applies a wrong rotation 60 % of the time; trained once and cached, see
    :mod:`cv_train.warm_start`) calls the tool with a real distribution over rotations, so the rollouts of a
    group differ and so do their rewards: a broken reward, mask or advantage shows as ``frac_reward_zero_std``
    1, a zero gradient or a zero tool-call rate instead of passing silently. (The expert SFT alone is nearly
    deterministic: every rollout of a group could be the same, which gives GRPO nothing to learn from.)

    Example:
        >>> toy_rl_recipe().model
        'tiny-sft:qwen2_5_vl'
    """
    toy: dict[str, Any] = dict(
        model="tiny-sft:qwen2_5_vl",
        dataset="toy",
        preset="minimal",
        num_synthetic=64,
        max_steps=4,
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=160,
        beta=0.0,
        freeze_vision=False,
        save_steps=2,
    )
    return tiny_rl_recipe(**(toy | overrides))


def add_recipe_arguments(parser: argparse.ArgumentParser, cls: type[ModelRecipe]) -> None:
    """Add ``--config`` and one ``--<field>`` option per recipe field (values parsed by :func:`load_recipe`)."""
    parser.add_argument(
        "--config",
        default=None,
        help="YAML recipe; without it the toy CPU recipe runs (a tiny model that learns the toy task)",
    )
    doc = cls.__doc__ or ""
    for name, tp in recipe_fields(cls).items():
        base, _ = _strip_optional(tp)
        help_text = _field_help(doc, name) or _field_help(ModelRecipe.__doc__ or "", name)
        if typing.get_origin(base) is list:
            parser.add_argument(f"--{name}", default=None, nargs="+", help=help_text)
        else:
            parser.add_argument(f"--{name}", default=None, help=help_text)


def overrides_from_args(args: argparse.Namespace, cls: type[ModelRecipe]) -> dict[str, Any]:
    """Field overrides given on the command line (``None`` means "not given")."""
    return {name: getattr(args, name) for name in recipe_fields(cls) if getattr(args, name, None) is not None}


def _field_help(doc: str, name: str) -> str:
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped.startswith(f"{name}:"):
            return stripped[len(name) + 1 :].strip()
    return ""


def recipe_to_yaml(recipe: ModelRecipe) -> str:
    """Serialise a recipe (saved next to every run so it can be reproduced)."""
    return yaml.safe_dump(dataclasses.asdict(recipe), sort_keys=False)
