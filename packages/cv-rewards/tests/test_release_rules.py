"""The release's answer extraction, rule matching and format check, case by case.

Expected values were worked out by hand from the release @ e098588: ``RW`` = ``recipe/codevision/reward.py``,
``UV`` = ``verl/workers/reward_manager/uvtr.py``. Where ours differs, the case says so.
"""

from __future__ import annotations

import pytest
from cv_protocol import extract_answer
from cv_rewards import (
    ProcessRewardConfig,
    format_reward,
    match_answer,
    release_answer_matches,
    release_extract_answer,
    release_format_reward,
    release_match_answer,
    score_rollout,
)
from cv_rewards.judge import Judge, JudgeConfig
from cv_rewards.testing import FakeJudgeServer, make_record

TOOL = '<tool_call>{"name": "code_image_tool"}</tool_call>'


@pytest.mark.parametrize(
    ("text", "expected", "cite"),
    [
        ("<think>a</think><answer> B </answer>", "B", "RW 37-39"),
        ("<answer>first</answer><answer>second</answer>", "second", "RW 39: the last block"),
        ("<think>a</think><answer> 7 ", "7", "RW 41-43: after an unclosed <answer>"),
        ("<think>a</think>\nfinal: 12", "final: 12", "RW 45-46: the last line"),
        (
            "<think>a</think><tool_response><answer>X</answer></tool_response>done 5",
            "<think>a</think>done 5",
            "RW 36, 46",
        ),
        # An unclosed tool response is not removed (RW 36 needs the closing tag); ours drops it.
        ("<think>a</think><tool_response><answer>X</answer>", "X", "RW 36-39"),
        ("<think>a</think>\nThe answer is C<|im_end|>", "The answer is C", "UV 118: special tokens skipped"),
        ("", None, "RW 33-34"),
        ("  \n ", None, "RW 45-46: no line"),
        ("\n".join(["l"] * 499 + ["last"]), None, "RW 46: 500 lines is too many"),
        ("\n".join(["l"] * 498 + ["last"]), "last", "RW 46: 499 lines"),
    ],
)
def test_release_extract_answer(text: str, expected: str | None, cite: str) -> None:
    assert release_extract_answer(text) == expected, cite


def test_extraction_differs_from_ours_where_documented() -> None:
    no_block = "<think>a</think>\nfinal: 12"
    assert extract_answer(no_block) is None and release_extract_answer(no_block) == "final: 12"


@pytest.mark.parametrize(
    ("pred", "gt", "expected", "cite"),
    [
        ("B", "B", True, "RW 80-82: equal strings (not floats)"),
        ("b", "B", True, "RW 53-57, 87: letter read from the upper-cased prediction"),
        ("A or B", "B", True, "RW 57: the last standalone letter"),
        ("B or A", "B", False, "RW 57"),
        ("(C) dog", "C", True, "RW 55"),
        ("I think it's D.", "C", False, "RW 55"),
        ("E", "A", False, "RW 55-58: no A-D letter"),
        ("Answer: a", "a", True, "RW 53: ground truth 'a' is a choice question too"),
        ("42", "42.0", True, "RW 78: equal as floats"),
        (" 12 ", "12", True, "RW 78: float() ignores spaces"),
        ("1e3", "1000", True, "RW 78"),
        ("42.00001", "42", True, "RW 90: within 1e-4"),
        ("42.001", "42", False, "RW 90"),
        ("The total is 1,234", "1234", False, "RW 63-65: reads '234'"),
        ("0.75", "3/4", True, "RW 90: the ground truth may be a fraction"),
        ("3/4", "0.75", False, "RW 63-65: a predicted fraction reads as its last number"),
        ("x = -3.5", "-3.5", True, "RW 63-65, 87"),
        ("7 apples and 8 pears", "8", True, "RW 65: the last number"),
        ("7 apples and 8 pears", "7", False, "RW 65"),
        ("Paris", "Paris", True, "RW 81"),
        ("Paris", "paris", False, "RW 81: case matters for text"),
        ("", "", True, "RW 80-82: empty strings are equal"),
        ("B", " B ", False, "RW 53: ' B ' is not a choice letter, and 'B' holds no number"),
    ],
)
def test_release_answer_matches(pred: str, gt: str, expected: bool, cite: str) -> None:
    assert release_answer_matches(pred, gt) is expected, cite
    result = release_match_answer(pred, gt)
    assert result.correct is expected and result.method == "release"


