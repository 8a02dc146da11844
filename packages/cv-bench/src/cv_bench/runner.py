"""``cv-bench eval``: run a model over a suite through the agent loop and sandbox, score, append, resume.

Every finished ``(item, sample)`` episode is appended to ``results.jsonl`` at once (fsynced), so a rerun with
the same ``--out`` skips what is done and a killed run loses nothing. Model calls and judge calls have
separate concurrency limits. Episodes that fail inside the harness (endpoint down, backend crash) are NOT
recorded as wrong answers: they go to ``errors.jsonl`` and are retried by the next rerun.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cv_data import base_id_of, load_suite, variant_of
from cv_protocol import get_preset, parse_model_spec

from .results import RESULTS_FILE, ItemResult, ResultStore, ToolCallSummary

MODEL_HELP = """cv-bench eval needs a model: --model SPEC, one of
  reference               scripted policy built from each item's metadata (writes the corrective code, crops
                          the answer box, answers the ground truth); validates the harness, scores 100 %
  openai:URL#MODEL        any OpenAI-compatible chat endpoint serving a VLM, e.g.
                          openai:http://localhost:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct (vllm serve ...);
                          the API key is read from $OPENAI_API_KEY when the server needs one
  hf:PATH                 a local transformers checkpoint (directory or hub id already in the cache);
                          needs `pip install cv-bench[hf]`
  vllm:PATH               in-process vLLM engine on a GPU; needs `pip install cv-bench[vllm]`
