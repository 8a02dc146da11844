"""The dense process reward: every term, both variants, the issue's edge cases, and invariants."""

import math

import pytest
from cv_protocol import corrective_ops
from cv_rewards import (
    COMPONENTS,
    NON_CREDIT_OPS,
    OpRecord,
    ProcessRewardConfig,
    RolloutRecord,
    ToolCallRecord,
    box_iou,
    score_group,
    score_rollout,
)
from cv_rewards.testing import make_record
from hypothesis import given, settings
from hypothesis import strategies as st

PAPER = ProcessRewardConfig()
REF = ProcessRewardConfig(variant="reference")
BOX = [0, 0, 100, 100]


def comps(rec: RolloutRecord, cfg: ProcessRewardConfig) -> dict[str, float]:
    b = score_rollout(rec, cfg)
    assert math.isclose(b.total, sum(b.components.values()), abs_tol=1e-12)
    return {k: round(v, 6) for k, v in b.components.items() if v != 0.0}


# ----------------------------------------------------------------------------- per-rollout table
# Each case: record, expected non-zero weighted components under the paper and the reference variant.
# Defaults: format 0.1, must-use 1.0, suggested 0.2, penalty 0.5, exact-path bonus 0.1, poor IoU 0.1.

CASES = {
    "no-required-tool item, no tools, correct": (
        make_record("7", "7"),
        {"accuracy": 1, "format": 0.1},
        {"accuracy": 1, "format": 0.1},
    ),
    "no-required-tool item, wrong, bad format": (
        make_record("8", "7", think=False),
        {},
        {},
    ),
    "no-required-tool item, spurious rotation": (
        make_record("7", "7", [["rotate_90"]]),
        {"accuracy": 1, "format": 0.1, "penalty_tool_use": -0.5},
        {"accuracy": 1, "format": 0.1, "penalty_tool_use": -0.5},
    ),
    "no-required-tool item, two spurious ops: paper 0/1, reference counts": (
        make_record("7", "7", [["flip_vertical", "rotate_180"]]),
        {"accuracy": 1, "format": 0.1, "penalty_tool_use": -0.5},
        {"accuracy": 1, "format": 0.1, "penalty_tool_use": -1.0},
    ),
    "rotate_90 item corrected by rotate_270: full credit and exact path": (
        make_record("7", "7", [["rotate_270"]], transform=["rotate_90"]),
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1},
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1},
    ),
    "rotate_90 item 'corrected' by rotate_90: no credit; not spurious, an orientation op was required": (
        make_record("8", "7", [["rotate_90"]], transform=["rotate_90"]),
        {"format": 0.1},
        {"format": 0.1},
    ),
    "rotate_270 item corrected by rotate_90": (
        make_record("7", "7", [["rotate_90"]], transform=["rotate_270"]),
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1},
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1},
    ),
    "rotate_180 via two flips earns nothing (op names are nominal), and is not spurious": (
        make_record("7", "7", [["flip_horizontal", "flip_vertical"]], transform=["rotate_180"]),
        {"accuracy": 1, "format": 0.1},
        {"accuracy": 1, "format": 0.1},
    ),
    "crop-only item, perfect crop": (
        make_record("7", "7", [[("crop", (0, 0, 100, 100))]], transform=["crop"], bbox=BOX),
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1},
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1},
    ),
    "crop-only item, half-overlapping crop: IoU/N credit": (
        make_record("7", "7", [[("crop", (50, 0, 150, 100))]], transform=["crop"], bbox=BOX),
        {"accuracy": 1, "format": 0.1, "must_use": 1 / 3, "exact_path": 0.1},
        {"accuracy": 1, "format": 0.1, "must_use": 1 / 3, "exact_path": 0.1},
    ),
    "crop-only item, refining crops earn the best IoU; exact path only in reference (sets, no repeats check)": (
        make_record(
            "7",
            "7",
            [[("crop", (50, 0, 150, 100))], [("crop", (0, 0, 100, 100))], [("crop", (0, 0, 50, 50))]],
            transform=["crop"],
            bbox=BOX,
        ),
        {"accuracy": 1, "format": 0.1, "must_use": 1, "penalty_turns": -0.5},
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1, "penalty_turns": -0.5},
    ),
    "crop-only item, correct answer from a poor crop (IoU 0.05)": (
        make_record("7", "7", [[("crop", (0, 0, 5, 100))]], transform=["crop"], bbox=BOX),
        {"accuracy": 1, "format": 0.1, "must_use": 0.05, "exact_path": 0.1, "penalty_reasoning": -0.5},
        # reference: accuracy scaled by the must-use credit (0.05 < 0.1), no separate penalty
        {"accuracy": 0.05, "format": 0.1, "must_use": 0.05, "exact_path": 0.1},
    ),
    "crop-only item, correct answer without cropping: reference scales accuracy to 0": (
        make_record("7", "7", transform=["crop"], bbox=BOX),
        {"accuracy": 1, "format": 0.1, "penalty_reasoning": -0.5},
        {"format": 0.1},
    ),
    "crop-only item, wrong answer without cropping: no poor-reasoning penalty": (
        make_record("8", "7", transform=["crop"], bbox=BOX),
        {"format": 0.1},
        {"format": 0.1},
    ),
    "crop-only item, a flip is inappropriate": (
        make_record(
            "7", "7", [["flip_horizontal", ("crop", (0, 0, 100, 100))]], transform=["crop"], bbox=BOX
        ),
        {"accuracy": 1, "format": 0.1, "must_use": 1, "penalty_tool_use": -0.5},
        {"accuracy": 1, "format": 0.1, "must_use": 1, "penalty_tool_use": -0.5},
    ),
    "crop + rotate item, both done: 1/N each": (
        make_record(
            "7",
            "7",
            [["rotate_270"], [("crop", (0, 0, 100, 100))]],
            transform=["crop", "rotate_90"],
            bbox=BOX,
        ),
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1},
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1},
    ),
    "crop + rotate item, crop first is still the exact path (boxes are in image-0 frame)": (
        make_record(
            "7", "7", [[("crop", (0, 0, 100, 100)), "rotate_270"]], transform=["crop", "rotate_90"], bbox=BOX
        ),
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1},
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1},
    ),
    "crop + rotate item, only the rotation": (
        make_record("8", "7", [["rotate_270"]], transform=["crop", "rotate_90"], bbox=BOX),
        {"format": 0.1, "must_use": 0.5},
        {"format": 0.1, "must_use": 0.5},
    ),
    "rotate then flip item: right ops in the wrong order; exact path only in reference (no order check)": (
        make_record(
            "7", "7", [["rotate_270"], ["flip_horizontal"]], transform=["rotate_90", "flip_horizontal"]
        ),
        {"accuracy": 1, "format": 0.1, "must_use": 1},
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1},
    ),
    "rotate then flip item, right order": (
        make_record(
            "7", "7", [["flip_horizontal"], ["rotate_270"]], transform=["rotate_90", "flip_horizontal"]
        ),
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1},
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1},
    ),
    "errors count as turns; they break the exact path in the paper only": (
        make_record("7", "7", [(False, []), (False, []), ["rotate_270"]], transform=["rotate_90"]),
        {"accuracy": 1, "format": 0.1, "must_use": 1, "penalty_turns": -0.5},
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1, "penalty_turns": -0.5},
    ),
    "a failed call's traced ops: nothing in the paper; the reference counts them (the release parses code)": (
        make_record("7", "7", [(False, ["rotate_270"]), (False, ["rotate_90"])], transform=["rotate_90"]),
        {"accuracy": 1, "format": 0.1},
        {"accuracy": 1, "format": 0.1, "must_use": 1},
    ),
    "one error then the fix is within N + 1 turns": (
        make_record("7", "7", [(False, []), ["rotate_270"]], transform=["rotate_90"]),
        {"accuracy": 1, "format": 0.1, "must_use": 1},
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1},
    ),
    "five turns: paper 0/1, reference linear over max(2, N)": (
        make_record("7", "7", [(False, [])] * 4 + [["rotate_270"]], transform=["rotate_90"]),
        {"accuracy": 1, "format": 0.1, "must_use": 1, "penalty_turns": -0.5},
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1, "penalty_turns": -1.5},
    ),
    "no-required-tool item, two optional calls: paper over N+1=1, reference under max(2,0)": (
        make_record("7", "7", [["contrast"], ["sharpen"]]),
        {"accuracy": 1, "format": 0.1, "penalty_turns": -0.5},
        {"accuracy": 1, "format": 0.1, "emergent": 0.2},
    ),
    "optional op on a correct rollout: flat emergent bonus in reference only (paper needs the group)": (
        make_record("7", "7", [["grayscale"]]),
        {"accuracy": 1, "format": 0.1},
        {"accuracy": 1, "format": 0.1, "emergent": 0.2},
    ),
    "optional op on a wrong rollout: no emergent bonus": (
        make_record("8", "7", [["grayscale"]]),
        {"format": 0.1},
        {"format": 0.1},
    ),
    "an extra optional op breaks the exact path in the paper only": (
        make_record("7", "7", [["rotate_270", "contrast"]], transform=["rotate_90"]),
        {"accuracy": 1, "format": 0.1, "must_use": 1},
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1, "emergent": 0.2},
    ),
    "a repeated correct op earns once; it breaks the exact path in the paper only, and is never spurious": (
        make_record("7", "7", [["rotate_270"], ["rotate_270"]], transform=["rotate_90"]),
        {"accuracy": 1, "format": 0.1, "must_use": 1},
        {"accuracy": 1, "format": 0.1, "must_use": 1, "exact_path": 0.1},
    ),
    "format no-ops earn no optional-tool credit in either variant": (
        make_record("7", "7", [["convert", "color_convert", "paste", "pad", "copy"]]),
        {"accuracy": 1, "format": 0.1},
        {"accuracy": 1, "format": 0.1},
    ),
    "a format no-op beside a real optional op: the real one earns": (
        make_record("7", "7", [["convert", "sharpen"]]),
        {"accuracy": 1, "format": 0.1},
        {"accuracy": 1, "format": 0.1, "emergent": 0.2},
    ),
    "correct flag given overrides matching": (
        make_record("anything", "7", correct=True),
        {"accuracy": 1, "format": 0.1},
        {"accuracy": 1, "format": 0.1},
    ),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("variant", ["paper", "reference"])
