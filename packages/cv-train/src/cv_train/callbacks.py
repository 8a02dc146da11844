"""Training callbacks: the tool-use collapse watch.

RL runs of tool-using VLMs often lose tool use: the policy learns to answer without calling the tool and,
once no rollout of a group calls it, nothing pushes it back (every rollout earns the same reward, so the
advantages are zero). The reward function logs the per-step tool-call rate (``tools/tool_call_rate``); the
watch reads it and warns, and optionally stops the run, when it stays low.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

#: The logged metric the watch reads: share of the step's rollouts that called the tool at least once.
TOOL_CALL_RATE = "tools/tool_call_rate"


@dataclass
class ToolUseWatch:
    """Counts consecutive logged steps whose tool-call rate is below ``threshold``.

    Attributes:
        threshold: A step whose rate is below this counts as collapsed.
        patience: Consecutive collapsed steps that make a collapse (``0`` disables the watch).

    Example:
        >>> watch = ToolUseWatch(threshold=0.1, patience=2)
        >>> [watch.update(step, rate) for step, rate in [(1, 0.5), (2, 0.0), (3, 0.05), (4, 0.0)]]
        [None, None, 'tool-use collapse: the tool-call rate stayed below 0.1 for 2 logged steps (steps 2-3, last 0.05)', None]
    """

    threshold: float = 0.05
    patience: int = 20

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold={self.threshold}: set a tool-call rate in [0, 1]")
        if self.patience < 0:
            raise ValueError(f"patience={self.patience}: set a number of steps >= 0 (0 turns the watch off)")
        self.low_steps = 0
        self.first_low_step: int | None = None
        self.collapsed = False

    def update(self, step: int, rate: float) -> str | None:
        """Feed one logged step; returns the warning the first time the low streak reaches ``patience``."""
        if self.patience == 0:
            return None
        if rate >= self.threshold:
            self.low_steps, self.first_low_step, self.collapsed = 0, None, False
            return None
        self.low_steps += 1
        if self.first_low_step is None:
            self.first_low_step = step
        if self.low_steps == self.patience:
            self.collapsed = True
            return (
                f"tool-use collapse: the tool-call rate stayed below {self.threshold:g} for {self.patience} "
                f"logged steps (steps {self.first_low_step}-{step}, last {rate:g})"
            )
        return None


def tool_collapse_callback(threshold: float = 0.05, patience: int = 20, stop: bool = False) -> Any:
    """A ``transformers.TrainerCallback`` that runs a :class:`ToolUseWatch` on every log.

    Args:
        threshold: Tool-call rate below which a step counts as collapsed.
        patience: Consecutive collapsed logged steps before it warns (``0``: never).
        stop: Also ask the trainer to stop (it saves as usual; ``trainer.cv_tool_collapse`` records it).

    Example:
        >>> cb = tool_collapse_callback(threshold=0.1, patience=3, stop=True)
        >>> cb.watch.patience
        3
    """
    from transformers import TrainerCallback

    class ToolCollapseCallback(TrainerCallback):
        def __init__(self) -> None:
            self.watch = ToolUseWatch(threshold=threshold, patience=patience)
            self.message: str | None = None

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any
        ):
            if not logs or TOOL_CALL_RATE not in logs:
                return control
            message = self.watch.update(int(state.global_step), float(logs[TOOL_CALL_RATE]))
            if message is not None:
                self.message = message
                advice = "stopping (tool_collapse_stop)" if stop else "set tool_collapse_stop: true to stop"
                logger.warning(
                    "%s; the policy answers without the tool and nothing pushes it back. Lower the learning "
                    "rate, raise num_generations or start from a checkpoint that calls the tool; %s.",
                    message,
                    advice,
                )
                if stop:
                    control.should_training_stop = True
            return control

    return ToolCollapseCallback()
