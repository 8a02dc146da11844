"""Scoring: rules first, the LLM judge only when they cannot decide, and who decided is recorded."""

from __future__ import annotations

from pathlib import Path

from cv_agent import ModelBackend
from cv_bench import EvalConfig, evaluate, load_results, score_answer
from cv_data import Item
from cv_rewards.testing import FakeJudgeServer
from PIL import Image


def _item(i: str, answer: str, **kw) -> Item:
    return Item(
        id=i, images=[Image.new("RGB", (64, 48), "white")], question="What is shown?", answer=answer, **kw
    )


class Says(ModelBackend):
    def __init__(self, text: str) -> None:
        self.text = text

    async def generate(self, messages, images, **kw) -> str:
        return f"<think>looking</think><answer>{self.text}</answer>"


def test_rules_decide_without_a_judge() -> None:
    assert score_answer("7", _item("a", "7.0")) == (True, "numeric", "pred=7 gt=7")
    ok, method, _ = score_answer("(B)", _item("b", "B", choices=["cat", "dog"]))
    assert ok and method == "choice"
    assert score_answer(None, _item("c", "x"))[:2] == (False, "none")
    # several acceptable answers (OCRBench): any one matches
    assert score_answer("colour", _item("d", "color", meta={"answers": ["color", "colour"]}))[0]


def test_judge_is_asked_only_when_rules_cannot_decide(tmp_path: Path) -> None:
    items = [_item("para", "stop sign"), _item("num", "7"), _item("exact", "stop sign")]
    replies = {"para": "it is a stop sign", "num": "8", "exact": "Stop sign"}
    with FakeJudgeServer() as server:
        out = evaluate(
            EvalConfig(
                model="reference",
                suite="items",
                data="unused",
                judge=f"openai:{server.base_url}#fake-judge",
                out=tmp_path,
                progress=False,
                trajectories="none",
            ),
            backend_factory=lambda item: Says(replies[item.id]),
            items=items,
        )
        n_requests = len(server.requests)
    by_id = {r.item_id: r for r in load_results(tmp_path)}
    assert (by_id["para"].correct, by_id["para"].match_method) == (True, "judge:fake-judge")
    assert (by_id["num"].correct, by_id["num"].match_method) == (False, "numeric")
    assert (by_id["exact"].correct, by_id["exact"].match_method) == (True, "text")
    assert n_requests == 1
    assert out.summary["match_methods"] == {"judge:fake-judge": 1, "numeric": 1, "text": 1}