def test_rollout_table(name: str, variant: str) -> None:
    rec, paper, ref = CASES[name]
    expected = paper if variant == "paper" else ref
    got = comps(rec, PAPER if variant == "paper" else REF)
    assert got == {k: round(float(v), 6) for k, v in expected.items()}


def test_ineffective_optional_op_earns_no_credit_in_the_paper_but_does_in_the_reference() -> None:
    # enhance(1.0): the trace marks it effective=False; the release reads "brightness" in the code and pays.
    def rec(effective: bool, pid: str = "") -> RolloutRecord:
        call = ToolCallRecord(True, [OpRecord("brightness", effective=effective)])
        return RolloutRecord("<think>a</think><answer>7</answer>", [call], [], None, "7", prompt_id=pid)

    assert score_rollout(rec(False), REF).components["emergent"] == 0.2
    assert score_rollout(rec(True), REF).components["emergent"] == 0.2
    assert score_rollout(rec(False), PAPER).details["used_optional"] == 0.0
    assert score_rollout(rec(True), PAPER).details["used_optional"] == 1.0
    # In a paper group the ineffective op puts its rollout among those that used no optional op.
    plain = [make_record("8", "7", prompt_id="p") for _ in range(3)]
    out = score_group([rec(True, "p"), rec(False, "p"), *plain])
    assert [b.components["emergent"] for b in out] == [pytest.approx(0.2 * 0.75), 0, 0, 0, 0]


