"""OpenAI-compatible chat-completions backend (``vllm serve``, SGLang, hosted APIs) over async httpx."""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from cv_protocol import content_text
from PIL import Image

from ._messages import DataUrlCache, dumps_with_fragments, to_openai_messages
from .base import BackendError, Generation, ModelBackend

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_CONNECTIONS_PER_CLIENT = 1
_JSON = {"Content-Type": "application/json"}


@dataclass
class OpenAIBackendConfig:
    """Settings of :class:`OpenAIBackend`.

    Attributes:
        base_url: Server root including ``/v1``, e.g. ``http://localhost:8000/v1``.
        model: Model name sent in each request.
        api_key_env: Environment variable holding the API key (unset or empty: no auth header).
        max_concurrency: Most requests in flight at once (a semaphore shared by all episodes).
        timeout_s: Per-request timeout in seconds.
        max_retries: Retries after the first attempt on 429, 5xx, timeouts and connection errors.
        backoff_s: First retry delay; doubles each retry (with jitter), capped by ``max_backoff_s``.
        max_backoff_s: Upper bound of one retry delay (a server's ``Retry-After`` is honoured up to this).
        max_new_tokens: Default ``max_tokens`` per reply.
        temperature: Default sampling temperature.
        top_p: Nucleus sampling; ``None`` leaves the server default.
        image_format: ``"jpeg"`` (default: ~30x faster to encode than PNG, which matters at 64 concurrent
            episodes) or ``"png"`` (lossless, for when compression artefacts must be ruled out).
        image_quality: JPEG quality (95: visually lossless).
        tool_role: ``"user"`` sends tool results as ``<tool_response>`` user turns (what Qwen templates
            render); ``"tool"`` keeps the ``tool`` role.
        extra_body: Extra JSON fields merged into every request (e.g. ``{"top_k": 20}`` for vLLM).
        seed: Request seed for servers that honour it; ``None`` sends none.
    """

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 64
    timeout_s: float = 120.0
    max_retries: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 20.0
    max_new_tokens: int = 2048
    temperature: float = 0.0
    top_p: float | None = None
    image_format: str = "jpeg"
    image_quality: int = 95
    tool_role: str = "user"
    extra_body: dict[str, Any] | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        self.base_url = self.base_url.rstrip("/")
        if not self.model:
            raise ValueError("set model to the served model name")
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("backoff_s and max_backoff_s must be >= 0")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.image_format.lower() not in ("png", "jpeg", "jpg"):
            raise ValueError(f"image_format must be 'png' or 'jpeg', got {self.image_format!r}")
        if not 1 <= self.image_quality <= 100:
            raise ValueError(f"image_quality must be in 1..100, got {self.image_quality}")
        if self.tool_role not in ("user", "tool"):
            raise ValueError(f"tool_role must be 'user' or 'tool', got {self.tool_role!r}")


