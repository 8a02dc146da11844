"""The tool-use collapse watch: counts low tool-call steps, warns once per collapse, stops only when asked."""

from __future__ import annotations

import logging

import pytest
from cv_train.callbacks import TOOL_CALL_RATE, ToolUseWatch, tool_collapse_callback
from cv_train.config import RecipeError, tiny_rl_recipe


def test_watch_needs_patience_consecutive_low_steps() -> None:
    watch = ToolUseWatch(threshold=0.1, patience=3)
    rates = [0.5, 0.0, 0.0, 0.3, 0.0, 0.05, 0.0, 0.0, 0.0]
    messages = [watch.update(step, rate) for step, rate in enumerate(rates, start=1)]
    # Steps 2-3 are low but step 4 recovers; steps 5-7 make the first collapse, reported once.
    assert [i + 1 for i, m in enumerate(messages) if m] == [7]
    assert "steps 5-7" in messages[6] and watch.collapsed
    assert watch.update(10, 0.9) is None and not watch.collapsed


def test_watch_off_and_bad_settings() -> None:
    off = ToolUseWatch(patience=0)
    assert all(off.update(s, 0.0) is None for s in range(50))
    with pytest.raises(ValueError, match="threshold"):
        ToolUseWatch(threshold=1.5)
    with pytest.raises(RecipeError, match="tool_collapse_patience"):
        tiny_rl_recipe(tool_collapse_patience=-1)


@pytest.mark.parametrize("stop", [False, True])
def test_callback_warns_and_stops_only_when_asked(stop: bool, caplog: pytest.LogCaptureFixture) -> None:
    from transformers import TrainerControl, TrainerState

    cb = tool_collapse_callback(threshold=0.05, patience=2, stop=stop)
    state, control = TrainerState(), TrainerControl()
    with caplog.at_level(logging.WARNING, logger="cv_train.callbacks"):
        for step, rate in enumerate([0.6, 0.0, 0.0], start=1):
            state.global_step = step
            cb.on_log(None, state, control, logs={TOOL_CALL_RATE: rate, "loss": 0.1})
            assert control.should_training_stop is (stop and step == 3)
        cb.on_log(None, state, control, logs={"loss": 0.1})  # a log without the metric changes nothing
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        "tool-use collapse: the tool-call rate stayed below 0.05 for 2 logged steps (steps 2-3, last 0)"
    ]
    assert cb.message is not None and control.should_training_stop is stop