def test_non_credit_ops_are_the_documented_format_no_ops() -> None:
    assert {"convert", "color_convert", "copy", "paste", "pad"} == NON_CREDIT_OPS
    # grayscale and resize change what the image shows; the release counts them too (tool_use_judge.py:448-457)
    for op in ("grayscale", "resize", "threshold", "contrast"):
        assert score_rollout(make_record("7", "7", [[op]]), REF).components["emergent"] == 0.2


def test_details_and_match_method() -> None:
    b = score_rollout(
        make_record("7", "7", [(False, []), [("crop", (0, 0, 50, 100))]], transform=["crop"], bbox=BOX)
    )
    assert b.correct and b.match_method == "numeric"
    assert b.details["tool_turns"] == 2 and b.details["failed_calls"] == 1
    assert b.details["best_iou"] == 0.5 and b.details["n_required"] == 1 and b.details["format"] == 1.0
    assert set(b.components) == set(COMPONENTS)
    assert set(b.to_dict()) == {"total", "components", "correct", "match_method", "match_detail", "details"}


def test_weights_scale_components() -> None:
    cfg = ProcessRewardConfig(
        format_weight=1.0, must_use_weight=2.0, penalty_weight=1.0, exact_path_bonus=0.5
    )
    got = comps(
        make_record("7", "7", [["rotate_270"], ["rotate_90"], ["rotate_90"]], transform=["rotate_90"]), cfg
    )
    assert got == {"accuracy": 1, "format": 1, "must_use": 2, "penalty_turns": -1}


