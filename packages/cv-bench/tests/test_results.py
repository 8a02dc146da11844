from __future__ import annotations

import json
from pathlib import Path

import pytest
from cv_bench.results import ItemResult, ResultStore, load_results
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def test_roundtrip_preserves_every_field(tmp_path: Path, make_results) -> None:
    store = ResultStore(tmp_path / "r.jsonl")
    rs = make_results(n_base=1)
    store.extend(rs)
    back = ResultStore(tmp_path / "r.jsonl").load()
    assert back == rs
    assert back[2].n_errors == 1 and back[2].n_recovered == 1


def test_truncated_last_line_is_cut_and_pair_counts_as_not_done(tmp_path: Path, make_results) -> None:
    path = tmp_path / "r.jsonl"
    store = ResultStore(path)
    rs = make_results(n_base=1)
    store.extend(rs[:3])
    partial = json.dumps(rs[3].to_dict())[:40]
    with open(path, "a") as f:
        f.write(partial)  # a crash in the middle of a write
    # a reader (report on a live run) skips it without touching the file
    assert len(load_results(path)) == 3
    assert path.read_text().endswith(partial)
    reopened = ResultStore(path)
    assert reopened.repaired_bytes == len(partial)
    assert reopened.done_keys() == {r.key for r in rs[:3]}
    reopened.append(rs[3])
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["item_id"] for line in lines)


def test_corrupt_middle_line_is_an_error_naming_the_line(tmp_path: Path, make_results) -> None:
    path = tmp_path / "r.jsonl"
    rs = make_results(n_base=1)
    ResultStore(path).extend(rs[:2])
    text = path.read_text().splitlines()
    path.write_text(text[0] + "\n{not json\n" + text[1] + "\n")
    with pytest.raises(ValueError, match=r"r.jsonl:2"):
        ResultStore(path).load()


def test_duplicate_keys_keep_first(tmp_path: Path, make_results) -> None:
    path = tmp_path / "r.jsonl"
    r = make_results(n_base=1)[0]
    store = ResultStore(path)
    store.append(r)
    dup = ItemResult.from_dict({**r.to_dict(), "correct": not r.correct})
    store.append(dup)
    assert [x.correct for x in store.load()] == [r.correct]


def test_missing_results_file_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="cv-bench eval --out"):
        load_results(tmp_path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(0, 8), cut=st.integers(0, 4000))
def test_any_crash_point_leaves_a_clean_prefix(tmp_path: Path, make_results, n: int, cut: int) -> None:
    """Truncate the file at any byte (a crash mid-write): reopening keeps exactly the complete lines."""
    path = tmp_path / f"r-{n}-{cut}.jsonl"
    path.unlink(missing_ok=True)  # hypothesis reuses tmp_path across examples
    rs = make_results(n_base=2)[:n]
    ResultStore(path).extend(rs)
    path.touch()
    data = path.read_bytes()
    cut = min(cut, len(data))
    path.write_bytes(data[:cut])
    store = ResultStore(path)
    kept = store.load()
    assert kept == rs[: data[:cut].count(b"\n")]
    store.extend(rs[len(kept) :])  # the resumed run redoes the rest
    assert ResultStore(path).load() == rs
