"""OpenAI-compatible backend against a real local HTTP server: format, retries, timeouts, concurrency."""

from __future__ import annotations

import asyncio
import json

import pytest
from cv_agent import Agent, AgentConfig, BackendError, make_backend, run_episodes
from cv_agent.backends import OpenAIBackend, OpenAIBackendConfig
from cv_agent.images import decode_data_url
from cv_agent.testing import StubOpenAIServer
from cv_protocol import render_tool_call
from PIL import Image

from ._fakes import FakeSandbox

CALL = "<think>rotate</think>\n" + render_tool_call("rotate90", "rotate upright", 0)
ANSWER = "<think>ok</think>\n<answer>B</answer>"


def backend_for(server: StubOpenAIServer, **kw) -> OpenAIBackend:
    cfg = {"backoff_s": 0.01, "max_backoff_s": 0.05, **kw}
    return make_backend(f"openai:{server.base_url}#stub-model", **cfg)  # type: ignore[return-value]


async def test_episode_over_http_sends_images_and_tool_turns() -> None:
    with StubOpenAIServer([CALL, ANSWER]) as server:
        backend = backend_for(server)
        agent = Agent(backend, AgentConfig(max_pixels=32 * 28 * 28), sandbox=FakeSandbox())  # type: ignore[arg-type]
        traj = await agent.arun(
            Image.new("RGB", (300, 120), (200, 10, 10)), "What does it say?", item_id="h1"
        )
        await backend.aclose()
    assert traj.stop_reason == "answer" and traj.answer == "B" and traj.turns == 2
    assert traj.usage["prompt_tokens"] == 200 and traj.usage["estimated"] == 0
    first, second = server.requests
    assert first["model"] == "stub-model" and first["max_tokens"] == 2048
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    user = first["messages"][1]["content"]
    assert user[0]["type"] == "image_url" and user[1] == {"type": "text", "text": "What does it say?"}
    sent = decode_data_url(user[0]["image_url"]["url"])
    assert sent.size == traj.model_image_sizes[0] and sent.getpixel((5, 5)) == (200, 10, 10)
    # the tool turn goes back as a user turn wrapped exactly like the Qwen template renders tool turns
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "user"]
    tool = second["messages"][3]["content"]
    assert tool[0] == {"type": "text", "text": "<tool_response>\n"}
    assert (
        tool[1]["type"] == "image_url"
        and decode_data_url(tool[1]["image_url"]["url"]).size == traj.model_image_sizes[1]
    )
    assert tool[2]["text"].startswith("Execution succeeded. The result is image 1") and tool[2][
        "text"
    ].endswith("\n</tool_response>")
    assert second["messages"][2]["content"] == CALL


async def test_retries_on_503_and_429_then_succeeds() -> None:
    for status in (503, 429):
        with StubOpenAIServer([ANSWER], fail_first=2, fail_status=status) as server:
            backend = backend_for(server, max_retries=3)
            text = await backend.generate([{"role": "user", "content": "hi"}], [])
            await backend.aclose()
        assert text == ANSWER and server.n_received == 3 and backend.stats["retries"] == 2


async def test_gives_up_after_retries_and_agent_records_error() -> None:
    with StubOpenAIServer([ANSWER], fail_first=100, fail_status=503) as server:
        backend = backend_for(server, max_retries=2)
        traj = await Agent(backend, sandbox=FakeSandbox()).arun(Image.new("RGB", (64, 64)), "q")  # type: ignore[arg-type]
        await backend.aclose()
    assert traj.stop_reason == "error" and "after 3 attempts" in traj.error and "HTTP 503" in traj.error
    assert server.n_received == 3


async def test_http_500_from_a_server_that_never_answered_is_an_error_after_one_retry() -> None:
    with StubOpenAIServer([ANSWER], fail_first=100, fail_status=500) as server:
        backend = backend_for(server, max_retries=4)
        with pytest.raises(BackendError, match="after 2 attempts: HTTP 500"):
            await backend.generate([{"role": "user", "content": "hi"}], [])
        await backend.aclose()
    assert server.n_received == 2  # not 5: a 500 is rarely transient


BROKEN_CALL = '<think>rotate</think>\n<tool_call>\n{"name": "code_image_tool", "arguments": {"code": "x", }\n</tool_call>'


async def test_http_500_on_a_malformed_call_is_fed_back_as_a_parse_error() -> None:
    # transformers serve parses tool calls on the server and answers 500 when the model's call is broken:
    # the episode must go on, with the model told its call could not be read, and be scored.
    with StubOpenAIServer([BROKEN_CALL, CALL, ANSWER], parse_tool_calls=True) as server:
        backend = backend_for(server, max_retries=4)
        agent = Agent(backend, sandbox=FakeSandbox())  # type: ignore[arg-type]
        await backend.check()  # the server answered once: its 500s are about the reply, not the server
        traj = await agent.arun(Image.new("RGB", (64, 64)), "q")
        await backend.aclose()
    assert traj.stop_reason == "answer" and traj.answer == "B" and traj.turns == 3
    first = traj.tool_calls[0]
    assert (first.ok, first.error_kind) == (False, "unreadable") and "HTTP 500" in first.error
    assert traj.tool_calls[1].ok
    tool_msg = traj.messages[3]
    assert tool_msg["role"] == "tool" and tool_msg["content"][0]["text"].startswith(
        "Tool call error: the server"
    )
    # check + (first turn + 1 retry) + 2 good turns; never 5 retries
    assert server.n_received == 1 + 2 + 2 and backend.stats["unreadable"] == 1