def test_crop_item_without_bbox_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="set RolloutRecord.bbox"):
        score_rollout(make_record("7", "7", transform=["crop"]))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"variant": "verl"},
        {"format_weight": -1},
        {"poor_iou": 0},
        {"poor_iou": 1.5},
        {"poor_iou": "x"},
        {"penalty_weight": "x"},
        {"matcher": "exact"},
        {"format_check": "strict"},
        {"necessity_weight": -0.1, "variant": "reference"},
        {"necessity_weight": 0.2},  # the release's term: only with variant="reference"
    ],
)
def test_config_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="ProcessRewardConfig"):
        ProcessRewardConfig(**kwargs)


def test_defaults_are_the_papers() -> None:
    c = ProcessRewardConfig()
    assert (c.variant, c.format_weight, c.must_use_weight, c.suggested_weight, c.penalty_weight) == (
        "paper",
        0.1,
        1.0,
        0.2,
        0.5,
    )


# --------------------------------------------------------------------------------- group term


def group(spec: list[tuple[bool, bool]]) -> list[RolloutRecord]:
    """(correct, used_optional) per rollout."""
    return [
        make_record("7" if ok else "8", "7", [["contrast"]] if opt else [], prompt_id="p") for ok, opt in spec
    ]


@pytest.mark.parametrize(
    ("spec", "r_nec"),
    [
        # tool rollouts 3/4 correct, plain 1/4: necessity 0.5 for the 3 correct tool rollouts
        ([(True, True)] * 3 + [(False, True)] + [(True, False)] + [(False, False)] * 3, 0.5),
        # plain rollouts succeeded twice: no evidence that the tool is necessary
        ([(True, True)] * 4 + [(True, False)] * 2 + [(False, False)] * 2, 0.0),
        # plain rollouts all fail, tool rollouts all succeed: full necessity
        ([(True, True)] * 4 + [(False, False)] * 4, 1.0),
        # tools no better than without
        ([(True, True), (False, True), (True, False), (False, False)], 0.0),
        # no rollout skipped the optional op: no comparison, no bonus
        ([(True, True)] * 6 + [(False, True)] * 2, 0.0),
        # nobody used an optional op
        ([(True, False)] * 4 + [(False, False)] * 4, 0.0),
    ],
)
def test_paper_necessity_term(spec: list[tuple[bool, bool]], r_nec: float) -> None:
    out = score_group(group(spec))
    for (ok, opt), b in zip(spec, out, strict=True):
        expected = 0.2 * r_nec if (ok and opt) else 0.0
        assert b.components["emergent"] == pytest.approx(expected)
        assert b.details["r_nec"] == pytest.approx(r_nec)


def test_reference_group_term_is_flat() -> None:
    spec = [(True, True)] * 4 + [(True, False)] * 4  # paper would give 0 here (plain succeeded 4 times)
    out = score_group(group(spec), REF)
    assert [b.components["emergent"] for b in out] == [0.2] * 4 + [0.0] * 4
    assert [b.components["emergent"] for b in score_group(group(spec))] == [0.0] * 8


def test_group_equals_rollout_scores_apart_from_the_group_term() -> None:
    recs = group([(True, True), (False, False)])
    for rec, g in zip(recs, score_group(recs), strict=True):
        alone = score_rollout(rec)
        assert {k: v for k, v in g.components.items() if k != "emergent"} == {
            k: v for k, v in alone.components.items() if k != "emergent"
        }


