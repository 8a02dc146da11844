"""The LLM judge against a real local HTTP server imitating /v1/chat/completions."""

import json

import pytest
from cv_rewards import Judge, JudgeConfig, JudgeError, match_answer, score_rollout
from cv_rewards.judge import parse_verdict
from cv_rewards.testing import FakeJudgeServer, make_record


@pytest.fixture
def server():
    with FakeJudgeServer() as s:
        yield s


def make_judge(server: FakeJudgeServer, **kw) -> Judge:
    kw.setdefault("backoff_s", 0.01)
    return Judge(JudgeConfig(base_url=server.base_url, model="judge-7b", **kw))


def test_judge_decides_only_when_rules_do_not(server) -> None:
    judge = make_judge(server)
    # Rules decide: choice, numeric, equal text -> no request at all.
    assert match_answer("B", "A", choices=["x", "y"], judge=judge).method == "choice"
    assert match_answer("41", "42", judge=judge).method == "numeric"
    assert match_answer("Paris", "paris", judge=judge).method == "text"
    assert server.requests == []
    # Text mismatch: the judge is asked, and its verdict and name are recorded.
    r = match_answer("the city of paris", "Paris", judge=judge, question="Which city?")
    assert (r.correct, r.method) == (True, "judge:judge-7b")
    assert "CORRECT" in r.detail
    assert len(server.requests) == 1
    body = server.requests[0]
    assert body["model"] == "judge-7b" and body["temperature"] == 0.0
    prompt = body["messages"][0]["content"]
    assert (
        "Which city?" in prompt
        and "Ground-truth answer: Paris" in prompt
        and "Model answer: the city of paris" in prompt
    )
    assert match_answer("london", "Paris", judge=judge).correct is False


def test_no_answer_never_reaches_the_judge(server) -> None:
    assert match_answer(None, "x", judge=make_judge(server)).method == "none"
    assert server.requests == []


def test_prompt_per_task_type_and_override(server) -> None:
    judge = make_judge(server, prompts={"ocr": "OCR? gt={gt} pred={pred}"})
    match_answer("helo", "hello", task_type="ocr", judge=judge)
    match_answer("x squared", "x^2", task_type="math", judge=judge)
    assert server.requests[0]["messages"][0]["content"] == "OCR? gt=hello pred=helo"
    assert "mathematically equivalent" in server.requests[1]["messages"][0]["content"]


def test_memory_cache(server) -> None:
    judge = make_judge(server)
    first = match_answer("big red dog", "red dog", judge=judge)
    second = match_answer("big red dog", "red dog", judge=judge)
    assert first.correct and second.correct and len(server.requests) == 1
    assert "(cached)" in second.detail


def test_jsonl_cache_survives_restarts_and_torn_lines(server, tmp_path) -> None:
    cache = tmp_path / "judge.jsonl"
    make_judge(server, cache_path=str(cache)).judge("big red dog", "red dog")
    with cache.open("a") as f:
        f.write('{"key": "torn')  # a run killed mid-write
    again = make_judge(server, cache_path=str(cache))
    v = again.judge("big red dog", "red dog")
    assert v.correct and v.cached and len(server.requests) == 1
    row = json.loads(cache.read_text().splitlines()[0])
    assert row["model"] == "judge-7b" and row["correct"] is True


def test_retries_with_backoff_then_succeeds() -> None:
    with FakeJudgeServer(reply="CORRECT", fail_first=2, fail_status=503) as server:
        judge = make_judge(server, max_retries=3)
        assert judge.judge("a", "b").correct
        assert len(server.requests) == 3 and judge.requests == 3


def test_gives_up_after_retries_fallback_and_raise() -> None:
    with FakeJudgeServer(reply="CORRECT", fail_first=100, fail_status=429) as server:
        judge = make_judge(server, max_retries=2)
        r = match_answer("colour", "color", judge=judge)
        assert (r.correct, r.method) == (False, "text") and "judge error" in r.detail and "429" in r.detail
        assert len(server.requests) == 3
        strict = make_judge(server, max_retries=0, on_error="raise")
        with pytest.raises(JudgeError, match="after 1 attempts"):
            match_answer("colour", "color", judge=strict)


