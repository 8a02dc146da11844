"""Model specs: one syntax (``openai:URL#MODEL``, ``hf:PATH``, ``vllm:PATH``), one-line errors."""

from __future__ import annotations

import pytest
from cv_protocol import ModelSpec, parse_model_spec


def test_specs_parse_and_print_back() -> None:
    for spec, parsed in [
        (
            "openai:https://api.example.com/v1#gpt-4o",
            ModelSpec("openai", base_url="https://api.example.com/v1", model="gpt-4o"),
        ),
        (
            "OpenAI:http://h:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct",
            ModelSpec("openai", "http://h:8000/v1", "Qwen/Qwen2.5-VL-7B-Instruct"),
        ),
        ("hf:/models/tiny", ModelSpec("hf", path="/models/tiny")),
        ("vllm:Qwen/Qwen3-VL-8B", ModelSpec("vllm", path="Qwen/Qwen3-VL-8B")),
    ]:
        assert parse_model_spec(spec) == parsed
        assert parse_model_spec(str(parsed)) == parsed
    assert parse_model_spec("openai:http://x/v1#m").fields() == {"base_url": "http://x/v1", "model": "m"}


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("openai:http://x/v1", "needs '#MODEL'"),
        ("openai:ftp://x#m", "expected openai:http"),
        ("openai:http://x/v1#", "expected openai:http"),
        ("gpt4", "use 'openai:URL#MODEL' or 'hf:PATH' or 'vllm:PATH'"),
        ("foo:bar", "unknown kind 'foo'"),
        ("hf:", "give a model path after 'hf:'"),
        ("http://localhost:8000/v1#qwen", "written 'openai:http://localhost:8000/v1#qwen'"),
        (None, "bad model spec None"),
    ],
)
def test_bad_specs_say_how_to_write_them(spec: object, match: str) -> None:
    with pytest.raises(ValueError, match=match) as e:
        parse_model_spec(spec)  # type: ignore[arg-type]
    assert "\n" not in str(e.value)


def test_callers_restrict_the_kinds() -> None:
    assert parse_model_spec("openai:http://j/v1#judge", kinds=("openai",)).model == "judge"
    with pytest.raises(ValueError, match="unknown kind 'hf'; use 'openai:URL#MODEL'$"):
        parse_model_spec("hf:/ckpt", kinds=("openai",))
    with pytest.raises(ValueError, match="kinds must be"):
        parse_model_spec("hf:/ckpt", kinds=("tgi",))
