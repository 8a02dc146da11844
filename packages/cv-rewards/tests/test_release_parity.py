"""``variant="reference"`` gives the public release's reward, term by term, given the same facts.

Every expected value below was worked out by hand from the release's code (github
ByteDance-BandAI/CodeVision @ e098588), never by calling cv-rewards; the line each case turns on is cited
beside it. File names are short for:

- ``AL`` = ``verl/experimental/agent_loop/agent_loop.py`` (``_post_aggregate_tool_rewards``, 979-1510)
- ``TAL`` = ``verl/experimental/agent_loop/tool_agent_loop.py`` (bookkeeping, 236-376)
- ``TUJ`` = ``verl/utils/reward_score/tool_use_judge.py`` (op detection)

Weights are the release's recipe (``recipe/codevision/qwen3_vl.sh`` lines 74-81): alpha 1.0, beta 0.0,
gamma 0.5, format 0.1, emerge 0.2; the total is (AL 1294-1306)

    R_total = R_acc + 0.1 * R_fmt + 1.0 * R_mandatory + 0.0 * r_nec + R_exact + R_emerge
              - 0.5 * (C_usage + R_spurious)

The facts are given, not derived from code text: the ops of each call (our trace's names), crop boxes in
input-image-0 pixels, the number of tool calls, correctness (``correct=``) and the format value (a
well-formed rollout or one without think tags). A rollout spec is ``(calls, correct, fmt)``; a call is an
op list (a successful call) or ``(False, ops)`` (a failed one); an op is a name or ``("crop", box)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from cv_rewards import ProcessRewardConfig, RewardBreakdown, make_trl_reward_funcs, score_group, score_rollout
from cv_rewards.testing import make_record

RELEASE = ProcessRewardConfig(variant="reference")  # the defaults are the release's recipe weights
BOX = [0, 0, 100, 100]  # the answer region of every crop item below
# Crop boxes and their IoU with BOX (hand-computed: intersection / union).
FULL = ("crop", (0, 0, 100, 100))  # 1
HALF = ("crop", (0, 0, 50, 100))  # 5000 / 10000 = 0.5
THIRD = ("crop", (50, 0, 150, 100))  # 5000 / (10000 + 10000 - 5000) = 1/3
SLIVER = ("crop", (0, 0, 5, 100))  # 500 / 10000 = 0.05
THIN = ("crop", (0, 0, 8, 100))  # 800 / 10000 = 0.08
TENTH = ("crop", (0, 0, 10, 100))  # 1000 / 10000 = 0.1
QUARTER = ("crop", (0, 0, 50, 50))  # 2500 / 10000 = 0.25
MISS = ("crop", (200, 200, 300, 300))  # 0


@dataclass
class Expect:
    """The release's terms for one rollout (AL 1036-1047 names them)."""

    R_acc: float
    R_mandatory: float
    R_fmt: float
    C_usage: float
    R_spurious: float
    R_exact: float
    R_emerge: float
    R_total: float
    r_nec: float = 0.0


@dataclass
class Case:
    name: str
    cite: str
    transform: list[str]
    rollout: tuple[list[Any], bool, bool]
    expect: Expect
    bbox: list[float] | None = field(default=None)


def E(acc, mand, fmt, usage, spur, exact, emerge, total, r_nec=0.0) -> Expect:  # noqa: N802
    return Expect(acc, mand, fmt, usage, spur, exact, emerge, total, r_nec)


def record(transform: list[str], spec: tuple[list[Any], bool, bool], bbox: list[float] | None, pid: str = ""):
    calls, correct, fmt = spec
    return make_record(
        "x", "x", calls, transform=transform, bbox=bbox, think=fmt, correct=correct, prompt_id=pid
    )


def release_terms(b: RewardBreakdown, cfg: ProcessRewardConfig) -> dict[str, float]:
    """Our breakdown in the release's terms (unweighted, as the release logs them)."""
    return {
        "R_acc": b.components["accuracy"],
        "R_mandatory": b.details["must_use_raw"],
        "R_fmt": b.details["format"],
        "C_usage": b.details["p_turns"],
        "R_spurious": b.details["p_tool_use"],
        "R_exact": b.components["exact_path"],
        "R_emerge": cfg.suggested_weight * b.details["emergent_raw"],
        "R_total": b.total,
        "r_nec": b.details.get("r_nec", 0.0),
    }