Example: cv-bench eval --model reference --suite orientation --out runs/demo"""

ERRORS_FILE = "errors.jsonl"
RUN_INFO_FILE = "run.json"

#: Settings that define which episodes a run directory holds; a rerun must agree on them to resume.
_IDENTITY_KEYS = ("model", "suite", "size", "seed", "data", "max_turns", "max_pixels", "preset")
# What a run.json written before a key existed meant by it.
_IDENTITY_DEFAULTS: dict[str, Any] = {"preset": "default"}


@dataclass
class EvalConfig:
    """Settings of one evaluation run (the CLI flags of ``cv-bench eval``).

    Attributes:
        model: Model spec: ``reference``, ``openai:URL#MODEL``, ``hf:PATH`` or ``vllm:PATH``.
        suite: Suite name (``cv-bench list``).
        out: Run directory; results, trajectories and reports go here, and a rerun resumes from it.
        size: Base items for built-in suites (each expands into its variants); ``None`` = suite default.
        limit: Evaluate at most this many items (after variant expansion, in suite order); ``None`` = all.
        samples: ``k`` of Avg@k: episodes per item (use a temperature > 0 with real models).
        concurrency: Episodes in flight at once (model calls).
        judge: Optional LLM judge ``openai:URL#MODEL``, used only when rule matching cannot decide.
        judge_concurrency: Judge calls in flight at once.
        seed: Seed of the built-in suites' synthetic generators.
        data: Path of a user copy of an external benchmark (parquet/JSONL/TSV + images).
        max_turns: Assistant turns per episode.
        max_new_tokens: Tokens per assistant turn.
        temperature: Sampling temperature passed to the agent; ``None`` = the agent's default.
        max_pixels: Pixel budget of the images the model sees; ``None`` = the agent's default (8192*28*28).
        trajectories: Per episode under ``trajectories/``: ``page`` (viewer page + JSON record without
            pixels), ``full`` (also the full-resolution images, cv_agent's JSONL layout) or ``none``.
        sandbox_workers: Worker processes of the shared sandbox.
        progress: Show a tqdm progress bar with running accuracy.
        label: Row label in tables (default: the model spec).
        preset: What the model is shown (a ``cv_protocol.PRESETS`` name: ``"default"``, ``"release"``, ...):
            system prompt, tool schema, tool-response texts and code limit. Part of the run's identity.
    """

    model: str = ""
    suite: str = "orientation"
    out: str | Path = "runs/eval"
    size: int | None = None
    limit: int | None = None
    samples: int = 1
    concurrency: int = 8
    judge: str | None = None
    judge_concurrency: int = 4
    seed: int = 0
    data: str | None = None
    max_turns: int = 12
    max_new_tokens: int = 2048
    temperature: float | None = None
    max_pixels: int | None = None
    trajectories: str = "page"
    sandbox_workers: int = 2
    progress: bool = True
    label: str | None = None
    preset: str = "default"

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError(MODEL_HELP)
        get_preset(self.preset)  # an unknown name fails here, listing the registry
        if self.model != "reference":
            try:
                parse_model_spec(self.model)
            except ValueError as e:
                raise ValueError(f"{e}\n{MODEL_HELP}") from None
        if self.size is not None and self.size < 1:
            raise ValueError(
                "size must be >= 1 (base items per built-in suite); leave it unset for the default"
            )
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1; leave it unset to evaluate every item")
        if self.samples < 1:
            raise ValueError("samples (k of Avg@k) must be >= 1")
        if self.concurrency < 1 or self.judge_concurrency < 1:
            raise ValueError("concurrency and judge_concurrency must be >= 1")
        if self.max_turns < 1:
            raise ValueError("max_turns must be >= 1")
        if self.max_pixels is not None and self.max_pixels < 28 * 28:
            raise ValueError(
                "max_pixels must be >= 784 (one 28x28 patch); leave it unset for the agent default"
            )
        if self.trajectories not in TRAJECTORY_MODES:
            raise ValueError(f"trajectories must be one of {TRAJECTORY_MODES}, got {self.trajectories!r}")
        if self.judge is not None:
            parse_model_spec(self.judge, kinds=("openai",))  # the judge is an OpenAI-compatible endpoint
        self.out = Path(self.out)

    def identity(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _IDENTITY_KEYS}


@dataclass
class EvalOutcome:
    """What :func:`evaluate` did.

    Attributes:
        run_dir: The run directory.
        summary: The run's summary (``summary.json``), over all results including resumed ones.
        new: Episodes run and recorded now.
        skipped: Episodes already in ``results.jsonl`` (resumed).
        failed: Episodes that failed in the harness (logged to ``errors.jsonl``, retried by a rerun).
    """

    run_dir: Path
    summary: dict[str, Any]
    new: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


BackendFactory = Callable[[Any], Any]


def make_backend_factory(model: str, agent_config: Any = None, sandbox: Any = None) -> BackendFactory:
    """``item -> backend``: one scripted backend per item for ``reference`` (its checks run their planned
    calls in ``sandbox``, the run's), one shared backend otherwise."""
    if model == "reference":
        from .reference import ReferencePolicy

        return lambda item: ReferencePolicy.for_item(item, agent_config, sandbox=sandbox)
    from cv_agent import make_backend

    return _SharedBackend(make_backend(model))


class _SharedBackend:
    """One backend for every item; closed (HTTP clients, models) when the run ends."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def __call__(self, _item: Any) -> Any:
        return self.backend

    async def aclose(self) -> None:
        await self.backend.aclose()


def make_judge(spec: str | None) -> Any:
    """A ``cv_rewards.Judge`` for ``openai:URL#MODEL`` (API key from ``$OPENAI_API_KEY``), or ``None``."""
    if spec is None:
        return None
    from cv_rewards import Judge, JudgeConfig

    endpoint = parse_model_spec(spec, kinds=("openai",))
    return Judge(JudgeConfig(base_url=endpoint.base_url, model=endpoint.model))


def score_answer(pred: str | None, item: Any, judge: Any = None) -> tuple[bool, str, str]:
    """Match ``pred`` against the item's answer(s) with ``cv_rewards.match_answer``.

    Rules decide first; the judge is consulted only when they cannot (inside ``match_answer``). Items with
    several acceptable answers (``meta["answers"]``, e.g. OCRBench) are correct when any matches.

    Returns:
        ``(correct, method, detail)``; ``method`` records who decided (``judge:<model>`` for the judge).
    """
    from cv_rewards import match_answer

    meta = getattr(item, "meta", None) or {}
    answers = [str(a) for a in meta.get("answers") or []] or [str(item.answer)]
    kw = {
        "choices": getattr(item, "choices", None),
        "task_type": getattr(item, "task_type", "general"),
        "question": item.question,
    }
    first = None
    for gt in answers:
        m = match_answer(pred, gt, **kw)
        if m.correct:
            return True, m.method, m.detail
        first = first or m
    assert first is not None
    if judge is not None and pred is not None:
        # Rules could not accept any of the answers: one judge call, shown every acceptable answer.
        m = match_answer(pred, " OR ".join(answers) if len(answers) > 1 else answers[0], judge=judge, **kw)
        return m.correct, m.method, m.detail
    return False, first.method, first.detail


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120]


def episode_name(item_id: str, sample: int) -> str:
    """File name of an episode's trajectory under ``trajectories/`` (``<name>.json``, ``.html``, ``<name>/``).

    Example:
        >>> episode_name("orientation-0001/rot90", 0)
        'orientation-0001_rot90__s0'
    """
    return _safe(f"{item_id}__s{sample}")


def _tool_summaries(traj: Any) -> list[ToolCallSummary]:
    out = []
    for c in getattr(traj, "tool_calls", []) or []:
        ops = [o["name"] if isinstance(o, dict) else getattr(o, "name", str(o)) for o in (c.ops or [])]
        out.append(ToolCallSummary(ok=bool(c.ok), error_kind=c.error_kind, ops=ops))
    return out


class HarnessError(RuntimeError):
    """An episode failed outside the model's control (backend down, crash); it is retried, not scored."""


#: What ``--trajectories`` saves per episode.
TRAJECTORY_MODES = ("page", "full", "none")
#: Longest image side in trajectory pages: pages stay small (tens of kB) and quick to write.
PAGE_MAX_SIDE = 384


def _save_trajectory(traj: Any, run_dir: Path, name: str, mode: str) -> str | None:
    """Write the episode's viewer page and JSON record (``full``: also the JSONL + full-resolution PNGs)."""
    from cv_agent import render_trajectory_html

    if mode == "none":
        return None
    d = run_dir / "trajectories"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.json").write_text(json.dumps(traj.to_dict(), ensure_ascii=False), encoding="utf-8")
    if mode == "full":
        full = d / name
        if full.exists():
            # Left by a run killed after saving but before recording the result: replace, never append twice.
            shutil.rmtree(full)
        traj.save(full)
    page = d / f"{name}.html"
    render_trajectory_html(traj, page, max_side=PAGE_MAX_SIDE)
    return page.relative_to(run_dir).as_posix()


def _check_run_info(run_dir: Path, config: EvalConfig) -> dict[str, Any]:
    path = run_dir / RUN_INFO_FILE
    ident = {k: (str(v) if isinstance(v, Path) else v) for k, v in config.identity().items()}
    if path.exists():
        old = json.loads(path.read_text())
        old = {k: old.get(k, _IDENTITY_DEFAULTS.get(k)) for k in _IDENTITY_KEYS}
        diff = {k: (old[k], ident[k]) for k in _IDENTITY_KEYS if old[k] != ident[k]}
        if diff and (run_dir / RESULTS_FILE).exists():
            lines = ", ".join(f"{k}: {a!r} there vs {b!r} now" for k, (a, b) in diff.items())
            raise ValueError(
                f"{run_dir} holds a different run ({lines}); use another --out, or the same settings to resume"
            )
    info = {
        **ident,
        "label": config.label or config.model,
        "samples": config.samples,
        "limit": config.limit,
        "judge": config.judge,
        "temperature": config.temperature,
        "max_new_tokens": config.max_new_tokens,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2) + "\n")
    return info


