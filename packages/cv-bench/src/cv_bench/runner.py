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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cv_protocol import parse_model_spec

from .results import RESULTS_FILE, ItemResult, ResultStore, ToolCallSummary
from .suites import base_id_of, load_suite, variant_of

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
_IDENTITY_KEYS = ("model", "suite", "size", "seed", "data", "max_turns", "max_pixels")


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

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError(MODEL_HELP)
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


def make_backend_factory(model: str, agent_config: Any = None) -> BackendFactory:
    """``item -> backend``: one scripted backend per item for ``reference``, one shared backend otherwise."""
    if model == "reference":
        from .reference import ReferencePolicy

        return lambda item: ReferencePolicy.for_item(item, agent_config)
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
        diff = {k: (old.get(k), ident[k]) for k in _IDENTITY_KEYS if old.get(k) != ident[k]}
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


async def aevaluate(
    config: EvalConfig,
    *,
    backend_factory: BackendFactory | None = None,
    items: Sequence[Any] | None = None,
    judge: Any = None,
) -> EvalOutcome:
    """Async :func:`evaluate`. ``backend_factory`` and ``items`` override the model spec and suite (tests)."""
    from cv_agent import Agent, AgentConfig
    from cv_sandbox import Sandbox, SandboxConfig
    from tqdm.auto import tqdm

    from .report import write_report

    run_dir = Path(config.out)
    _check_run_info(run_dir, config)
    if items is None:
        items = load_suite(
            config.suite,
            size=config.size,
            seed=config.seed,
            data=config.data,
            limit=config.limit,
            progress=config.progress,
        )
    if config.limit is not None:
        items = list(items)[: config.limit]
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        raise ValueError(
            f"suite {config.suite!r} has duplicate item ids; results could not be resumed safely"
        )
    store = ResultStore(run_dir / RESULTS_FILE)
    store.path.touch()  # an empty run still has a (empty) results file, so reports work
    done = store.done_keys()
    prior = [r for r in store.load() if (r.item_id, r.sample) in done]
    todo = [(it, s) for it in items for s in range(config.samples) if (it.id, s) not in done]
    skipped = len(items) * config.samples - len(todo)
    akw: dict[str, Any] = {"max_turns": config.max_turns, "max_new_tokens": config.max_new_tokens}
    if config.temperature is not None:
        akw["temperature"] = config.temperature
    if config.max_pixels is not None:
        akw["max_pixels"] = config.max_pixels
    agent_config = AgentConfig(**akw)
    # Nothing left to run (a finished run resumed): do not load a model just to report.
    factory = backend_factory or (
        make_backend_factory(config.model, agent_config) if todo else (lambda _i: None)
    )
    if judge is None:
        judge = make_judge(config.judge)
    keys = {(it.id, s) for it in items for s in range(config.samples)}
    correct = sum(r.correct for r in prior if (r.item_id, r.sample) in keys)
    finished = skipped
    outcome = EvalOutcome(run_dir=run_dir, summary={}, skipped=skipped)
    model_sem = asyncio.Semaphore(config.concurrency)
    judge_sem = asyncio.Semaphore(config.judge_concurrency)
    bar = tqdm(
        total=len(keys),
        initial=skipped,
        desc=f"{config.suite} {config.label or config.model}",
        unit="ep",
        disable=not config.progress,
        dynamic_ncols=True,
    )

    # A finished run that is only re-reported starts no sandbox workers.
    sandbox_cm = Sandbox(SandboxConfig(workers=config.sandbox_workers)) if todo else contextlib.nullcontext()
    with sandbox_cm as sandbox:

        async def one(item: Any, sample: int) -> None:
            nonlocal correct, finished
            async with model_sem:
                t0 = time.perf_counter()
                try:
                    agent = Agent(factory(item), agent_config, sandbox=sandbox)
                    traj = await agent.arun(list(item.images), item.question, item_id=f"{item.id}#s{sample}")
                    if traj.stop_reason == "error":
                        # The agent turns backend failures into stop_reason="error": not the model's answer.
                        raise HarnessError(traj.error or "backend failed")
                    async with judge_sem:
                        ok, method, detail = await asyncio.to_thread(score_answer, traj.answer, item, judge)
                    page = await asyncio.to_thread(
                        _save_trajectory, traj, run_dir, _safe(f"{item.id}__s{sample}"), config.trajectories
                    )
                except Exception as e:  # noqa: BLE001 - a harness failure must not be scored as a wrong answer
                    outcome.failed += 1
                    msg = f"{item.id}#s{sample}: {type(e).__name__}: {e}"
                    outcome.errors.append(msg)
                    with open(run_dir / ERRORS_FILE, "a", encoding="utf-8") as f:
                        f.write(
                            json.dumps(
                                {
                                    "item_id": item.id,
                                    "sample": sample,
                                    "error": msg,
                                    "traceback": traceback.format_exc(),
                                    "time": time.time(),
                                }
                            )
                            + "\n"
                        )
                    bar.update(1)
                    return
                res = ItemResult(
                    item_id=item.id,
                    sample=sample,
                    suite=config.suite,
                    variant=variant_of(item),
                    base_id=base_id_of(item),
                    data_source=getattr(item, "data_source", ""),
                    question=item.question,
                    gt=str(item.answer),
                    pred=traj.answer,
                    correct=ok,
                    match_method=method,
                    match_detail=detail,
                    transform=list(getattr(item, "transform", None) or []),
                    task_type=getattr(item, "task_type", "general"),
                    stop_reason=getattr(traj, "stop_reason", ""),
                    turns=int(getattr(traj, "turns", 0)),
                    tool_calls=_tool_summaries(traj),
                    duration_s=round(time.perf_counter() - t0, 4),
                    model=config.model,
                    trajectory=page,
                )
                store.append(res)
                outcome.new += 1
                correct += ok
                finished += 1
                bar.update(1)
                bar.set_postfix(acc=f"{100.0 * correct / max(finished, 1):.1f}%", refresh=False)

        abort: list[BaseException] = []
        tasks: list[asyncio.Task[None]] = []

        async def guarded(item: Any, sample: int) -> None:
            # Ctrl-C / SystemExit inside one episode stops the whole run cleanly: the other episodes are
            # cancelled (their finished results are already on disk) and the exception is re-raised once,
            # instead of escaping every task of the event loop.
            try:
                await one(item, sample)
            except (KeyboardInterrupt, SystemExit) as e:
                if not abort:
                    abort.append(e)
                    me = asyncio.current_task()
                    for t in tasks:
                        if t is not me:
                            t.cancel()

        try:
            tasks.extend(asyncio.ensure_future(guarded(it, s)) for it, s in todo)
            for r in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                    raise r
        finally:
            bar.close()
            if hasattr(factory, "aclose"):
                await factory.aclose()
        if abort:
            raise abort[0]
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