def check(b: RewardBreakdown, expect: Expect, cfg: ProcessRewardConfig = RELEASE) -> None:
    got = release_terms(b, cfg)
    want = vars(expect)
    for term, value in want.items():
        assert got[term] == pytest.approx(value, abs=1e-9), f"{term}: got {got[term]}, release gives {value}"
    # Our weighted components are the release's terms times its weights, and they sum to its total.
    c = b.components
    assert c["format"] == pytest.approx(cfg.format_weight * expect.R_fmt)
    assert c["must_use"] == pytest.approx(cfg.must_use_weight * expect.R_mandatory)
    assert c["penalty_turns"] == pytest.approx(-cfg.penalty_weight * expect.C_usage)
    assert c["penalty_tool_use"] == pytest.approx(-cfg.penalty_weight * expect.R_spurious)
    assert c["emergent"] == pytest.approx(expect.R_emerge + cfg.necessity_weight * expect.r_nec)
    assert c["penalty_reasoning"] == 0.0
    assert sum(c.values()) == pytest.approx(b.total)


# ----------------------------------------------------------------------------------- single rollouts

SINGLE = [
    # --- no required op (N = 0): AL 1390 gives R_mandatory 0, AL 1426 no exact bonus (empty set)
    Case("no tools, correct", "AL 1295", [], ([], True, True), E(1, 0, 1, 0, 0, 0, 0, 1.1)),
    Case("no tools, wrong, bad format", "AL 1284", [], ([], False, False), E(0, 0, 0, 0, 0, 0, 0, 0.0)),
    Case(
        "one spurious rotation",
        "AL 1417-1418",
        [],
        ([["rotate_90"]], True, True),
        E(1, 0, 1, 0, 1, 0, 0, 0.6),
    ),
    Case(
        "two distinct spurious ops in one call",
        "AL 1418 (set)",
        [],
        ([["flip_vertical", "rotate_180"]], True, True),
        E(1, 0, 1, 0, 2, 0, 0, 0.1),
    ),
    Case(
        "the same spurious op twice counts once; 2 calls = max(2, 0), no usage penalty",
        "AL 1409-1410, 1418",
        [],
        ([["rotate_90"], ["rotate_90"]], True, True),
        E(1, 0, 1, 0, 1, 0, 0, 0.6),
    ),
    Case(
        "three spurious ops over three calls, wrong",
        "AL 1410 (3 - 2), 1418",
        [],
        ([["rotate_90"], ["rotate_180"], ["flip_horizontal"]], False, True),
        E(0, 0, 1, 1, 3, 0, 0, -1.9),
    ),
    Case(
        "two optional calls: flat emergent bonus",
        "AL 1431-1432",
        [],
        ([["contrast"], ["sharpen"]], True, True),
        E(1, 0, 1, 0, 0, 0, 0.2, 1.3),
    ),
    Case(
        "optional op, wrong answer: no bonus",
        "AL 1432",
        [],
        ([["grayscale"]], False, True),
        E(0, 0, 1, 0, 0, 0, 0, 0.1),
    ),
    Case(
        "convert('RGB') is no op to the release (only convert('L') is)",
        "TUJ 447-451",
        [],
        ([["convert"]], True, True),
        E(1, 0, 1, 0, 0, 0, 0, 1.1),
    ),
    Case(
        "pasting and padding are no ops to the release",
        "TUJ 390-519",
        [],
        ([["paste", "pad"]], True, True),
        E(1, 0, 1, 0, 0, 0, 0, 1.1),
    ),
    Case(
        "four optional calls, no format",
        "AL 1410 (4 - 2), 1432",
        [],
        ([["contrast"]] * 4, True, False),
        E(1, 0, 0, 2, 0, 0, 0.2, 0.2),
    ),
    Case(
        "a non-right-angle rotation is outside the core ops",
        "AL 1431 (facts: our trace names it 'rotate')",
        [],
        ([["rotate"]], True, True),
        E(1, 0, 1, 0, 0, 0, 0.2, 1.3),
    ),
    # --- one orientation op required (N = 1)
    Case(
        "rotate_90 item fixed by rotate_270",
        "AL 1374-1377, 1395, 1426",
        ["rotate_90"],
        ([["rotate_270"]], True, True),
        E(1, 1, 1, 0, 0, 0.1, 0, 2.2),
    ),
    Case(
        "rotate_90 item 'fixed' by rotate_90: no credit, not spurious (an orientation op is required)",
        "AL 1395, 1417",
        ["rotate_90"],
        ([["rotate_90"]], False, True),
        E(0, 0, 1, 0, 0, 0, 0, 0.1),
    ),
    Case(
        "rotate_270 item fixed by rotate_90",
        "AL 1374-1377",
        ["rotate_270"],
        ([["rotate_90"]], True, True),
        E(1, 1, 1, 0, 0, 0.1, 0, 2.2),
    ),
    Case(
        "rotate_180 by two flips: names are nominal",
        "AL 1395, 1417, 1426",
        ["rotate_180"],
        ([["flip_horizontal", "flip_vertical"]], True, True),
        E(1, 0, 1, 0, 0, 0, 0, 1.1),
    ),
    Case(
        "an extra optional op keeps the exact bonus and earns the emergent one",
        "AL 1424-1426, 1431",
        ["rotate_90"],
        ([["rotate_270", "contrast"]], True, True),
        E(1, 1, 1, 0, 0, 0.1, 0.2, 2.4),
    ),
    Case(
        "the fix repeated: sets, so still exact",
        "AL 1267, 1426",
        ["rotate_90"],
        ([["rotate_270"], ["rotate_270"]], True, True),
        E(1, 1, 1, 0, 0, 0.1, 0, 2.2),
    ),
    Case(
        "the fix plus the wrong rotation: no exact bonus, not spurious",
        "AL 1417, 1426",
        ["rotate_90"],
        ([["rotate_270"], ["rotate_90"]], True, True),
        E(1, 1, 1, 0, 0, 0, 0, 2.1),
    ),
    Case(
        "two failed calls then the fix: usage 3 - 2, still exact",
        "AL 1410, 1426; TAL 372-376",
        ["rotate_90"],
        ([(False, []), (False, []), ["rotate_270"]], True, True),
        E(1, 1, 1, 1, 0, 0.1, 0, 1.7),
    ),
    Case(
        "the fix inside a failed call still counts (ops parsed before execution)",
        "TAL 339-364",
        ["rotate_90"],
        ([(False, ["rotate_270"])], True, True),
        E(1, 1, 1, 0, 0, 0.1, 0, 2.2),
    ),
    Case(
        "four failed calls then the fix: usage 5 - 2",
        "AL 1409-1410",
        ["rotate_90"],
        ([(False, [])] * 4 + [["rotate_270"]], True, True),
        E(1, 1, 1, 3, 0, 0.1, 0, 0.7),
    ),
    Case(
        "flip item fixed, no format",
        "AL 1380-1381",
        ["flip_horizontal"],
        ([["flip_horizontal"]], True, False),
        E(1, 1, 0, 0, 0, 0.1, 0, 2.1),
    ),
    Case(
        "flip item, no tools",
        "AL 1395, 1426",
        ["flip_vertical"],
        ([], True, True),
        E(1, 0, 1, 0, 0, 0, 0, 1.1),
    ),
    Case(
        "fix and optional op, wrong answer: no emergent bonus",
        "AL 1432",
        ["rotate_90"],
        ([["rotate_270", "grayscale"]], False, True),
        E(0, 1, 1, 0, 0, 0.1, 0, 1.2),
    ),
    Case(
        "a transform listed twice is one required op (a set)",
        "AL 1366, 1371-1377",
        ["rotate_90", "rotate_90"],
        ([["rotate_270"]], True, True),
        E(1, 1, 1, 0, 0, 0.1, 0, 2.2),
    ),
    # --- two orientation ops required (N = 2)
    Case(
        "rotate + flip item, ops in the 'wrong' order: no order check",
        "AL 1426",
        ["rotate_90", "flip_horizontal"],
        ([["rotate_270"], ["flip_horizontal"]], True, True),
        E(1, 1, 1, 0, 0, 0.1, 0, 2.2),
    ),
    Case(
        "rotate + flip item, only the flip",
        "AL 1395",
        ["rotate_90", "flip_horizontal"],
        ([["flip_horizontal"]], True, True),
        E(1, 0.5, 1, 0, 0, 0, 0, 1.6),
    ),
    Case(
        "rotate + flip item, both and an optional call: usage 3 - 2",
        "AL 1410, 1426, 1432",
        ["rotate_90", "flip_horizontal"],
        ([["flip_horizontal"], ["rotate_270"], ["sharpen"]], True, True),
        E(1, 1, 1, 1, 0, 0.1, 0.2, 1.9),
    ),
    # --- crop required: R_mandatory gets best IoU / N, accuracy scaled below 0.1
    Case(
        "perfect crop", "AL 1397-1400", ["crop"], ([[FULL]], True, True), E(1, 1, 1, 0, 0, 0.1, 0, 2.2), BOX
    ),
    Case(
        "crop with IoU 1/3",
        "AL 1400",
        ["crop"],
        ([[THIRD]], True, True),
        E(1, 1 / 3, 1, 0, 0, 0.1, 0, 1.1 + 1 / 3 + 0.1),
        BOX,
    ),
    Case(
        "correct from a poor crop (IoU 0.05): accuracy scaled to 0.05, still exact",
        "AL 1285-1286, 1426",
        ["crop"],
        ([[SLIVER]], True, True),
        E(0.05, 0.05, 1, 0, 0, 0.1, 0, 0.3),
        BOX,
    ),
    Case(
        "correct without cropping: accuracy scaled to 0",
        "AL 1285-1286",
        ["crop"],
        ([], True, True),
        E(0, 0, 1, 0, 0, 0, 0, 0.1),
        BOX,
    ),
    Case("wrong without cropping", "AL 1286", ["crop"], ([], False, True), E(0, 0, 1, 0, 0, 0, 0, 0.1), BOX),
    Case(
        "a crop that misses (IoU 0) still earns the exact bonus",
        "AL 1286, 1426",
        ["crop"],
        ([[MISS]], True, True),
        E(0, 0, 1, 0, 0, 0.1, 0, 0.2),
        BOX,
    ),
    Case(
        "IoU exactly 0.1 is not scaled (strict <)",
        "AL 1285",
        ["crop"],
        ([[TENTH]], True, True),
        E(1, 0.1, 1, 0, 0, 0.1, 0, 1.3),
        BOX,
    ),
    Case(
        "three refining crops: best IoU, usage 3 - 2",
        "AL 1452-1454, 1410",
        ["crop"],
        ([[THIRD], [FULL], [QUARTER]], True, True),
        E(1, 1, 1, 1, 0, 0.1, 0, 1.7),
        BOX,
    ),
    Case(
        "a flip on a crop item is spurious and breaks the exact set",
        "AL 1417-1418, 1426",
        ["crop"],
        ([["flip_horizontal", FULL]], True, True),
        E(1, 1, 1, 0, 1, 0, 0, 1.6),
        BOX,
    ),
    Case(
        "a crop in a failed call counts",
        "TAL 350-362",
        ["crop"],
        ([(False, [HALF])], True, True),
        E(1, 0.5, 1, 0, 0, 0.1, 0, 1.7),
        BOX,
    ),
    Case(
        "poor crop plus an optional op: emergent pays on correctness, not on scaled accuracy",
        "AL 1285-1292",
        ["crop"],
        ([[THIN, "contrast"]], True, True),
        E(0.08, 0.08, 1, 0, 0, 0.1, 0.2, 0.56),
        BOX,
    ),
    Case(
        "a crop whose box could not be mapped: crop used, IoU 0",
        "AL 1397, 1451-1455",
        ["crop"],
        ([["crop"]], True, True),
        E(0, 0, 1, 0, 0, 0.1, 0, 0.2),
        BOX,
    ),
    # --- crop and rotation required (N = 2)
    Case(
        "crop + rotate, both",
        "AL 1395, 1400",
        ["crop", "rotate_90"],
        ([["rotate_270"], [FULL]], True, True),
        E(1, 1, 1, 0, 0, 0.1, 0, 2.2),
        BOX,
    ),
    Case(
        "crop + rotate, only the rotation, wrong",
        "AL 1395",
        ["crop", "rotate_90"],
        ([["rotate_270"]], False, True),
        E(0, 0.5, 1, 0, 0, 0, 0, 0.6),
        BOX,
    ),
    Case(
        "crop + rotate, only the rotation, correct: credit 0.5 >= 0.1, no scaling",
        "AL 1285",
        ["crop", "rotate_90"],
        ([["rotate_270"]], True, True),
        E(1, 0.5, 1, 0, 0, 0, 0, 1.6),
        BOX,
    ),
    Case(
        "crop + rotate, only a poor crop: credit 0.025 scales accuracy",
        "AL 1285-1286, 1400",
        ["crop", "rotate_90"],
        ([[SLIVER]], True, True),
        E(0.025, 0.025, 1, 0, 0, 0, 0, 0.15),
        BOX,
    ),
    Case(
        "crop + rotate in one call, crop first",
        "AL 1426",
        ["crop", "rotate_90"],
        ([[FULL, "rotate_270"]], True, True),
        E(1, 1, 1, 0, 0, 0.1, 0, 2.2),
        BOX,
    ),
    # --- three required (N = 3)
    Case(
        "crop + rotate + flip, half crop",
        "AL 1395, 1400, 1409",
        ["crop", "rotate_90", "flip_vertical"],
        ([["flip_vertical"], ["rotate_270"], [HALF]], True, True),
        E(1, 2 / 3 + 0.5 / 3, 1, 0, 0, 0.1, 0, 1.1 + 2 / 3 + 0.5 / 3 + 0.1),
        BOX,
    ),
    Case(
        "crop + rotate + flip, two failures: usage 5 - 3",
        "AL 1409-1410",
        ["crop", "rotate_90", "flip_vertical"],
        ([["flip_vertical"], ["rotate_270"], (False, []), (False, []), [FULL]], True, False),
        E(1, 1, 0, 2, 0, 0.1, 0, 1.1),
        BOX,
    ),
    # --- non-geometric transform names stay in the release's required set
    Case(
        "rotate + jpeg: jpeg counts in N but no op meets it",
        "AL 1382-1383, 1395, 1424",
        ["rotate_90", "jpeg"],
        ([["rotate_270"]], True, True),
        E(1, 0.5, 1, 0, 0, 0.1, 0, 1.7),
    ),
    Case(
        "noise only: N = 1, three optional calls, usage 3 - 2",
        "AL 1383, 1409-1410",
        ["noise"],
        ([["contrast"]] * 3, True, True),
        E(1, 0, 1, 1, 0, 0, 0.2, 0.8),
    ),
]