@dataclass
class _ResumePlan:
    """What a run still has to do, given what ``results.jsonl`` already holds.

    Attributes:
        store: The run's result store.
        todo: ``(item, sample)`` episodes not finished yet, in suite order.
        total: Episodes of the whole run (items x samples).
        skipped: Episodes already finished (resumed).
        correct: Correct answers among the finished episodes of this run.
    """

    store: ResultStore
    todo: list[tuple[Any, int]]
    total: int
    skipped: int
    correct: int


def _suite_items(config: EvalConfig, items: Sequence[Any] | None) -> list[Any]:
    """The items to evaluate: ``items`` or the configured suite, cut to ``limit``, with unique ids."""
    if items is None:
        items = load_suite(
            config.suite,
            size=config.size,
            seed=config.seed,
            data=config.data,
            limit=config.limit,
            progress=config.progress,
        )
    items = list(items)[: config.limit] if config.limit is not None else list(items)
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        raise ValueError(
            f"suite {config.suite!r} has duplicate item ids; results could not be resumed safely"
        )
    return items


def _resume_plan(run_dir: Path, items: Sequence[Any], samples: int) -> _ResumePlan:
    """Split the run's episodes into finished (in ``results.jsonl``) and still to do."""
    store = ResultStore(run_dir / RESULTS_FILE)
    store.path.touch()  # an empty run still has a (empty) results file, so reports work
    prior = store.load()
    done = {r.key for r in prior}
    keys = {(it.id, s) for it in items for s in range(samples)}
    todo = [(it, s) for it in items for s in range(samples) if (it.id, s) not in done]
    return _ResumePlan(
        store=store,
        todo=todo,
        total=len(keys),
        skipped=len(items) * samples - len(todo),
        correct=sum(r.correct for r in prior if r.key in keys),
    )


