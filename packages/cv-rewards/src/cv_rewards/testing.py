"""Fakes for tests here and downstream: a local OpenAI-compatible judge server and a record builder."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cv_protocol import render_tool_call, wrap_tool_response

from .answer import normalize_text
from .records import OpRecord, RolloutRecord, ToolCallRecord

__all__ = ["FakeJudgeServer", "make_record"]

_GT_RE = re.compile(r"Ground-truth answer: (.*)\n")
_PRED_RE = re.compile(r"Model answer: (.*)\n")


def _lenient_reply(request: dict[str, Any]) -> str:
    """Default judge: CORRECT when either answer's normalised text contains the other's."""
    prompt = request["messages"][-1]["content"]
    gt_m, pred_m = _GT_RE.search(prompt), _PRED_RE.search(prompt)
    if not gt_m or not pred_m:
        return "INCORRECT"
    gt, pred = normalize_text(gt_m.group(1)), normalize_text(pred_m.group(1))
    return "CORRECT" if gt and pred and (gt in pred or pred in gt) else "INCORRECT"


class FakeJudgeServer:
    """A real HTTP server on ``127.0.0.1`` imitating ``POST /v1/chat/completions``.

    Args:
        reply: Reply text, or a callable from the request JSON to the reply text (default: CORRECT when one
            normalised answer contains the other).
        fail_first: Answer the first N requests with HTTP ``fail_status`` (to exercise retries).
        fail_status: Status code of the simulated failures.
        api_key: If set, requests without ``Authorization: Bearer <api_key>`` get HTTP 401.

    Attributes:
        requests: JSON bodies received (failed ones included), in order.
        base_url: ``http://127.0.0.1:<port>/v1``.

    Example:
        >>> from cv_rewards import Judge, JudgeConfig
        >>> with FakeJudgeServer(reply="CORRECT") as server:
        ...     judge = Judge(JudgeConfig(base_url=server.base_url, model="fake"))
        ...     judge.judge("two", "2").correct
        True
    """

    def __init__(
        self,
        reply: str | Callable[[dict[str, Any]], str] | None = None,
        *,
        fail_first: int = 0,
        fail_status: int = 503,
        api_key: str | None = None,
    ) -> None:
        self.reply = reply if reply is not None else _lenient_reply
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with server._lock:
                    server.requests.append(body)
                    index = len(server.requests)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    self._send(401, {"error": {"message": "bad api key"}})
                    return
                if index <= server.fail_first:
                    self._send(server.fail_status, {"error": {"message": "simulated failure"}})
                    return
                text = server.reply(body) if callable(server.reply) else server.reply
                self._send(
                    200,
                    {
                        "id": f"chatcmpl-{index}",
                        "object": "chat.completion",
                        "model": body.get("model", ""),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                    },
                )

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll interval keeps shutdown (and so every test using the server) fast.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> FakeJudgeServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeJudgeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_record(
    answer: str | None,
    gt: str,
    calls: list[list[str] | tuple[bool, list[str | tuple[str, tuple[float, float, float, float]]]]]
    | None = None,
    *,
    transform: list[str] | None = None,
    bbox: list[float] | None = None,
    think: bool = True,
    **fields: Any,
) -> RolloutRecord:
    """Build a well-formed :class:`RolloutRecord` tersely.

    ``calls`` items are op lists (a successful call) or ``(success, ops)``; an op is a name or
    ``("crop", box)``.

    Example:
        >>> r = make_record("7", "7", [["rotate_270"], (False, []), [("crop", (0, 0, 5, 5))]], transform=["rotate_90"])
        >>> [c.success for c in r.tool_calls], r.tool_calls[2].ops[0].box
        ([True, False, True], (0.0, 0.0, 5.0, 5.0))
    """
    records = []
    text = ""
    for call in calls or []:
        success, ops = (True, call) if isinstance(call, list) else call
        op_records = [OpRecord(o) if isinstance(o, str) else OpRecord(o[0], o[1]) for o in ops]
        records.append(ToolCallRecord(success, op_records, None if success else "simulated error"))
        text += ("<think>use a tool</think>" if think else "") + render_tool_call("result = image", "", 0)
        text += wrap_tool_response("ok" if success else "error")
    text += ("<think>done</think>" if think else "") + (
        f"<answer>{answer}</answer>" if answer is not None else ""
    )
    return RolloutRecord(
        completion=text,
        tool_calls=records,
        transform=list(transform or []),
        bbox=bbox,
        gt_answer=gt,
        **fields,
    )