@pytest.mark.parametrize("case", SINGLE, ids=[c.name for c in SINGLE])
def test_single_rollout_matches_the_release(case: Case) -> None:
    rec = record(case.transform, case.rollout, case.bbox)
    check(score_rollout(rec, RELEASE), case.expect)
    # Without necessity weight, scoring alone or in a group is the same.
    check(score_group([rec], RELEASE)[0], case.expect)


# ------------------------------------------------------------------------------------- groups of 8


@dataclass
class Group:
    name: str
    cite: str
    transform: list[str]
    rollouts: list[tuple[tuple[list[Any], bool, bool], Expect]]
    bbox: list[float] | None = None
    config: ProcessRewardConfig = field(default_factory=lambda: RELEASE)


GROUPS = [
    Group(
        # The release still computes its necessity term (AL 1239-1250: with a tool call 4/6 correct, without
        # 1/2, so 1/6 for correct tool users), but beta 0.0 (qwen3_vl.sh:76) keeps it out of the total.
        "rotate_180 item, recipe weights",
        "AL 1004-1029 (per rollout within a uid group)",
        ["rotate_180"],
        [
            (([["rotate_180"]], True, True), E(1, 1, 1, 0, 0, 0.1, 0, 2.2, r_nec=1 / 6)),
            (([["rotate_180", "contrast"]], True, True), E(1, 1, 1, 0, 0, 0.1, 0.2, 2.4, r_nec=1 / 6)),
            (([], True, True), E(1, 0, 1, 0, 0, 0, 0, 1.1)),
            (([], False, True), E(0, 0, 1, 0, 0, 0, 0, 0.1)),
            (([["rotate_90"]], False, True), E(0, 0, 1, 0, 0, 0, 0, 0.1)),  # AL 1417: orientation required
            (
                ([(False, ["rotate_180"]), ["rotate_180"]], True, False),
                E(1, 1, 0, 0, 0, 0.1, 0, 2.1, r_nec=1 / 6),
            ),
            (
                ([["flip_horizontal"], ["flip_vertical"], ["rotate_180"]], True, True),
                E(1, 1, 1, 1, 0, 0, 0, 1.6, r_nec=1 / 6),  # AL 1410 usage 3 - 2; 1426 extra core ops
            ),
            (([["sharpen"]], False, True), E(0, 0, 1, 0, 0, 0, 0, 0.1)),
        ],
    ),
    Group(
        # Necessity: with a tool call 6/7 correct, without 1/1: max(0, 6/7 - 1) = 0 (AL 1250).
        "crop + flip item, recipe weights",
        "AL 1386-1402, 1285-1286",
        ["crop", "flip_horizontal"],
        [
            (([["flip_horizontal"], [FULL]], True, True), E(1, 1, 1, 0, 0, 0.1, 0, 2.2)),
            (([[HALF]], True, True), E(1, 0.25, 1, 0, 0, 0, 0, 1.35)),
            (([], True, True), E(0, 0, 1, 0, 0, 0, 0, 0.1)),
            (([["flip_horizontal"]], False, True), E(0, 0.5, 1, 0, 0, 0, 0, 0.6)),
            (([[SLIVER, "flip_horizontal"]], True, True), E(1, 0.525, 1, 0, 0, 0.1, 0, 1.725)),
            (([[MISS]], True, True), E(0, 0, 1, 0, 0, 0, 0, 0.1)),
            (([["flip_horizontal", FULL, "equalize"]], True, False), E(1, 1, 0, 0, 0, 0.1, 0.2, 2.3)),
            (([["flip_vertical"], ["flip_horizontal"], [FULL]], True, True), E(1, 1, 1, 1, 0, 0, 0, 1.6)),
        ],
        bbox=BOX,
    ),
    Group(
        # Necessity: two tool-free successes (AL 1278 needs < 2) and acc 5/6 < 1: 0.
        "no required op: flat emergent bonus whatever the group does",
        "AL 1428-1432",
        [],
        [
            (([["contrast"]], True, True), E(1, 0, 1, 0, 0, 0, 0.2, 1.3)),
            (([["contrast"]], True, True), E(1, 0, 1, 0, 0, 0, 0.2, 1.3)),
            (([], True, True), E(1, 0, 1, 0, 0, 0, 0, 1.1)),
            (([], True, True), E(1, 0, 1, 0, 0, 0, 0, 1.1)),
            (([["convert"]], True, True), E(1, 0, 1, 0, 0, 0, 0, 1.1)),  # TUJ 447-451
            (([["rotate_90", "contrast"]], True, True), E(1, 0, 1, 0, 1, 0, 0.2, 0.8)),
            (([["contrast"]], False, True), E(0, 0, 1, 0, 0, 0, 0, 0.1)),
            (([["blur"], ["blur"], ["blur"]], True, True), E(1, 0, 1, 1, 0, 0, 0.2, 0.8)),
        ],
    ),
    Group(
        # AL 1239-1250: with tool 3/4 correct, without 1/4: r_nec = 0.5; AL 1276-1280: correct tool users,
        # 1 tool-free success < 2. Beta 0.2 is the code's default when the recipe does not set it (AL 1058).
        "necessity term with beta 0.2",
        "AL 1236-1255, 1276-1280, 1299",
        [],
        [
            (([["contrast"]], True, True), E(1, 0, 1, 0, 0, 0, 0.2, 1.4, r_nec=0.5)),
            (([["contrast"]], True, True), E(1, 0, 1, 0, 0, 0, 0.2, 1.4, r_nec=0.5)),
            (([["contrast"]], True, True), E(1, 0, 1, 0, 0, 0, 0.2, 1.4, r_nec=0.5)),
            (([["sharpen"]], False, True), E(0, 0, 1, 0, 0, 0, 0, 0.1)),
            (([], True, True), E(1, 0, 1, 0, 0, 0, 0, 1.1)),
            (([], False, True), E(0, 0, 1, 0, 0, 0, 0, 0.1)),
            (([], False, True), E(0, 0, 1, 0, 0, 0, 0, 0.1)),
            (([], False, True), E(0, 0, 1, 0, 0, 0, 0, 0.1)),
        ],
        config=ProcessRewardConfig(variant="reference", necessity_weight=0.2),
    ),
    Group(
        # AL 989: correctness for the group stats is the unscaled base score (rollout 6 counts as a tool-free
        # success); with tool 3/4, without 1/4 -> 0.5; AL 1287 zeroes it where accuracy was scaled.
        "necessity term on a crop item, beta 0.2",
        "AL 989, 1239-1250, 1285-1287",
        ["crop"],
        [
            (([[FULL]], True, True), E(1, 1, 1, 0, 0, 0.1, 0, 2.3, r_nec=0.5)),
            (([[SLIVER]], True, True), E(0.05, 0.05, 1, 0, 0, 0.1, 0, 0.3)),
            (([[HALF]], False, True), E(0, 0.5, 1, 0, 0, 0.1, 0, 0.7)),
            (([], False, True), E(0, 0, 1, 0, 0, 0, 0, 0.1)),
            (([], False, True), E(0, 0, 1, 0, 0, 0, 0, 0.1)),
            (([], True, True), E(0, 0, 1, 0, 0, 0, 0, 0.1)),
            (([], False, True), E(0, 0, 1, 0, 0, 0, 0, 0.1)),
            (([[FULL]], True, True), E(1, 1, 1, 0, 0, 0.1, 0, 2.3, r_nec=0.5)),
        ],
        bbox=BOX,
        config=ProcessRewardConfig(variant="reference", necessity_weight=0.2),
    ),
]