def test_matching_differs_from_ours_where_documented() -> None:
    assert match_answer("1,234", "1234").correct and not release_answer_matches("1,234", "1234")
    assert match_answer("paris", "Paris").correct and not release_answer_matches("paris", "Paris")


@pytest.mark.parametrize(
    ("text", "expected", "ours", "cite"),
    [
        ("<think>a</think><answer>b</answer>", 1.0, 1.0, "UV 83"),
        ("<think>a</think><answer>b</answer>\n", 1.0, 1.0, "UV 73: trailing whitespace"),
        (
            f"<think>a</think>{TOOL}<tool_response>x</tool_response><think>b</think><answer>c</answer>",
            1.0,
            1.0,
            "UV 61",
        ),
        (
            "<think>a</think><tool_response><answer>x</answer></tool_response><answer>b</answer>",
            1.0,
            1.0,
            "UV 61",
        ),
        ("<think>a</think><answer>b</answer><|im_end|>", 1.0, 1.0, "UV 118: special tokens skipped"),
        ("<answer>b</answer>", 0.0, 0.0, "UV 63"),
        ("<think>a</think>", 0.0, 0.0, "UV 70"),
        ("<think>a</think><answer>b</answer><answer>c</answer>", 0.0, 0.0, "UV 70"),
        ("<think>a</think><answer>b</answer>.", 0.0, 0.0, "UV 73"),
        ("<think>x</think><think><answer>b</answer>", 0.0, 0.0, "UV 67: 2 opens, 1 close"),
        ("<think>x<answer>b</answer></think>", 0.0, 0.0, "UV 73: does not end with the answer"),
        # Counting, not nesting: the release accepts these, ours does not.
        ("<think><think>a</think></think><answer>b</answer>", 1.0, 0.0, "UV 65-67"),
        ("<think>a</think></think><think><answer>b</answer>", 1.0, 0.0, "UV 65-67, 77-82"),
        (
            "<think>q</think><think>r <answer></think>b</answer>",
            0.0,
            0.0,
            "UV 80-82: answer opens in a think",
        ),
    ],
)
def test_release_format_reward(text: str, expected: float, ours: float, cite: str) -> None:
    assert release_format_reward(text) == expected, cite
    assert format_reward(text) == ours


def test_config_selects_the_release_rules() -> None:
    # No <answer> block: the release reads the last line ("42") and calls the format 0.
    rec = make_record(None, "42")
    rec.completion += "\nSo the answer is 42"
    ours = score_rollout(rec, ProcessRewardConfig(variant="reference"))
    rel = score_rollout(
        rec, ProcessRewardConfig(variant="reference", matcher="release", format_check="release")
    )
    assert (ours.correct, ours.match_method) == (False, "none")
    assert (rel.correct, rel.match_method, rel.details["format"]) == (True, "release", 0.0)
    # Nested think tags: the release's format check counts tags and passes them.
    nested = make_record("7", "7")
    nested.completion = "<think><think>a</think></think><answer>7</answer>"
    assert score_rollout(nested, ProcessRewardConfig(format_check="release")).components["format"] == 0.1
    assert score_rollout(nested).components["format"] == 0.0


def test_release_matcher_asks_the_judge_only_when_its_rules_reject() -> None:
    with FakeJudgeServer(reply="CORRECT") as server:
        judge = Judge(JudgeConfig(base_url=server.base_url, model="fake"))
        cfg = ProcessRewardConfig(variant="reference", matcher="release")
        accepted = score_rollout(make_record("42", "42"), cfg, judge=judge)
        rejected = score_rollout(make_record("the city of Paris", "paris"), cfg, judge=judge)
        silent = make_record(None, "paris")
        silent.completion = ""
        none = score_rollout(silent, cfg, judge=judge)
        assert accepted.match_method == "release" and accepted.correct
        assert rejected.match_method == "judge:fake" and rejected.correct
        assert none.match_method == "none" and not none.correct  # RW 102-103: no answer, no judge
        assert len(server.requests) == 1
