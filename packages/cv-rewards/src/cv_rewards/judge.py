"""An LLM judge over any OpenAI-compatible ``/v1/chat/completions`` endpoint (stdlib HTTP only).

The judge is the last resort of :func:`cv_rewards.match_answer`: it is consulted only when no rule decides,
its verdicts are cached (in memory and, optionally, in a JSONL file shared across runs), transient failures
are retried with exponential backoff, and every verdict records the judge model in ``MatchResult.method``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .verdict import TASK_TYPES, MatchResult

__all__ = ["DEFAULT_JUDGE_PROMPTS", "Judge", "JudgeConfig", "JudgeError", "JudgeVerdict"]

logger = logging.getLogger(__name__)

_COMMON = (
    "Question: {question}\nGround-truth answer: {gt}\nModel answer: {pred}\n\n"
    "Reply with exactly one word: CORRECT or INCORRECT."
)
#: Judge prompt per task type; placeholders ``{question}``, ``{gt}``, ``{pred}``.
DEFAULT_JUDGE_PROMPTS: dict[str, str] = {
    "general": "You grade answers to visual questions. The model answer is CORRECT if it means the same as the "
    "ground truth (ignore wording, case and formatting; extra explanation is fine if the answer is clear).\n\n"
    + _COMMON,
    "ocr": "You grade text-recognition answers. The model answer is CORRECT only if it reproduces the ground-truth "
    "text exactly, ignoring case, spacing and surrounding punctuation; any different character is INCORRECT.\n\n"
    + _COMMON,
    "math": "You grade math answers. The model answer is CORRECT if it is mathematically equivalent to the ground "
    "truth (same value, equivalent expression or form, units ignored).\n\n" + _COMMON,
    "chart": "You grade chart question answers. Numbers within 5% of the ground truth are CORRECT; text must mean "
    "the same as the ground truth.\n\n" + _COMMON,
}


class JudgeError(RuntimeError):
    """The judge endpoint failed after all retries or returned an unusable reply."""


@dataclass
class JudgeConfig:
    """Settings of :class:`Judge`.

    Attributes:
        base_url: OpenAI-compatible base URL such as ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is
            appended unless the URL already ends with it).
        model: Model name sent in the request and recorded as ``judge:<model>``.
        api_key_env: Environment variable holding the API key (sent as ``Bearer``); unset or empty variable
            means no ``Authorization`` header.
        timeout_s: Per-request timeout in seconds.
        max_retries: Extra attempts after a failed request (connection errors, timeouts, HTTP 408/409/429/5xx).
        backoff_s: First retry delay in seconds; doubled after each failure (``Retry-After`` wins if larger).
        temperature: Sampling temperature of the judge (0 for reproducible verdicts).
        max_tokens: Completion token cap; the verdict is one word.
        cache_path: Optional JSONL file of verdicts, read at start and appended to.
        prompts: Per-task-type prompt templates overriding :data:`DEFAULT_JUDGE_PROMPTS`.
        max_concurrency: Judge requests in flight at once when a group of rollouts is scored.
        on_error: ``"fallback"`` keeps the rule result (its ``detail`` says the judge failed, and a warning is
            logged) or ``"raise"`` raises :class:`JudgeError`.

    Example:
        >>> JudgeConfig(base_url="http://127.0.0.1:8000/v1", model="qwen").endpoint
        'http://127.0.0.1:8000/v1/chat/completions'
    """

    base_url: str
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"
    timeout_s: float = 30.0
    max_retries: int = 3
    backoff_s: float = 0.5
    temperature: float = 0.0
    max_tokens: int = 8
    cache_path: str | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    max_concurrency: int = 8
    on_error: str = "fallback"

    def __post_init__(self) -> None:
        if not self.base_url or not self.base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"JudgeConfig.base_url must be an http(s) URL like http://host:8000/v1, got {self.base_url!r}"
            )
        if not self.model:
            raise ValueError("JudgeConfig.model must name the judge model served at base_url")
        if self.timeout_s <= 0:
            raise ValueError(f"JudgeConfig.timeout_s must be > 0, got {self.timeout_s}")
        if self.max_retries < 0:
            raise ValueError(f"JudgeConfig.max_retries must be >= 0, got {self.max_retries}")
        if self.backoff_s < 0:
            raise ValueError(f"JudgeConfig.backoff_s must be >= 0, got {self.backoff_s}")
        if self.max_tokens < 1:
            raise ValueError(f"JudgeConfig.max_tokens must be >= 1, got {self.max_tokens}")
        if self.max_concurrency < 1:
            raise ValueError(f"JudgeConfig.max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.on_error not in ("fallback", "raise"):
            raise ValueError(f"JudgeConfig.on_error must be 'fallback' or 'raise', got {self.on_error!r}")
        unknown = sorted(set(self.prompts) - TASK_TYPES)
        if unknown:
            raise ValueError(
                f"JudgeConfig.prompts has unknown task types {unknown}; use {sorted(TASK_TYPES)}"
            )
        for task, template in self.prompts.items():
            missing = [p for p in ("{gt}", "{pred}") if p not in template]
            if missing:
                raise ValueError(f"JudgeConfig.prompts[{task!r}] must contain the placeholders {missing}")

    @property
    def endpoint(self) -> str:
        """The full chat-completions URL."""
        url = self.base_url.rstrip("/")
        return url if url.endswith("/chat/completions") else url + "/chat/completions"


@dataclass(frozen=True)
class JudgeVerdict:
    """One judge decision.

    Attributes:
        correct: The verdict.
        reply: The judge's raw reply text.
        model: The judge model.
        cached: Whether it came from the cache rather than a request.
    """

    correct: bool
    reply: str
    model: str
    cached: bool = False


_VERDICT_RE = re.compile(r"\b(incorrect|correct|wrong|right|yes|no|false|true)\b", re.IGNORECASE)
_POSITIVE = {"correct", "right", "yes", "true"}
_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


def parse_verdict(reply: str) -> bool | None:
    """Read CORRECT/INCORRECT (or yes/no) from a judge reply; ``None`` if it says neither."""
    # Reasoning judges may think first; the verdict is whatever follows the last think block.
    reply = reply.rsplit("</think>", 1)[-1]
    m = _VERDICT_RE.search(reply)
    return None if m is None else m.group(1).lower() in _POSITIVE


class Judge:
    """OpenAI-compatible LLM judge with an in-memory + JSONL cache and retries.

    Thread-safe: one instance can serve concurrent scorers. Requests go out only on cache misses.

    Example:
        >>> judge = Judge(JudgeConfig(base_url="http://127.0.0.1:9/v1", model="m", max_retries=0))
        >>> judge.name
        'judge:m'
    """

    def __init__(self, config: JudgeConfig) -> None:
        self.config = config
        self._cache: dict[str, JudgeVerdict] = {}
        self._lock = threading.Lock()
        self.requests = 0  # HTTP requests sent (retries included), for tests and logging
        if config.cache_path and Path(config.cache_path).exists():
            self._load_cache(Path(config.cache_path))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_lock"]  # locks do not pickle; TRL may pickle reward functions that hold a judge
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The method string recorded in :class:`~cv_rewards.MatchResult`."""
        return f"judge:{self.config.model}"

    # ------------------------------------------------------------------------------------- cache

    def _key(self, prompt: str) -> str:
        return hashlib.sha256(json.dumps([self.config.model, prompt]).encode()).hexdigest()

    def _load_cache(self, path: Path) -> None:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                self._cache[row["key"]] = JudgeVerdict(
                    bool(row["correct"]), row["reply"], row["model"], cached=True
                )
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                # A torn last line (killed run) must not lose the rest of the cache.
                logger.warning("skipping bad judge cache line %s:%d (%s)", path, lineno, exc)

    def _store(self, key: str, verdict: JudgeVerdict) -> None:
        with self._lock:
            self._cache[key] = JudgeVerdict(verdict.correct, verdict.reply, verdict.model, cached=True)
            if self.config.cache_path:
                row = {"key": key, "correct": verdict.correct, "reply": verdict.reply, "model": verdict.model}
                path = Path(self.config.cache_path)
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")

    # ----------------------------------------------------------------------------------- request

    def prompt(self, pred: str, gt: str, *, task_type: str = "general", question: str = "") -> str:
        """The judge prompt for one comparison."""
        if task_type not in TASK_TYPES:
            raise ValueError(f"unknown task_type {task_type!r}; set one of {sorted(TASK_TYPES)}")
        template = self.config.prompts.get(task_type, DEFAULT_JUDGE_PROMPTS[task_type])
        return template.format(question=question or "(not given)", gt=gt, pred=pred)

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env or "", "") if self.config.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(payload).encode()
        delay = self.config.backoff_s
        last: Exception | None = None
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                time.sleep(delay)
                delay *= 2
            with self._lock:
                self.requests += 1
            req = urllib.request.Request(self.config.endpoint, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.config.timeout_s) as resp:  # noqa: S310 - URL is configured
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                body = exc.read().decode("utf-8", "replace")[:300]
                last = JudgeError(f"judge HTTP {exc.code} from {self.config.endpoint}: {body}")
                if exc.code not in _RETRY_STATUS:
                    raise last from exc
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    delay = max(delay, min(float(retry_after), 60.0))
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as exc:
                last = JudgeError(f"judge request to {self.config.endpoint} failed: {exc}")
            logger.info("judge attempt %d/%d failed: %s", attempt + 1, self.config.max_retries + 1, last)
        raise JudgeError(f"{last} (after {self.config.max_retries + 1} attempts)")

    def judge(self, pred: str, gt: str, *, task_type: str = "general", question: str = "") -> JudgeVerdict:
        """Ask the judge (or its cache) whether ``pred`` answers like ``gt``.

        Raises:
            JudgeError: The endpoint failed after all retries or its reply holds no verdict.
        """
        prompt = self.prompt(pred, gt, task_type=task_type, question=question)
        key = self._key(prompt)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        payload = {
            "model": self.config.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        }
        body = self._post(payload)
        try:
            reply = body["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise JudgeError(f"judge reply has no choices[0].message.content: {str(body)[:300]}") from exc
        correct = parse_verdict(reply)
        if correct is None:
            raise JudgeError(f"judge reply holds no CORRECT/INCORRECT verdict: {reply[:200]!r}")
        verdict = JudgeVerdict(correct, reply.strip(), self.config.model)
        self._store(key, verdict)
        return verdict

    def match(
        self,
        pred: str,
        gt: str,
        *,
        task_type: str = "general",
        question: str = "",
        fallback: MatchResult | None = None,
    ) -> MatchResult:
        """Judge one comparison as a :class:`~cv_rewards.MatchResult` (``method="judge:<model>"``).

        With ``on_error="fallback"``, a failing judge returns ``fallback`` (or an incorrect result) whose
        ``detail`` records the failure.
        """
        try:
            v = self.judge(pred, gt, task_type=task_type, question=question)
        except JudgeError as exc:
            if self.config.on_error == "raise":
                raise
            logger.warning("LLM judge failed, keeping the rule result: %s", exc)
            base = fallback or MatchResult(False, "text", "")
            return MatchResult(base.correct, base.method, f"{base.detail}; judge error: {exc}".lstrip("; "))
        return MatchResult(v.correct, self.name, f"verdict={v.reply!r}{' (cached)' if v.cached else ''}")
