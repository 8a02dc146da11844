"""A local OpenAI-compatible chat-completions server (stdlib asyncio, own thread) for tests and benchmarks."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

ReplyFn = Callable[[dict[str, Any]], str]
#: ``body -> (status, message)`` to fail a request, or ``None`` to answer it.
ErrorFn = Callable[[dict[str, Any]], "tuple[int, str] | None"]


class StubOpenAIServer:
    """Serves ``POST /v1/chat/completions`` with scripted replies after a fixed latency.

    Runs its own event loop in a daemon thread, so it never competes with the client's loop for turns.
    HTTP/1.1 keep-alive, ``Content-Length`` bodies only (what httpx sends).

    Args:
        replies: Replies chosen by the number of assistant messages in the request, or a function of the
            request body returning the reply text.
        latency_s: Delay before each response (simulated model time; ``asyncio.sleep``, so requests overlap).
        fail_first: Answer the first N requests with ``fail_status`` (tests of retries).
        fail_status: Status used for injected failures (429, 500, 503, ...).
        hang_first: Never answer the first N requests (until the client times out).
        hang_after: Answer N requests, then never answer again (a server that hangs mid-run).
        errors: ``body -> (status, message) | None``: fail chosen requests (e.g. HTTP 400 "context too
            long" for some items) and answer the others.
        parse_tool_calls: Behave like a server with a tool parser that fails on malformed calls
            (``transformers serve``): a reply whose tool call cannot be read is answered with a plain-text
            HTTP 500 instead of the reply.

    Example:
        >>> with StubOpenAIServer(["<answer>A</answer>"]) as server:  # doctest: +SKIP
        ...     spec = f"openai:{server.base_url}#stub"
    """

    def __init__(
        self,
        replies: Sequence[str] | ReplyFn = ("<answer>A</answer>",),
        *,
        latency_s: float = 0.0,
        fail_first: int = 0,
        fail_status: int = 503,
        hang_first: int = 0,
        hang_after: int | None = None,
        errors: ErrorFn | None = None,
        parse_tool_calls: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self.replies = replies
        self.latency_s = latency_s
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.hang_first = hang_first
        self.hang_after = hang_after
        self.errors = errors
        self.parse_tool_calls = parse_tool_calls
        self.host = host
        self.port = 0
        self.requests: list[dict[str, Any]] = []
        self.n_received = 0
        self.max_in_flight = 0
        self._in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.record_bodies = True

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def _reply(self, body: dict[str, Any]) -> str:
        if callable(self.replies):
            return self.replies(body)
        turn = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
        return self.replies[min(turn, len(self.replies) - 1)]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, v = h.decode("latin-1").split(":", 1)
                    headers[k.strip().lower()] = v.strip()
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                status, payload = await self._respond(method, path, raw)
                ctype = "application/json"
                if isinstance(payload, str):
                    data, ctype = payload.encode(), "text/plain; charset=utf-8"
                else:
                    data = json.dumps(payload).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.CancelledError):
            pass  # client went away or the server is stopping
        finally:
            writer.close()

    async def _respond(self, method: str, path: str, raw: bytes) -> tuple[int, dict[str, Any] | str]:
        if method != "POST" or path.rstrip("/") != "/v1/chat/completions":
            return 404, {"error": {"message": f"no route {method} {path}"}}
        n = self.n_received
        self.n_received += 1
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"error": {"message": "invalid JSON"}}
        if self.record_bodies:
            self.requests.append(body)
        if n < self.hang_first or (self.hang_after is not None and n >= self.hang_after):
            await asyncio.sleep(3600)
        if n < self.hang_first + self.fail_first:
            return self.fail_status, {"error": {"message": "injected failure"}}
        failure = self.errors(body) if self.errors is not None else None
        if failure is not None:
            return failure[0], {"error": {"message": failure[1], "type": "BadRequestError"}}
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            text = self._reply(body)
            if isinstance(body.get("max_tokens"), int):
                text = text[: 4 * body["max_tokens"]]  # ~4 characters a token, as the usage below counts
        finally:
            self._in_flight -= 1
        if self.parse_tool_calls and _malformed_call(text):
            return 500, "Internal Server Error"  # what an unhandled parser exception looks like
        return 200, {
            "id": f"cmpl-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "stub"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": 100,
                "completion_tokens": max(1, len(text) // 4),
                "total_tokens": 100 + max(1, len(text) // 4),
            },
        }

    def start(self) -> StubOpenAIServer:
        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, 0, backlog=1024)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()
            loop.run_forever()
            self._server.close()
            try:
                loop.run_until_complete(asyncio.wait_for(self._server.wait_closed(), 2))
            except (TimeoutError, asyncio.CancelledError):
                pass
            loop.close()

        self._thread = threading.Thread(target=serve, name="stub-openai-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("stub server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            loop = self._loop

            def shutdown() -> None:
                for task in asyncio.all_tasks(loop):
                    task.cancel()
                loop.stop()

            loop.call_soon_threadsafe(shutdown)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    def __enter__(self) -> StubOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _malformed_call(text: str) -> bool:
    from cv_protocol import ParseError, parse_tool_calls

    parsed = parse_tool_calls(text)
    return isinstance(parsed, ParseError) and parsed.kind != "no_call"


def main(argv: list[str] | None = None) -> int:
    """Run a stub server in this process until stdin closes (for benchmarks: a separate process, like a
    real ``vllm serve``). Prints ``PORT <n>`` once listening.

    Example:
        >>> main(["--latency", "0.5", "--replies-json", '["<answer>A</answer>"]'])  # doctest: +SKIP
    """
    import argparse
    import sys

    p = argparse.ArgumentParser(description="stub OpenAI-compatible chat server")
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--replies-json", default='["<answer>A</answer>"]')
    p.add_argument("--hang-after", type=int, default=None, help="stop answering after N requests")
    p.add_argument("--parse-tool-calls", action="store_true", help="HTTP 500 on malformed tool calls")
    args = p.parse_args(argv)
    server = StubOpenAIServer(
        json.loads(args.replies_json),
        latency_s=args.latency,
        hang_after=args.hang_after,
        parse_tool_calls=args.parse_tool_calls,
    )
    server.record_bodies = False
    server.start()
    print(f"PORT {server.port}", flush=True)
    sys.stdin.read()  # parent closes stdin (or dies) -> stop
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
