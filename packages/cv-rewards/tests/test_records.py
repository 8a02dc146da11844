"""Record validation and JSON round-trips."""

import json

import pytest
from cv_rewards import OpRecord, RolloutRecord, ToolCallRecord
from cv_rewards.testing import make_record


def test_round_trip_through_json() -> None:
    rec = make_record(
        "B",
        "B",
        [["rotate_270", ("crop", (1, 2, 30, 40))], (False, [])],
        transform=["crop", "rotate_90"],
        bbox=[0, 0, 50, 50],
        choices=["x", "y"],
        task_type="ocr",
        prompt_id="p1",
        question="q?",
    )
    again = RolloutRecord.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert again == rec
    assert again.tool_calls[0].ops[1].box == (1.0, 2.0, 30.0, 40.0)


def test_accepts_cv_agent_tool_call_dicts() -> None:
    call = ToolCallRecord.from_dict(
        {
            "ok": True,
            "ops": [{"name": "crop", "box": [0, 0, 1, 1], "box_input": [5, 5, 9, 9]}],
            "error": None,
            "code": "result = image.crop((0,0,1,1))",
        }
    )
    assert call.success and call.ops[0].box == (5.0, 5.0, 9.0, 9.0)


def test_answer_alias_for_gt() -> None:
    rec = RolloutRecord.from_dict({"completion": "", "answer": "7"})
    assert rec.gt_answer == "7" and rec.tool_calls == [] and rec.transform == []


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: OpRecord(""), "non-empty op name"),
        (lambda: OpRecord("crop", (0, 0, 1)), "four"),
        (lambda: RolloutRecord("x", [], ["crop"], [5, 0, 1, 1], "a"), "x2 >= x1"),
        (lambda: OpRecord("crop", (0, 0, float("nan"), 1)), "finite"),
        (lambda: OpRecord("contrast", effective="no"), "effective must be a bool"),  # type: ignore[arg-type]
        (lambda: ToolCallRecord("yes", []), "bool"),  # type: ignore[arg-type]
        (lambda: ToolCallRecord.from_dict({"ops": []}), "success"),
        (lambda: RolloutRecord("x", [], "rotate_90", None, "a"), "list of op names"),  # type: ignore[arg-type]
        (lambda: RolloutRecord("x", [], [], [0, 0, 1], "a"), "bbox"),
        (lambda: RolloutRecord("x", [], [], None, "a", correct=1), "True, False or None"),  # type: ignore[arg-type]
        (
            lambda: RolloutRecord.from_dict({"completion": "x", "gt_answer": "a", "extra": 1}),
            "unknown rollout record keys",
        ),
        (lambda: RolloutRecord.from_dict({"completion": "x"}), "lacks required keys"),
    ],
)
def test_validation_errors_say_what_to_fix(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_op_box_with_swapped_corners_is_ordered() -> None:
    # cv-agent maps crop boxes back to image 0 through flips, which swaps corners.
    assert OpRecord("crop", (90, 40, 10, 0)).box == (10.0, 0.0, 90.0, 40.0)


def test_effective_flag_round_trips_and_defaults_to_true() -> None:
    # The sandbox trace may mark an op that changed no pixel; files without the key stay as they were.
    assert OpRecord("contrast").to_dict() == {"name": "contrast", "box": None}
    off = OpRecord("contrast", effective=False)
    assert off.to_dict() == {"name": "contrast", "box": None, "effective": False}
    assert OpRecord.from_dict(off.to_dict()) == off
    assert OpRecord.from_dict({"name": "contrast", "effective": None}).effective is True
    call = ToolCallRecord.from_dict(
        {"ok": True, "ops": [{"name": "brightness", "params": {"factor": 1.0}, "effective": False}]}
    )
    assert call.ops[0].effective is False