def test_group_rejects_mixed_prompts_and_accepts_empty() -> None:
    recs = group([(True, True), (True, True)])
    recs[1].prompt_id = "other"
    with pytest.raises(ValueError, match="several prompts"):
        score_group(recs)
    assert score_group([]) == []


# ------------------------------------------------------------------------------------ properties

coord = st.floats(-1000, 1000, allow_nan=False, allow_infinity=False)


@st.composite
def boxes(draw, c=coord):
    x1, x2 = sorted((draw(c), draw(c)))
    y1, y2 = sorted((draw(c), draw(c)))
    return (x1, y1, x2, y2)


@given(boxes(), boxes())
def test_iou_bounded_and_symmetric(a, b) -> None:
    v = box_iou(a, b)
    assert 0.0 <= v <= 1.0
    assert v == pytest.approx(box_iou(b, a), abs=1e-12)


@given(boxes())
def test_iou_identity(a) -> None:
    area = (a[2] - a[0]) * (a[3] - a[1])
    assert box_iou(a, a) == (pytest.approx(1.0) if area > 0 else 0.0)


@given(boxes(st.integers(-1000, 1000)), st.integers(-500, 500), st.integers(-500, 500))
def test_iou_translation_invariant(a, dx: int, dy: int) -> None:
    # Integer pixel boxes: float boxes thinner than the rounding error of a shift are not comparable.
    b = (a[0] + 10, a[1], a[2] + 10, a[3])
    shift = lambda box: (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)  # noqa: E731
    assert box_iou(shift(a), shift(b)) == pytest.approx(box_iou(a, b), abs=1e-6)


OPS = st.sampled_from(
    ["rotate_90", "rotate_180", "rotate_270", "flip_horizontal", "flip_vertical", "contrast", "crop"]
)


@st.composite
def rollouts(draw):
    transform = draw(
        st.lists(
            st.sampled_from(
                ["rotate_90", "rotate_180", "rotate_270", "flip_horizontal", "flip_vertical", "crop"]
            ),
            max_size=3,
            unique=True,
        )
    )
    calls = []
    for _ in range(draw(st.integers(0, 5))):
        ops = [(o, draw(boxes())) if o == "crop" else o for o in draw(st.lists(OPS, max_size=3))]
        calls.append((draw(st.booleans()), ops))
    return make_record(
        draw(st.sampled_from(["7", "8", None])),
        "7",
        calls,
        transform=transform,
        bbox=[0, 0, 50, 50],
        think=draw(st.booleans()),
    )


@settings(max_examples=150)
@given(rollouts(), st.sampled_from(["paper", "reference"]))
def test_breakdown_invariants(rec: RolloutRecord, variant: str) -> None:
    cfg = ProcessRewardConfig(variant=variant)
    b = score_rollout(rec, cfg)
    c = b.components
    assert b.total == pytest.approx(sum(c.values()))
    if variant == "paper":
        assert c["accuracy"] in (0.0, 1.0) and c["accuracy"] == float(b.correct)
    else:  # the release scales accuracy by a must-use credit below 0.1 on crop items
        assert c["accuracy"] == pytest.approx(float(b.correct) * b.details["accuracy_scale"])
        assert 0.0 <= c["accuracy"] <= 1.0 and c["penalty_reasoning"] == 0.0
    assert c["format"] in (0.0, 0.1)
    assert 0.0 <= c["must_use"] <= 1.0 + 1e-12
    assert c["exact_path"] in (0.0, 0.1)
    assert all(c[k] <= 0.0 for k in ("penalty_turns", "penalty_reasoning", "penalty_tool_use"))
    if variant == "paper":
        assert all(c[k] in (0.0, -0.5) for k in ("penalty_turns", "penalty_reasoning", "penalty_tool_use"))
    if not corrective_ops(rec.transform):
        assert c["must_use"] == 0.0 and c["exact_path"] == 0.0
    if c["exact_path"] and variant == "paper":
        assert not any(not call.success for call in rec.tool_calls) and c["must_use"] > 0
