"""The format reward, exactly as SPEC states it."""

import pytest
from cv_rewards import format_reward

TOOL = '<tool_call>{"name": "code_image_tool"}</tool_call>'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>a</think><answer>b</answer>", 1.0),
        ("  \n<think>a</think>\n<answer>b</answer>\n", 1.0),
        (f"<think>a</think>{TOOL}<tool_response>x</tool_response><think>b</think><answer>c</answer>", 1.0),
        ("<think>a</think><answer>b</answer><|im_end|>", 1.0),
        # tool responses are ignored, even when they contain tags
        ("<think>a</think><tool_response><answer>x</answer><think></tool_response><answer>b</answer>", 1.0),
        ("<answer>b</answer>", 0.0),  # no leading think
        ("text <think>a</think><answer>b</answer>", 0.0),
        ("<think>a<answer>b</answer>", 0.0),  # unbalanced think, answer inside it
        ("<think>a</think></think><answer>b</answer>", 0.0),
        ("<think><think>a</think></think><answer>b</answer>", 0.0),  # nested
        ("<think>a</think><answer>b</answer><answer>c</answer>", 0.0),  # two answers
        ("<think>a</think><answer>b</answer> trailing", 0.0),  # answer not at the end
        ("<think>a</think><answer>b</answer><think>c</think>", 0.0),
        ("<think>a <answer>x</answer></think><answer>b</answer>", 0.0),  # answer inside think
        ("<think>a</think><answer>b", 0.0),
        ("<think>a</think>", 0.0),
        ("", 0.0),
    ],
)
def test_format_reward(text: str, expected: float) -> None:
    assert format_reward(text) == expected


def test_format_reward_type_error() -> None:
    with pytest.raises(TypeError):
        format_reward(["<think>"])  # type: ignore[arg-type]