def _group_records(g: Group):
    return [record(g.transform, spec, g.bbox, pid=g.name) for spec, _ in g.rollouts]


@pytest.mark.parametrize("g", GROUPS, ids=[g.name for g in GROUPS])
def test_group_of_8_matches_the_release(g: Group) -> None:
    assert len(g.rollouts) == 8
    out = score_group(_group_records(g), g.config)
    for i, (b, (_, expect)) in enumerate(zip(out, g.rollouts, strict=True)):
        try:
            check(b, expect, g.config)
        except AssertionError as exc:
            raise AssertionError(f"rollout {i + 1}: {exc}") from exc


def test_trl_adapter_gives_the_release_totals() -> None:
    g = GROUPS[0]
    funcs = make_trl_reward_funcs(
        RELEASE, records_from=lambda **kw: _group_records(g), num_generations=8, components=["exact_path"]
    )
    completions = ["c"] * 8
    totals = funcs[0](prompts=["p"] * 8, completions=completions)
    assert totals == pytest.approx([e.R_total for _, e in g.rollouts])
    assert funcs[1](prompts=["p"] * 8, completions=completions) == pytest.approx(
        [e.R_exact for _, e in g.rollouts]
    )


def test_the_table_is_as_large_as_promised() -> None:
    assert len(SINGLE) + 8 * len(GROUPS) >= 50
