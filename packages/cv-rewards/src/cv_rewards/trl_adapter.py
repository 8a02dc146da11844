"""Adapter from the process reward to TRL ``GRPOTrainer(reward_funcs=...)``.

TRL 1.16 calls every reward function as
``f(prompts=..., completions=..., completion_ids=..., **dataset_columns, trainer_state=..., log_extra=...,
log_metric=..., environments=...)`` (``environments`` only with ``environment_factory``), expects one float
per completion, logs ``rewards/<__name__>/mean``, and sums the functions weighted by
``GRPOConfig.reward_weights``. A batch holds groups of ``num_generations`` consecutive rollouts per prompt.

:func:`make_trl_reward_funcs` returns the total reward (weight 1) and, optionally, one function per component
(weight 0: logged only, since the total already holds them). All functions of one list share a scorer, so a
batch is scored once however many functions TRL calls. Group terms are computed over consecutive groups of
``num_generations``; rewards are computed per process, so each process must hold whole groups (true when
``per_device_train_batch_size * gradient_accumulation_steps`` is a multiple of ``num_generations`` and
generation is not split across processes mid-group).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cv_protocol import TOOL_CALL_START, TOOL_RESPONSE_START, completion_to_text

from .process import COMPONENTS, ProcessRewardConfig, RewardBreakdown, score_group
from .records import RolloutRecord, ToolCallRecord

__all__ = [
    "TrlRewardFunction",
    "make_trl_reward_funcs",
    "records_from_trl",
    "trl_reward_weights",
]

RecordsFrom = Callable[..., list[RolloutRecord]]


def _tool_call_from_any(call: Any) -> ToolCallRecord:
    if isinstance(call, ToolCallRecord):
        return call
    if isinstance(call, dict):
        return ToolCallRecord.from_dict(call)
    # Objects such as cv_agent.ToolCall: attributes ok/success, ops (dicts with name/box_input), error.
    to_dict = getattr(call, "to_dict", None)
    if callable(to_dict):
        return ToolCallRecord.from_dict(to_dict())
    success = getattr(call, "success", getattr(call, "ok", None))
    if success is None:
        raise ValueError(f"cannot read a tool call from {type(call).__name__}: it needs success/ok and ops")
    return ToolCallRecord.from_dict(
        {"success": success, "ops": list(getattr(call, "ops", [])), "error": getattr(call, "error", None)}
    )


def _tool_calls_of_env(env: Any) -> list[ToolCallRecord]:
    getter = getattr(env, "tool_call_records", None)
    calls = getter() if callable(getter) else getattr(env, "tool_calls", None)
    if calls is None:
        raise ValueError(
            f"environment {type(env).__name__} exposes neither tool_call_records() nor tool_calls; "
            "pass records_from= to make_trl_reward_funcs to read its trace"
        )
    return [_tool_call_from_any(c) for c in calls]


def _column(kwargs: dict[str, Any], names: Sequence[str], n: int, default: Any = None) -> list[Any]:
    for name in names:
        if name in kwargs and kwargs[name] is not None:
            values = list(kwargs[name])
            if len(values) != n:
                raise ValueError(f"column {name!r} has {len(values)} values for {n} completions")
            return values
    return [default] * n


def records_from_trl(
    *, completions: list[Any], environments: list[Any] | None = None, **kwargs: Any
) -> list[RolloutRecord]:
    """Default ``records_from``: build records from TRL's reward-function arguments.

    Dataset columns read: ``answer`` (or ``gt_answer``/``solution``), ``transform``, ``bbox``, ``choices``,
    ``task_type``, ``prompt_id`` (or ``id``/``item_id``), ``question``. Tool calls come from each
    environment's ``tool_call_records()`` or ``tool_calls`` (``ToolCallRecord``, dicts, or objects with
    ``ok``/``ops``/``error`` such as ``cv_agent.ToolCall``), else from a ``tool_calls`` column. A completion
    that called tools with no trace available raises ``ValueError`` rather than scoring as tool-free.

    Example:
        >>> recs = records_from_trl(completions=["<think>a</think><answer>B</answer>"], answer=["B"])
        >>> recs[0].gt_answer, recs[0].tool_calls
        ('B', [])
    """
    n = len(completions)
    gts = _column(kwargs, ("answer", "gt_answer", "solution"), n)
    if any(g is None for g in gts):
        raise ValueError("records_from_trl needs a ground-truth column: answer, gt_answer or solution")
    transforms = _column(kwargs, ("transform",), n, [])
    bboxes = _column(kwargs, ("bbox",), n)
    choices = _column(kwargs, ("choices",), n)
    task_types = _column(kwargs, ("task_type",), n, "general")
    ids = _column(kwargs, ("prompt_id", "id", "item_id"), n, "")
    questions = _column(kwargs, ("question",), n, "")
    call_column = _column(kwargs, ("tool_calls",), n)
    if environments is not None and len(environments) != n:
        raise ValueError(f"got {len(environments)} environments for {n} completions")
    records = []
    for i, completion in enumerate(completions):
        text = completion_to_text(completion)
        if environments is not None:
            calls = _tool_calls_of_env(environments[i])
        elif call_column[i] is not None:
            calls = [_tool_call_from_any(c) for c in call_column[i]]
        else:
            if TOOL_CALL_START in text or TOOL_RESPONSE_START in text:
                raise ValueError(
                    f"completion {i} called tools but no trace is available (no environments, no tool_calls "
                    "column); use environment_factory or pass records_from= to make_trl_reward_funcs"
                )
            calls = []
        records.append(
            RolloutRecord(
                completion=text,
                tool_calls=calls,
                transform=list(transforms[i] or []),
                bbox=list(bboxes[i]) if bboxes[i] is not None else None,
                gt_answer=str(gts[i]),
                choices=list(choices[i]) if choices[i] is not None else None,
                task_type=task_types[i] or "general",
                prompt_id=str(ids[i] or ""),
                question=str(questions[i] or ""),
            )
        )
    return records


class _BatchScorer:
    """Scores a batch once and serves every reward function of the same list."""

    def __init__(
        self, config: ProcessRewardConfig, records_from: RecordsFrom, num_generations: int | None, judge: Any
    ) -> None:
        self.config = config
        self.records_from = records_from
        self.num_generations = num_generations
        self.judge = judge
        self._last: Any = None  # the completions list of the last batch (kept alive so `is` is exact)
        self._result: list[RewardBreakdown] = []

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_last"], state["_result"] = None, []
        return state

    def groups(self, records: list[RolloutRecord]) -> list[list[RolloutRecord]]:
        if self.num_generations is not None:
            k = self.num_generations
            if len(records) % k:
                raise ValueError(
                    f"batch of {len(records)} rollouts is not a whole number of groups of num_generations={k}; "
                    "each process must hold whole groups for the group term"
                )
            return [records[i : i + k] for i in range(0, len(records), k)]
        if any(not r.prompt_id for r in records):
            raise ValueError(
                "records have no prompt_id to group by; pass num_generations to make_trl_reward_funcs"
            )
        groups: list[list[RolloutRecord]] = []
        for r in records:
            if groups and groups[-1][0].prompt_id == r.prompt_id:
                groups[-1].append(r)
            else:
                groups.append([r])
        return groups

    def score(self, kwargs: dict[str, Any]) -> list[RewardBreakdown]:
        completions = kwargs.get("completions")
        if completions is None:
            raise ValueError("reward function called without completions=")
        if completions is self._last:
            return self._result
        records = self.records_from(**kwargs)
        if len(records) != len(completions):
            raise ValueError(
                f"records_from returned {len(records)} records for {len(completions)} completions"
            )
        result: list[RewardBreakdown] = []
        for group in self.groups(list(records)):
            result.extend(score_group(group, self.config, judge=self.judge))
        self._last, self._result = completions, result
        return result


class TrlRewardFunction:
    """One TRL reward function (the total, or one component). Picklable; ``__name__`` is what TRL logs.

    Attributes:
        __name__: Logged name, e.g. ``cv_total`` or ``cv_must_use``.
        component: ``None`` for the total, else a name from :data:`~cv_rewards.COMPONENTS`.
        reward_weight: The weight to give it in ``GRPOConfig.reward_weights`` (1 total, 0 components).
    """

    def __init__(self, scorer: _BatchScorer, component: str | None, name: str) -> None:
        self._scorer = scorer
        self.component = component
        self.__name__ = name
        self.__qualname__ = name
        self.reward_weight = 1.0 if component is None else 0.0

    def __repr__(self) -> str:
        return f"TrlRewardFunction({self.__name__!r})"

    def breakdowns(
        self, prompts: Any = None, completions: Any = None, **kwargs: Any
    ) -> list[RewardBreakdown]:
        """Every rollout's :class:`RewardBreakdown` for a batch (scored once, shared by the list's functions).

        For callers that log the components themselves instead of registering one function per component.
        """
        kwargs["prompts"], kwargs["completions"] = prompts, completions
        return self._scorer.score(kwargs)

    def __call__(self, prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[float]:
        breakdowns = self.breakdowns(prompts, completions, **kwargs)
        if self.component is not None:
            return [b.components[self.component] for b in breakdowns]
        log_extra, log_metric = kwargs.get("log_extra"), kwargs.get("log_metric")
        if callable(log_extra):
            log_extra("match_method", [b.match_method for b in breakdowns])
        if callable(log_metric) and breakdowns:
            n = len(breakdowns)
            # Tool-use collapse (the policy stops calling tools) shows first in these rates.
            log_metric("tool_call_rate", sum(b.details["tool_turns"] > 0 for b in breakdowns) / n)
            log_metric("tool_turns", sum(b.details["tool_turns"] for b in breakdowns) / n)
            calls = sum(b.details["tool_turns"] for b in breakdowns)
            log_metric(
                "tool_error_rate",
                sum(b.details["failed_calls"] for b in breakdowns) / calls if calls else 0.0,
            )
        return [b.total for b in breakdowns]


def make_trl_reward_funcs(
    config: ProcessRewardConfig | None = None,
    records_from: RecordsFrom | None = None,
    *,
    num_generations: int | None = None,
    components: bool | Sequence[str] = True,
    judge: Any = None,
    name: str = "cv",
) -> list[TrlRewardFunction]:
    """TRL ``reward_funcs``: the total reward first, then (optionally) one function per component.

    Pass ``GRPOConfig(reward_weights=trl_reward_weights(funcs))`` so only the total enters the advantage;
    the component functions are there to be logged (``rewards/cv_must_use/mean``, ...).

    Args:
        config: Process reward settings (default: the paper's).
        records_from: Called with TRL's keyword arguments, returns one :class:`RolloutRecord` per completion
            (default :func:`records_from_trl`).
        num_generations: GRPO group size; group terms use consecutive groups of this size. ``None`` groups
            consecutive rollouts by ``prompt_id``.
        components: ``True`` for every component, ``False`` for none, or a list of component names.
        judge: Optional :class:`~cv_rewards.Judge`.
        name: Prefix of the logged names.

    Example:
        >>> funcs = make_trl_reward_funcs(num_generations=2, components=["accuracy"])
        >>> [f.__name__ for f in funcs], trl_reward_weights(funcs)
        (['cv_total', 'cv_accuracy'], [1.0, 0.0])
        >>> funcs[0](prompts=["q", "q"], completions=["<think>a</think><answer>4</answer>", "<answer>5</answer>"],
        ...          answer=["4", "4"])
        [1.1, 0.0]
    """
    if num_generations is not None and num_generations < 1:
        raise ValueError(f"num_generations must be >= 1, got {num_generations}")
    if components is True:
        wanted = list(COMPONENTS)
    elif components is False:
        wanted = []
    else:
        wanted = list(components)
        unknown = [c for c in wanted if c not in COMPONENTS]
        if unknown:
            raise ValueError(f"unknown components {unknown}; choose from {list(COMPONENTS)}")
    scorer = _BatchScorer(
        config or ProcessRewardConfig(), records_from or records_from_trl, num_generations, judge
    )
    funcs = [TrlRewardFunction(scorer, None, f"{name}_total")]
    funcs += [TrlRewardFunction(scorer, c, f"{name}_{c}") for c in wanted]
    return funcs


def trl_reward_weights(funcs: Sequence[Any]) -> list[float]:
    """``GRPOConfig.reward_weights`` for a list from :func:`make_trl_reward_funcs` (other functions: 1.0)."""
    return [float(getattr(f, "reward_weight", 1.0)) for f in funcs]
