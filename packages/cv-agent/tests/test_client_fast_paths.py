"""Client-side fast paths of the OpenAI backend and the loop: spliced request bodies (byte-identical to
``json.dumps``), the asyncio network backend, shared resizes/encodes of one image across episodes."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from cv_agent import Agent, AgentConfig
from cv_agent import images as images_mod
from cv_agent.backends import OpenAIBackend, OpenAIBackendConfig
from cv_agent.backends import openai_compat as oc
from cv_agent.backends._messages import DataUrlCache, dumps_with_fragments
from cv_agent.images import data_url
from cv_agent.testing import StubOpenAIServer
from PIL import Image

from ._fakes import FakeSandbox

ANSWER = "<think>ok</think>\n<answer>B</answer>"


def _images() -> list[Image.Image]:
    return [
        Image.new("RGB", (40, 30), (200, 10, 10)),
        Image.linear_gradient("L").convert("RGB").resize((64, 48)),
        Image.new("RGB", (8, 8), (0, 0, 255)),
    ]


MESSAGES = [
    {"role": "system", "content": 'System: "quotes", back\\slash, tab\t, ünïcödé ✓, \x00 control'},
    {
        "role": "user",
        "content": [{"type": "image", "image_index": 0}, {"type": "text", "text": "Was ist das? 画像"}],
    },
    {"role": "assistant", "content": '<tool_call>\n{"name": "code_image_tool"}\n</tool_call>'},
    {
        "role": "tool",
        "content": [{"type": "image", "image_index": 1}, {"type": "text", "text": "ok \U0001f600"}],
    },
    {"role": "assistant", "content": "again"},
    # the same image twice, and an error-only tool turn
    {"role": "tool", "content": [{"type": "image", "image_index": 2}, {"type": "image", "image_index": 0}]},
    {"role": "tool", "content": [{"type": "text", "text": "Execution failed"}]},
]


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"image_format": "png", "tool_role": "tool"},
        {"top_p": 0.9, "seed": 7, "extra_body": {"top_k": 20, "stop": ["</answer>"], "note": "é"}},
    ],
)
def test_spliced_payload_is_byte_identical_to_json_dumps(kw: dict) -> None:
    backend = OpenAIBackend(OpenAIBackendConfig("http://localhost:1/v1", "model-ü", **kw))
    images = _images()
    for n in range(1, len(MESSAGES) + 1):
        for max_new, temp in ((None, None), (17, 0.7)):
            payload = backend._payload(MESSAGES[:n], images, max_new, temp)
            body = backend.build_request(MESSAGES[:n], images, max_new_tokens=max_new, temperature=temp)
            assert payload == json.dumps(body, ensure_ascii=False).encode("utf-8")
            assert json.loads(payload) == body
    # the data URLs are the plain encoder's
    body = backend.build_request(MESSAGES[:2], images)
    fmt = kw.get("image_format", "jpeg")
    assert body["messages"][1]["content"][0]["image_url"]["url"] == data_url(images[0], fmt, 95)


def test_placeholder_collision_falls_back_to_plain_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oc.secrets, "token_hex", lambda n: "fixed")
    backend = OpenAIBackend(OpenAIBackendConfig("http://localhost:1/v1", "m"))
    images = _images()
    msgs = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image_index": 0},
                {"type": "text", "text": "cv-agent-image-fixed-0"},
            ],
        }
    ]
    payload = backend._payload(msgs, images, None, None)
    assert payload == json.dumps(backend.build_request(msgs, images), ensure_ascii=False).encode("utf-8")


def test_dumps_with_fragments() -> None:
    body = {"a": ["P0", {"b": "P1"}], "c": "P0x", "d": 1.5, "e": None}
    frags = {"P0": b'"x\\"y"', "P1": b"[1, 2]"}
    out = dumps_with_fragments(body, frags)
    assert out == b'{"a": ["x\\"y", {"b": [1, 2]}], "c": "P0x", "d": 1.5, "e": null}'
    assert dumps_with_fragments(body, {}) == json.dumps(body).encode()
    with pytest.raises(ValueError):
        dumps_with_fragments({"a": "P0", "b": "P0"}, {"P0": b"1"})  # twice
    with pytest.raises(ValueError):
        dumps_with_fragments({"a": "Q"}, {"P0": b"1"})  # missing


def test_data_url_cache_encodes_each_image_once_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import cv_agent.backends._messages as msgs_mod

    calls = []
    real = msgs_mod.data_url

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(msgs_mod, "data_url", counting)
    cache = DataUrlCache("jpeg", 95)
    image = _images()[1]
    out: list[bytes] = []
    threads = [threading.Thread(target=lambda: out.append(cache.fragment(image))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(out)) == 1 and cache.cached(image)
    assert cache(image) == real(image, "jpeg", 95) and json.loads(out[0]) == cache(image)


async def test_shared_input_image_is_resized_once_by_concurrent_episodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(images_mod, "_THREAD_RESIZE_PIXELS", 0)  # every resize in a worker thread
    calls = []
    real = images_mod.resize_for_model

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(images_mod, "resize_for_model", counting)
    with StubOpenAIServer([ANSWER]) as server:
        backend = OpenAIBackend(OpenAIBackendConfig(server.base_url, "m"))
        agent = Agent(backend, AgentConfig(max_pixels=16 * 28 * 28), sandbox=FakeSandbox())  # type: ignore[arg-type]
        image = Image.new("RGB", (300, 200), (1, 2, 3))
        trajs = await asyncio.gather(*(agent.arun(image, f"q{i}") for i in range(16)))
        await backend.aclose()
    assert all(t.stop_reason == "answer" for t in trajs) and len(calls) == 1
    assert not images_mod._IN_FLIGHT
    urls = {r["messages"][1]["content"][0]["image_url"]["url"] for r in server.requests}
    assert len(urls) == 1


async def _one_shot_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers one request per connection, then closes it (like a server whose keep-alive timeout is 0)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")
    )
    await reader.readexactly(length)
    body = json.dumps({"choices": [{"message": {"content": ANSWER}, "finish_reason": "stop"}]}).encode()
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    await writer.drain()
    writer.close()


async def test_server_closing_idle_connections_reconnects_without_retries() -> None:
    server = await asyncio.start_server(_one_shot_server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    backend = OpenAIBackend(
        OpenAIBackendConfig(f"http://127.0.0.1:{port}/v1", "m", max_concurrency=1, max_retries=0)
    )
    try:
        assert await backend.generate([{"role": "user", "content": "hi"}], []) == ANSWER
        # each request finds its pooled connection closed by the server: the pool reconnects, no retry
        for _ in range(3):
            await asyncio.sleep(0.05)
            assert await backend.generate([{"role": "user", "content": "hi"}], []) == ANSWER
        assert backend.stats["retries"] == 0 and backend.stats["failures"] == 0
    finally:
        await backend.aclose()
        server.close()