class OpenAIBackend(ModelBackend):
    """Chat-completions client with retries, timeouts and a concurrency limit.

    Example:
        >>> backend = OpenAIBackend(OpenAIBackendConfig("http://localhost:8000/v1", "qwen"))
        >>> backend.config.max_concurrency
        64
    """

    name = "openai"

    def __init__(
        self, config: OpenAIBackendConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._transport = transport
        self._clients: list[httpx.AsyncClient] = []
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Queue[int] | None = None
        self._encode = DataUrlCache(config.image_format, config.image_quality)
        self.stats = {"requests": 0, "retries": 0, "failures": 0}

    def _ensure_clients(self) -> asyncio.Queue[int]:
        loop = asyncio.get_running_loop()
        # httpx clients and queues are bound to one event loop; asyncio.run() per call makes new ones.
        if not self._clients or self._client_loop is not loop:
            key = os.environ.get(self.config.api_key_env, "") if self.config.api_key_env else ""
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            # httpcore's pool scans every connection on each state change (quadratic in pool size; each idle
            # connection's check costs a getpeername and a poll syscall): one 64-connection pool runs at ~25 %
            # of ideal throughput here, and one connection per client is cheapest (~0.35 ms less CPU per
            # request than 8). The clients share one SSL context (building one per client is slow).
            n = self.config.max_concurrency
            per = _CONNECTIONS_PER_CLIENT
            sizes = [min(per, n - i) for i in range(0, n, per)]
            verify = httpx.create_ssl_context() if self._transport is None else True
            self._clients = []
            for size in sizes:
                limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
                self._clients.append(
                    httpx.AsyncClient(
                        base_url=self.config.base_url,
                        headers=headers,
                        timeout=httpx.Timeout(self.config.timeout_s),
                        limits=limits,
                        transport=self._transport,
                        verify=verify,
                    )
                )
            self._client_loop = loop
            # One token per connection slot; a request holds one while in flight (the concurrency limit).
            self._slots = asyncio.Queue()
            for slot in range(per):
                for shard, size in enumerate(sizes):
                    if slot < size:
                        self._slots.put_nowait(shard)
        assert self._slots is not None
        return self._slots

    def build_request(
        self,
        messages: list[dict[str, Any]],
        images: list[Image.Image],
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
    ) -> dict[str, Any]:
        """The JSON body of one chat-completions request."""
        return self._body(messages, images, self._encode, max_new_tokens, temperature)

    def _body(
        self,
        messages: list[dict[str, Any]],
        images: list[Image.Image],
        encode: Callable[[Image.Image], str],
        max_new_tokens: int | None,
        temperature: float | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": to_openai_messages(messages, images, encode=encode, tool_role=self.config.tool_role),
            "max_tokens": max_new_tokens or self.config.max_new_tokens,
            "temperature": self.config.temperature if temperature is None else temperature,
        }
        if self.config.top_p is not None:
            body["top_p"] = self.config.top_p
        if self.config.seed is not None:
            body["seed"] = self.config.seed
        if self.config.extra_body:
            body.update(self.config.extra_body)
        return body

    def _payload(
        self,
        messages: list[dict[str, Any]],
        images: list[Image.Image],
        max_new_tokens: int | None,
        temperature: float | None,
    ) -> bytes:
        """``json.dumps(build_request(...), ensure_ascii=False).encode()``, byte for byte, but each image's data
        URL is spliced in from the encoding cache as ready-made JSON instead of being re-serialised."""
        fragments: dict[str, bytes] = {}
        nonce = secrets.token_hex(8)

        def placeholder(image: Image.Image) -> str:
            key = f"cv-agent-image-{nonce}-{len(fragments)}"
            fragments[key] = self._encode.fragment(image)
            return key

        body = self._body(messages, images, placeholder, max_new_tokens, temperature)
        try:
            return dumps_with_fragments(body, fragments)
        except ValueError:  # a placeholder collided with text (never in practice): serialise it all
            body = self.build_request(
                messages, images, max_new_tokens=max_new_tokens, temperature=temperature
            )
            return json.dumps(body, ensure_ascii=False).encode("utf-8")

    def _needs_encoding(self, messages: list[dict[str, Any]], images: list[Image.Image]) -> bool:
        """Whether building the payload would encode an image (worth a worker thread) or only splice."""
        for m in messages:
            content = m.get("content")
            if isinstance(content, list):
                for p in content:
                    if isinstance(p, dict) and p.get("type") == "image":
                        k = p.get("image_index")
                        if isinstance(k, int) and 0 <= k < len(images) and not self._encode.cached(images[k]):
                            return True
        return False

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            ra = response.headers.get("retry-after")
            if ra:
                try:
                    return min(float(ra), self.config.max_backoff_s)
                except ValueError:
                    pass
        base = min(self.config.backoff_s * (2**attempt), self.config.max_backoff_s)
        return base * (0.5 + random.random() / 2)  # jitter spreads out retry storms

    async def complete(
        self,
        messages: list[dict[str, Any]],
        images: list[Image.Image],
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Generation:
        # The server's chat template renders the prompt; ``tools`` is not sent yet (the server would render
        # its own tool block and parse calls itself).
        slots = self._ensure_clients()
        # Encode before taking a connection slot (CPU work must not hold one). Encoding new images runs in
        # a thread so that it never stalls other episodes' event-loop work; with every image already
        # encoded the body is only spliced together (tens of microseconds), cheaper than the thread hop.
        if self._needs_encoding(messages, images):
            payload = await asyncio.to_thread(self._payload, messages, images, max_new_tokens, temperature)
        else:
            payload = self._payload(messages, images, max_new_tokens, temperature)
        last_error = ""
        for attempt in range(self.config.max_retries + 1):
            response: httpx.Response | None = None
            shard = await slots.get()
            try:
                self.stats["requests"] += 1
                try:
                    response = await self._clients[shard].post(
                        "/chat/completions", content=payload, headers=_JSON
                    )
                except (httpx.TimeoutException, httpx.TransportError) as e:
                    last_error = f"{type(e).__name__}: {e}"
                else:
                    if response.status_code == 200:
                        try:
                            return self._parse_response(response.json())
                        except (ValueError, KeyError, IndexError, TypeError) as e:
                            last_error = f"malformed response: {type(e).__name__}: {e}"
                            response = None
                    elif response.status_code in _RETRY_STATUS:
                        last_error = f"HTTP {response.status_code}: {response.text[:300]}"
                    else:
                        self.stats["failures"] += 1
                        raise BackendError(
                            f"HTTP {response.status_code} from {self.config.base_url}: {response.text[:500]}"
                        )
            finally:
                slots.put_nowait(shard)
            if attempt < self.config.max_retries:
                self.stats["retries"] += 1
                await asyncio.sleep(self._delay(attempt, response))
        self.stats["failures"] += 1
        raise BackendError(f"request failed after {self.config.max_retries + 1} attempts: {last_error}")

    @staticmethod
    def _parse_response(data: dict[str, Any]) -> Generation:
        choice = data["choices"][0]
        msg = choice["message"]
        content = msg.get("content") or ""
        if isinstance(content, list):  # some servers return content parts
            content = content_text(content)
        reasoning = msg.get("reasoning_content") or msg.get("reasoning")
        if reasoning and "<think>" not in content:
            # Servers with a reasoning parser split the think block off; put it back for the trajectory.
            content = f"<think>{reasoning}</think>\n{content}"
        for call in msg.get("tool_calls") or []:
            # Servers with a tool parser return structured calls; re-render them as the model wrote them
            # (raw, so a broken call still reaches the tolerant parser and gets a helpful error).
            fn = call.get("function", {})
            args = fn.get("arguments", {})
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except ValueError:
                    content += f'\n<tool_call>\n{{"name": {json.dumps(fn.get("name", ""))}, "arguments": {args}}}\n</tool_call>'
                    continue
            content += (
                "\n<tool_call>\n"
                + json.dumps({"name": fn.get("name", ""), "arguments": args}, ensure_ascii=False)
                + "\n</tool_call>"
            )
        usage = data.get("usage") or {}
        return Generation(
            text=content,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            finish_reason=choice.get("finish_reason"),
        )

    async def aclose(self) -> None:
        for client in self._clients:
            try:
                await client.aclose()
            except RuntimeError:  # the loop that owned it is gone
                pass
        self._clients = []