def test_client_errors_are_not_retried() -> None:
    with FakeJudgeServer(reply="CORRECT", api_key="sekret") as server:
        judge = make_judge(server, max_retries=3, on_error="raise", api_key_env="CV_TEST_JUDGE_KEY")
        with pytest.raises(JudgeError, match="HTTP 401"):
            judge.judge("a", "b")
        assert len(server.requests) == 1


def test_api_key_from_env(monkeypatch) -> None:
    monkeypatch.setenv("CV_TEST_JUDGE_KEY", "sekret")
    with FakeJudgeServer(reply="INCORRECT", api_key="sekret") as server:
        judge = make_judge(server, api_key_env="CV_TEST_JUDGE_KEY", on_error="raise")
        assert judge.judge("a", "b").correct is False


def test_unreachable_endpoint_and_unparsable_reply() -> None:
    judge = Judge(
        JudgeConfig(
            base_url="http://127.0.0.1:9/v1",
            model="m",
            max_retries=1,
            backoff_s=0.0,
            timeout_s=2,
            on_error="raise",
        )
    )
    with pytest.raises(JudgeError, match="failed"):
        judge.judge("a", "b")
    with FakeJudgeServer(reply="maybe?") as server:
        with pytest.raises(JudgeError, match="no CORRECT/INCORRECT"):
            make_judge(server, on_error="raise").judge("a", "b")


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("CORRECT", True),
        ("Incorrect.", False),
        ("yes", True),
        ("No", False),
        ("<think>is it correct?</think>INCORRECT", False),
        ("hmm", None),
    ],
)
def test_parse_verdict(reply: str, verdict: bool | None) -> None:
    assert parse_verdict(reply) is verdict


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": "localhost:8000"}, "http"),
        ({"model": ""}, "model"),
        ({"max_retries": -1}, "max_retries"),
        ({"on_error": "ignore"}, "on_error"),
        ({"prompts": {"poetry": "{gt}{pred}"}}, "unknown task types"),
        ({"prompts": {"ocr": "no placeholders"}}, "placeholders"),
        ({"timeout_s": 0}, "timeout_s"),
    ],
)
def test_config_validation(kwargs: dict, message: str) -> None:
    base = {"base_url": "http://127.0.0.1:8000/v1", "model": "m"}
    with pytest.raises(ValueError, match=message):
        JudgeConfig(**{**base, **kwargs})


def test_endpoint_url_forms() -> None:
    assert JudgeConfig("http://h/v1/", "m").endpoint == "http://h/v1/chat/completions"
    assert JudgeConfig("http://h/v1/chat/completions", "m").endpoint == "http://h/v1/chat/completions"


def test_judge_verdict_recorded_in_rollout_breakdown(server) -> None:
    b = score_rollout(make_record("a red apple", "apple"), judge=make_judge(server))
    assert b.correct and b.match_method == "judge:judge-7b" and "verdict=" in b.match_detail


def test_judge_pickles_without_its_lock(server) -> None:
    import pickle

    judge = pickle.loads(pickle.dumps(make_judge(server)))
    assert judge.judge("big red dog", "red dog").correct


def test_group_scoring_asks_the_judge_concurrently() -> None:
    import threading
    import time

    from cv_rewards import score_group

    active, peak, lock = [0], [0], threading.Lock()

    def slow(request: dict) -> str:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.2)
        with lock:
            active[0] -= 1
        return "CORRECT"

    with FakeJudgeServer(reply=slow) as server:
        judge = make_judge(server, max_concurrency=4)
        recs = [make_record(f"answer number {chr(97 + i)}", "reference", prompt_id="p") for i in range(8)]
        t0 = time.perf_counter()
        out = score_group(recs, judge=judge)
        elapsed = time.perf_counter() - t0
    assert all(b.correct and b.match_method == "judge:judge-7b" for b in out)
    assert len(server.requests) == 8 and 2 <= peak[0] <= 4
    assert elapsed < 8 * 0.2  # not sequential