async def test_timeout_is_not_retried_and_a_hung_server_fails_fast() -> None:
    with StubOpenAIServer([ANSWER], hang_first=100) as server:
        backend = backend_for(server, timeout_s=0.3, max_retries=4, unresponsive_after=2)
        for _ in range(2):
            with pytest.raises(BackendError, match="no reply .* within 0.3 s"):
                await backend.generate([{"role": "user", "content": "hi"}], [])
        with pytest.raises(BackendError, match="stopped responding"):
            await backend.generate([{"role": "user", "content": "hi"}], [])
        await backend.aclose()
    assert server.n_received == 2 and backend.stats["retries"] == 0


async def test_check_fails_up_front_in_one_line() -> None:
    dead = OpenAIBackend(OpenAIBackendConfig("http://127.0.0.1:9/v1", "m", max_retries=0))
    with pytest.raises(BackendError, match="model check failed for 'm' at http://127.0.0.1:9/v1") as e:
        await dead.check()
    assert "\n" not in str(e.value)
    await dead.aclose()
    with StubOpenAIServer([ANSWER], hang_first=1) as server:
        hung = backend_for(server, timeout_s=0.3)
        with pytest.raises(BackendError, match="no reply"):
            await hung.check()
        await hung.aclose()
    with StubOpenAIServer([ANSWER], errors=lambda body: (404, "The model `m` does not exist.")) as server:
        wrong = backend_for(server)
        with pytest.raises(BackendError, match="HTTP 404.*does not exist"):
            await wrong.check()
        await wrong.aclose()


async def test_inline_tools_block_and_request_mode() -> None:
    from cv_protocol import SYSTEM_PROMPT, TOOL_SCHEMA, system_with_tools

    msgs = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "hi"}]
    inline = OpenAIBackend(OpenAIBackendConfig("http://x/v1", "m"))
    body = inline.build_request(msgs, [], tools=[TOOL_SCHEMA])
    assert "tools" not in body and body["messages"][0]["content"] == system_with_tools(
        SYSTEM_PROMPT, [TOOL_SCHEMA]
    )
    assert msgs[0]["content"] == SYSTEM_PROMPT  # the caller's messages are not changed
    no_system = inline.build_request(msgs[1:], [], tools=[TOOL_SCHEMA])["messages"]
    assert no_system[0] == {"role": "system", "content": system_with_tools(None, [TOOL_SCHEMA])}
    request = OpenAIBackend(OpenAIBackendConfig("http://x/v1", "m", tool_prompt="request"))
    body = request.build_request(msgs, [], tools=[TOOL_SCHEMA])
    assert body["tools"] == [TOOL_SCHEMA] and body["messages"][0]["content"] == SYSTEM_PROMPT
    assert (
        "tools" not in inline.build_request(msgs, [], tools=None)
        and inline.build_request(msgs, [])["messages"][0]["content"] == SYSTEM_PROMPT
    )


async def test_client_errors_are_not_retried() -> None:
    with StubOpenAIServer([ANSWER]) as server:
        cfg = OpenAIBackendConfig(base_url=server.base_url.replace("/v1", "/nope"), model="m", max_retries=3)
        backend = OpenAIBackend(cfg)
        with pytest.raises(BackendError, match="HTTP 404"):
            await backend.generate([{"role": "user", "content": "hi"}], [])
        await backend.aclose()
    assert backend.stats["retries"] == 0


async def test_connection_refused_is_an_error_not_a_hang() -> None:
    backend = OpenAIBackend(OpenAIBackendConfig("http://127.0.0.1:9/v1", "m", max_retries=1, backoff_s=0.01))
    with pytest.raises(BackendError, match="after 2 attempts"):
        await backend.generate([{"role": "user", "content": "hi"}], [])
    await backend.aclose()


async def test_concurrency_limit_and_overlap() -> None:
    with StubOpenAIServer([ANSWER], latency_s=0.2) as server:
        backend = backend_for(server, max_concurrency=8)
        agent = Agent(backend, sandbox=FakeSandbox())  # type: ignore[arg-type]
        t0 = asyncio.get_running_loop().time()
        trajs = await run_episodes(
            agent, [(Image.new("RGB", (64, 64)), f"q{i}") for i in range(24)], progress=False
        )
        elapsed = asyncio.get_running_loop().time() - t0
        await backend.aclose()
    assert all(t.stop_reason == "answer" for t in trajs)
    assert server.max_in_flight == 8
    assert 0.55 < elapsed < 2.0  # 3 waves of 8 x 0.2 s


def test_structured_tool_calls_and_reasoning_are_rendered_back() -> None:
    data = {
        "choices": [
            {
                "message": {
                    "content": None,
                    "reasoning_content": "rotate first",
                    "tool_calls": [
                        {
                            "type": "function",
                            "function": {
                                "name": "code_image_tool",
                                "arguments": json.dumps({"code": "x", "image_index": 0}),
                            },
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    gen = OpenAIBackend._parse_response(data)
    assert (
        gen.text.startswith("<think>rotate first</think>")
        and '<tool_call>\n{"name": "code_image_tool"' in gen.text
    )


def test_spec_parsing_and_config_validation() -> None:
    # Spec syntax is cv_protocol.parse_model_spec's (tested there); the factory passes its fields on.
    backend = make_backend("openai:https://api.example.com/v1#gpt-4o")
    assert (backend.config.base_url, backend.config.model) == ("https://api.example.com/v1", "gpt-4o")
    for bad in ("openai:http://x/v1", "gpt4", "foo:bar", "hf:"):
        with pytest.raises(ValueError, match="bad model spec"):
            make_backend(bad)
    with pytest.raises(ValueError, match="max_concurrency"):
        OpenAIBackendConfig("http://x/v1", "m", max_concurrency=0)
    with pytest.raises(ValueError, match="image_format"):
        OpenAIBackendConfig("http://x/v1", "m", image_format="gif")
