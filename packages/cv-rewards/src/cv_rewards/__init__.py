"""cv-rewards: answer matching, the format reward and CodeVision's dense process reward (stdlib and
cv-protocol only: the answer, the tool-response wrapping and the op vocabulary are :mod:`cv_protocol`'s).

Example:
    >>> from cv_rewards import OpRecord, RolloutRecord, ToolCallRecord, score_rollout
    >>> rec = RolloutRecord("<think>sideways</think><answer>STOP</answer>",
    ...                     [ToolCallRecord(True, [OpRecord("rotate_270")])], ["rotate_90"], None, "stop")
    >>> score_rollout(rec).components["must_use"]
    1.0
"""

from .answer import NUMERIC_REL_TOL, match_answer, normalize_text, parse_number
from .format import format_reward
from .judge import DEFAULT_JUDGE_PROMPTS, Judge, JudgeConfig, JudgeError, JudgeVerdict
from .process import (
    COMPONENTS,
    FORMAT_CHECKS,
    MATCHERS,
    NON_CREDIT_OPS,
    VARIANTS,
    ProcessRewardConfig,
    RewardBreakdown,
    box_iou,
    score_group,
    score_rollout,
)
from .records import OpRecord, RolloutRecord, ToolCallRecord
from .release import (
    RELEASE_ABS_TOL,
    release_answer_matches,
    release_extract_answer,
    release_format_reward,
    release_match_answer,
)
from .trl_adapter import TrlRewardFunction, make_trl_reward_funcs, records_from_trl, trl_reward_weights
from .verdict import TASK_TYPES, AnswerJudge, MatchResult

__all__ = [
    "COMPONENTS",
    "DEFAULT_JUDGE_PROMPTS",
    "FORMAT_CHECKS",
    "MATCHERS",
    "NON_CREDIT_OPS",
    "NUMERIC_REL_TOL",
    "RELEASE_ABS_TOL",
    "TASK_TYPES",
    "VARIANTS",
    "AnswerJudge",
    "Judge",
    "JudgeConfig",
    "JudgeError",
    "JudgeVerdict",
    "MatchResult",
    "OpRecord",
    "ProcessRewardConfig",
    "RewardBreakdown",
    "RolloutRecord",
    "ToolCallRecord",
    "TrlRewardFunction",
    "box_iou",
    "format_reward",
    "make_trl_reward_funcs",
    "match_answer",
    "normalize_text",
    "parse_number",
    "records_from_trl",
    "release_answer_matches",
    "release_extract_answer",
    "release_format_reward",
    "release_match_answer",
    "score_group",
    "score_rollout",
    "trl_reward_weights",
]
__version__ = "0.1.0"