def _agent_config(config: EvalConfig) -> Any:
    """The ``cv_agent.AgentConfig`` of the run; unset options keep the agent's defaults."""
    from cv_agent import AgentConfig

    kw: dict[str, Any] = {
        "max_turns": config.max_turns,
        "max_new_tokens": config.max_new_tokens,
        "preset": config.preset,
    }
    if config.temperature is not None:
        kw["temperature"] = config.temperature
    if config.max_pixels is not None:
        kw["max_pixels"] = config.max_pixels
    return AgentConfig(**kw)


def _backend_factory(
    config: EvalConfig, agent_config: Any, plan: _ResumePlan, sandbox: Any
) -> BackendFactory:
    """The model's backend factory; a finished run that is only re-reported loads no model."""
    if not plan.todo:
        return lambda _item: None
    return make_backend_factory(config.model, agent_config, sandbox)


def _sandbox_for(config: EvalConfig, plan: _ResumePlan) -> Any:
    """The run's shared sandbox; a finished run that is only re-reported starts no workers."""
    from cv_sandbox import Sandbox, SandboxConfig

    if not plan.todo:
        return contextlib.nullcontext()
    return Sandbox(SandboxConfig(workers=config.sandbox_workers))


class _EpisodeRunner:
    """Runs ``(item, sample)`` episodes under the run's limits and records what happened.

    A finished episode is scored and appended to the result store at once; one that fails in the harness
    goes to ``errors.jsonl`` (retried by a rerun) and never counts as a wrong answer. Used as an async
    context manager: leaving it closes the progress bar and the backends (HTTP clients, models).
    """

    def __init__(
        self,
        config: EvalConfig,
        plan: _ResumePlan,
        outcome: EvalOutcome,
        factory: BackendFactory,
        agent_config: Any,
        judge: Any,
        sandbox: Any,
    ) -> None:
        from tqdm.auto import tqdm

        self.config, self.plan, self.outcome = config, plan, outcome
        self.factory, self.agent_config, self.judge, self.sandbox = factory, agent_config, judge, sandbox
        self.model_sem = asyncio.Semaphore(config.concurrency)
        self.judge_sem = asyncio.Semaphore(config.judge_concurrency)
        self.correct, self.finished = plan.correct, plan.skipped
        self.bar = tqdm(
            total=plan.total,
            initial=plan.skipped,
            desc=f"{config.suite} {config.label or config.model}",
            unit="ep",
            disable=not config.progress,
            dynamic_ncols=True,
        )

    async def __aenter__(self) -> _EpisodeRunner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.bar.close()
        if hasattr(self.factory, "aclose"):
            await self.factory.aclose()

    async def run(self, item: Any, sample: int) -> None:
        """Play, score and record one episode (at most ``concurrency`` at once)."""
        async with self.model_sem:
            t0 = time.perf_counter()
            try:
                traj, scored, page = await self._play(item, sample)
            except Exception as e:  # noqa: BLE001 - a harness failure must not be scored as a wrong answer
                self._record_failure(item, sample, e)
                return
            self._record_result(
                _item_result(self.config, item, sample, traj, scored, page, time.perf_counter() - t0)
            )

    async def _play(self, item: Any, sample: int) -> tuple[Any, tuple[bool, str, str], str | None]:
        """Run the agent on the item, score its answer and save the trajectory."""
        from cv_agent import Agent

        agent = Agent(self.factory(item), self.agent_config, sandbox=self.sandbox)
        traj = await agent.arun(list(item.images), item.question, item_id=f"{item.id}#s{sample}")
        if traj.stop_reason == "error":
            # The agent turns backend failures into stop_reason="error": not the model's answer.
            raise HarnessError(traj.error or "backend failed")
        async with self.judge_sem:
            scored = await asyncio.to_thread(score_answer, traj.answer, item, self.judge)
        name = episode_name(item.id, sample)
        run_dir = self.outcome.run_dir
        page = await asyncio.to_thread(_save_trajectory, traj, run_dir, name, self.config.trajectories)
        return traj, scored, page

    def _record_failure(self, item: Any, sample: int, error: Exception) -> None:
        self.outcome.failed += 1
        msg = f"{item.id}#s{sample}: {type(error).__name__}: {error}"
        self.outcome.errors.append(msg)
        line = {
            "item_id": item.id,
            "sample": sample,
            "error": msg,
            "traceback": "".join(traceback.format_exception(error)),
            "time": time.time(),
        }
        with open(self.outcome.run_dir / ERRORS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        self.bar.update(1)

    def _record_result(self, result: ItemResult) -> None:
        self.plan.store.append(result)
        self.outcome.new += 1
        self.correct += result.correct
        self.finished += 1
        self.bar.update(1)
        self.bar.set_postfix(acc=f"{100.0 * self.correct / max(self.finished, 1):.1f}%", refresh=False)


def _item_result(
    config: EvalConfig,
    item: Any,
    sample: int,
    traj: Any,
    scored: tuple[bool, str, str],
    page: str | None,
    duration_s: float,
) -> ItemResult:
    """The result line of one finished episode."""
    correct, method, detail = scored
    return ItemResult(
        item_id=item.id,
        sample=sample,
        suite=config.suite,
        variant=variant_of(item),
        base_id=base_id_of(item),
        data_source=getattr(item, "data_source", ""),
        question=item.question,
        gt=str(item.answer),
        pred=traj.answer,
        correct=correct,
        match_method=method,
        match_detail=detail,
        transform=list(getattr(item, "transform", None) or []),
        task_type=getattr(item, "task_type", "general"),
        stop_reason=getattr(traj, "stop_reason", ""),
        turns=int(getattr(traj, "turns", 0)),
        tool_calls=_tool_summaries(traj),
        duration_s=round(duration_s, 4),
        model=config.model,
        trajectory=page,
    )


async def _run_all(episode: Callable[[Any, int], Awaitable[None]], todo: Sequence[tuple[Any, int]]) -> None:
    """Run every episode concurrently (the runner's semaphores set the limits).

    Ctrl-C / SystemExit inside one episode stops the whole run cleanly: the other episodes are cancelled
    (their finished results are already on disk) and the exception is re-raised once, instead of escaping
    every task of the event loop.
    """
    abort: list[BaseException] = []
    tasks: list[asyncio.Task[None]] = []

    async def guarded(item: Any, sample: int) -> None:
        try:
            await episode(item, sample)
        except (KeyboardInterrupt, SystemExit) as e:
            if not abort:
                abort.append(e)
                me = asyncio.current_task()
                for t in tasks:
                    if t is not me:
                        t.cancel()

    tasks.extend(asyncio.ensure_future(guarded(it, s)) for it, s in todo)
    for r in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
            raise r
    if abort:
        raise abort[0]


async def aevaluate(
    config: EvalConfig,
    *,
    backend_factory: BackendFactory | None = None,
    items: Sequence[Any] | None = None,
    judge: Any = None,
) -> EvalOutcome:
    """Async :func:`evaluate`. ``backend_factory`` and ``items`` override the model spec and suite (tests).

    Check the run directory's identity, pick the suite's items, skip the episodes ``results.jsonl`` already
    holds, run the rest concurrently through the agent loop and one shared sandbox (each recorded as it
    finishes), then rebuild the reports from every result.
    """
    from .report import write_report

    run_dir = Path(config.out)
    _check_run_info(run_dir, config)
    items = _suite_items(config, items)
    plan = _resume_plan(run_dir, items, config.samples)
    agent_config = _agent_config(config)
    judge = judge if judge is not None else make_judge(config.judge)
    outcome = EvalOutcome(run_dir=run_dir, summary={}, skipped=plan.skipped)
    with _sandbox_for(config, plan) as sandbox:
        factory = backend_factory or _backend_factory(config, agent_config, plan, sandbox)
        async with _EpisodeRunner(config, plan, outcome, factory, agent_config, judge, sandbox) as runner:
            await _run_all(runner.run, plan.todo)
    outcome.summary = write_report(run_dir)
    return outcome


def evaluate(
    config: EvalConfig,
    *,
    backend_factory: BackendFactory | None = None,
    items: Sequence[Any] | None = None,
    judge: Any = None,
) -> EvalOutcome:
    """Evaluate ``config.model`` on ``config.suite``, resuming from ``config.out``; writes the reports.

    Example:
        >>> out = evaluate(EvalConfig(model="reference", suite="orientation", size=1, out=tmp, progress=False))  # doctest: +SKIP
        >>> out.summary["avg"]  # doctest: +SKIP
        100.0
    """
    return asyncio.run(aevaluate(config, backend_factory=backend_factory, items=items, judge=judge))


def config_dict(config: EvalConfig) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
