"""Streaming builds: the Hugging Face layout, bounded row groups, the dataset card, resuming after a kill,
``--shard K/N`` unions, ``--num-proc`` determinism, bounded memory, and release data kept as it is."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cv_data import (
    BenchConfig,
    InputSpec,
    RLBuildConfig,
    ShardConfig,
    build_bench_dataset,
    build_rl,
    load_suite,
    read_items,
    write_verl,
)
from cv_data.cli import main
from cv_data.testing import tiny_items
from cv_protocol import DEFAULT_PRESET, TOOL_NAME

CHARTS = {"chart": 1.0}  # the fastest source: keeps the builds of these tests to a few seconds


def _rl(num: int, **kw) -> RLBuildConfig:
    return RLBuildConfig(num=num, sources=CHARTS, progress=False, **kw)


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "data").glob("*.parquet"))}


def test_cli_writes_the_hugging_face_layout_with_a_card(tmp_path: Path, capsys) -> None:
    out = tmp_path / "rl"
    argv = ["build-rl", "--out", str(out), "--num", "5", "--sources", "chart", "--records-per-shard", "2"]
    assert main([*argv, "--no-progress"]) == 0
    names = sorted(p.name for p in (out / "data").iterdir())
    assert names == [f"train-0000{j}-of-00003.parquet" for j in range(3)]
    card = (out / "README.md").read_text()
    assert "path: data/train-*" in card and "num_examples: 5" in card and "| seed | 0 |" in card
    assert "cv-data build-rl --out rl --seed 0 --format verl --num 5 --sources chart" in card
    assert "| `prompt` |" in card and "| `extra_info` |" in card
    report = json.loads((out / "report.json").read_text())
    assert (report["total"], report["ok"], report["failed"]) == (5, 5, 0)
    assert "dataset card" in capsys.readouterr().out

    import datasets

    ds = datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), split="train")
    assert len(ds) == 5 and ds[0]["images"][0].size[0] > 100
    assert [it.id for it in read_items(out)] == [f"chart-s0-{i:06d}" for i in range(5)]


def test_verl_rows_carry_the_prompt_and_the_tool_fields(tmp_path: Path) -> None:
    res = build_rl(_rl(3), tmp_path / "rl")
    row = pq.read_table(res.files[0]).to_pylist()[1]
    assert row["prompt"][0] == {"role": "system", "content": DEFAULT_PRESET.system_prompt}
    assert (
        row["prompt"][1]["content"].startswith("<image>")
        and row["prompt"][1]["content"].count("<image>") == 1
    )
    assert row["agent_name"] == "tool_agent" and row["extra_info"]["index"] == 1
    assert row["extra_info"]["tools_kwargs"] == {
        TOOL_NAME: {"create_kwargs": {"item_id": row["extra_info"]["id"]}}
    }
    assert row["extra_info"]["need_tools_kwargs"] is True
    assert row["reward_model"]["ground_truth"] == row["extra_info"]["answer"]


def test_row_groups_are_bounded(tmp_path: Path) -> None:
    shards = ShardConfig(records_per_shard=7, row_group_rows=3, row_group_bytes=1 << 40)
    res = build_rl(_rl(7), tmp_path / "a", shards=shards)
    md = pq.read_metadata(res.files[0])
    assert [md.row_group(g).num_rows for g in range(md.num_row_groups)] == [3, 3, 1]
    tiny = ShardConfig(records_per_shard=7, row_group_rows=100, row_group_bytes=1)  # every row its own group
    md = pq.read_metadata(build_rl(_rl(4), tmp_path / "b", shards=tiny).files[0])
    assert md.num_row_groups == 4


def test_shards_of_n_machines_union_to_the_one_machine_build(tmp_path: Path) -> None:
    shards = ShardConfig(records_per_shard=2)
    whole = build_rl(_rl(5), tmp_path / "one", shards=shards)
    parts = [build_rl(_rl(5), tmp_path / f"m{k}", shards=shards, shard=(k, 3)) for k in range(3)]
    assert [p.complete for p in parts] == [False, False, False] and all(p.card is None for p in parts)
    union: dict[str, bytes] = {}
    for k in range(3):
        union |= _bytes(tmp_path / f"m{k}")
    assert union == _bytes(tmp_path / "one")
    # Copied together, a rerun without --shard builds nothing and writes the same card and report.
    merged = tmp_path / "merged"
    (merged / "data").mkdir(parents=True)
    for k in range(3):
        for f in (tmp_path / f"m{k}" / "data").glob("*.parquet"):
            shutil.copy(f, merged / "data" / f.name)
    shutil.copytree(tmp_path / "one", tmp_path / "merged_as_one")  # same folder name for the card
    res = build_rl(_rl(5), merged, shards=shards)
    assert (res.built, res.skipped, res.complete) == (0, 3, True)
    assert (merged / "report.json").read_bytes() == (whole.out / "report.json").read_bytes()
    card = (merged / "README.md").read_text().replace("merged", "one")
    assert card == (whole.out / "README.md").read_text()


def test_num_proc_gives_the_same_bytes(tmp_path: Path) -> None:
    one = build_rl(_rl(6), tmp_path / "p1")
    two = build_rl(_rl(6, num_proc=2), tmp_path / "p2")
    assert _bytes(one.out) == _bytes(two.out)


_KILLABLE = """
import sys
from cv_data import RLBuildConfig, ShardConfig, build_rl
build_rl(RLBuildConfig(num=int(sys.argv[2]), sources={"document": 1.0}, progress=False), sys.argv[1],
         shards=ShardConfig(records_per_shard=2))
"""


def test_a_killed_build_resumes_without_duplicates(tmp_path: Path) -> None:
    num = 12
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(out), str(num)])
    first = out / "data" / "train-00000-of-00006.parquet"
    deadline = time.monotonic() + 120
    while not first.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in (out / "data").glob("*.parquet"))
    assert 1 <= len(done) < 6, f"the build was not killed mid-way: {done}"
    res = build_rl(
        RLBuildConfig(num=num, sources={"document": 1.0}, progress=False), out, shards=ShardConfig(2)
    )
    assert res.skipped == len(done) and res.built == 6 - len(done) and res.complete
    assert not list((out / "data").glob(".*"))  # the partial shard is gone
    fresh = build_rl(
        RLBuildConfig(num=num, sources={"document": 1.0}, progress=False),
        tmp_path / "fresh",
        shards=ShardConfig(2),
    )
    assert _bytes(out) == _bytes(fresh.out)
    ids = [it.id for it in read_items(out)]
    assert len(ids) == len(set(ids)) == num


def test_another_build_in_the_same_folder_is_refused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "rl"
    build_rl(_rl(2), out)
    with pytest.raises(ValueError, match="holds 1 shard\\(s\\) of another build .*--overwrite"):
        build_rl(_rl(2, seed=1), out)
    res = build_rl(_rl(2, seed=1), out, overwrite=True)
    assert res.built == 1 and read_items(out)[0].id == "chart-s1-000000"
    assert main(["build-rl", "--out", str(tmp_path / "x.parquet"), "--num", "1"]) == 2
    assert "looks like a file" in capsys.readouterr().err


_PEAK = """
import resource, sys
from PIL import Image, ImageDraw
from cv_data import Item, RLBuildConfig, ShardConfig, build_rl, sources

def big(i, seed, split):  # 2400 x 2400 (17 MB decoded, a few kB as PNG): holding them would show
    im = Image.new("RGB", (2400, 2400), (250, 250, 245))
    ImageDraw.Draw(im).text((40, 40), f"item {i}", fill=(0, 0, 0))
    return Item(f"big-{i}", [im], "Which item?", str(i), data_source="test/big", split=split)

sources.SOURCES["big"] = big
build_rl(RLBuildConfig(num=int(sys.argv[2]), sources={"big": 1.0}, p_identity=1.0, progress=False),
         sys.argv[1], shards=ShardConfig(records_per_shard=8))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def test_peak_memory_does_not_grow_with_num(tmp_path: Path) -> None:
    def peak_mb(num: int) -> int:
        cmd = [sys.executable, "-c", _PEAK, str(tmp_path / f"n{num}"), str(num)]
        return int(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()[-1])

    small, large = peak_mb(8), peak_mb(48)
    # Holding the 40 extra items would add 40 x 17 MB = 690 MB; streaming keeps one shard's rows at most.
    assert large - small < 120, f"peak grew from {small} MB (8 items) to {large} MB (48 items)"


def _release_parquet(path: Path) -> list:
    """A file in the CodeVision release's RL layout: already transformed images, the box in
    ``extra_info.bbox_2d``, ``transform`` as a dict keyed by op, its own system prompt, no tool fields."""
    import pyarrow as pa

    items = tiny_items(3, seed=4)
    write_verl(items, path, system_prompt="release prompt")
    rows = []
    for row, it in zip(pq.read_table(path).to_pylist(), items, strict=True):
        extra = {k: v for k, v in row["extra_info"].items() if k not in ("tools_kwargs", "need_tools_kwargs")}
        extra["bbox_2d"], extra["bbox"] = extra.pop("bbox"), None
        extra["transform"] = dict.fromkeys(it.transform, 1) if it.transform else None
        rows.append({k: v for k, v in row.items() if k != "agent_name"} | {"extra_info": extra})
    pq.write_table(pa.Table.from_pylist(rows), path)
    return items


def test_release_data_is_kept_as_it_is(tmp_path: Path, capsys) -> None:
    src = tmp_path / "train_group_1.parquet"
    items = _release_parquet(src)
    out = tmp_path / "rl"
    assert (
        main(["build-rl", "--out", str(out), "--input", str(src), "--input-format", "verl", "--no-progress"])
        == 0
    )
    got = read_items(out)
    assert [it.transform for it in got] == [it.transform for it in items]
    assert [it.bbox for it in got] == [it.bbox for it in items] and items[0].bbox is not None
    assert [it.images[0].tobytes() for it in got] == [it.images[0].tobytes() for it in items]
    assert pq.read_table(out / "data" / "train-00000-of-00001.parquet").to_pylist()[0]["prompt"][0][
        "content"
    ] == (DEFAULT_PRESET.system_prompt)
    assert main(["build-rl", "--out", str(tmp_path / "e"), "--input", str(src), "--p-identity", "0.5"]) == 2
    assert "--transform-input" in capsys.readouterr().err
    res = build_rl(
        RLBuildConfig(p_identity=0.0, p_compose=0.0, transform_input=True, progress=False),
        tmp_path / "t",
        source=InputSpec(str(src), "verl"),
    )
    again = read_items(res.out)
    assert all(len(b.transform) == len(a.transform) + 1 for a, b in zip(items, again, strict=True))


def test_bench_streams_and_cv_bench_reads_it(tmp_path: Path) -> None:
    res = build_bench_dataset(
        BenchConfig("orientation", num=2, sources=["chart"], progress=False), tmp_path / "b"
    )
    assert res.files[0].name == "test-00000-of-00001.parquet" and res.report.stats["rows"] == 12
    items = load_suite("items", data=res.out)
    assert [it.id.rsplit("/", 1)[1] for it in items[:6]] == [
        "source",
        "rot90",
        "rot180",
        "rot270",
        "flip-h",
        "flip-v",
    ]
    rows = pq.read_table(res.files[0]).to_pylist()
    assert [r["extra_info"]["index"] for r in rows] == list(range(12))


def test_bench_input_with_bad_records_reports_them(tmp_path: Path) -> None:
    from cv_data import SOURCES

    item = SOURCES["document"](0, 0, "test")
    item.images[0].save(tmp_path / "doc.png")
    rows = [{"image": "missing.png", "question": "q", "answer": "a"}]
    rows.append({"image": "doc.png", "question": item.question, "answer": item.answer})
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    out = tmp_path / "bench"
    argv = ["build-bench", "--out", str(out), "--input", str(tmp_path / "t.jsonl"), "--input-format", "table"]
    assert main([*argv, "--no-progress"]) == 0
    assert len(read_items(out)) == 6
    rep = json.loads((out / "report.json").read_text())
    assert [(e["index"], e["stage"]) for e in rep["errors"]] == [(0, "image"), (2, "load")]


def test_jsonl_format_writes_png_files(tmp_path: Path) -> None:
    out = tmp_path / "j"
    assert (
        main(
            [
                "build-rl",
                "--out",
                str(out),
                "--num",
                "3",
                "--sources",
                "chart",
                "--format",
                "jsonl",
                "--no-progress",
            ]
        )
        == 0
    )
    lines = (out / "data" / "train-00000-of-00001.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    assert row["images"] == ["images/chart-s0-000000_0.png"] and (out / "data" / row["images"][0]).is_file()
    assert [it.id for it in read_items(out)] == [f"chart-s0-{i:06d}" for i in range(3)]
    assert "train-NNNNN-of-00001.jsonl" in (out / "README.md").read_text()


def test_progress_covers_the_whole_job(tmp_path: Path, capfd) -> None:
    build_rl(RLBuildConfig(num=3, sources=CHARTS), tmp_path / "p", shards=ShardConfig(records_per_shard=2))
    err = capfd.readouterr().err
    assert "3/3" in err and "shard 2/2" in err and "<00:00" in err  # every record, both shards, an ETA


def test_shard_spec_errors_are_clear(tmp_path: Path, capsys) -> None:
    assert main(["build-rl", "--out", str(tmp_path / "x"), "--shard", "3/3"]) == 2
    assert "K must be in 0..N-1" in capsys.readouterr().err
    assert main(["build-rl", "--out", str(tmp_path / "x"), "--shard", "two"]) == 2
    assert "must be K/N" in capsys.readouterr().err


def test_an_empty_build_completes(tmp_path: Path) -> None:
    res = build_rl(_rl(0), tmp_path / "empty")
    assert res.complete and pq.read_metadata(res.files[0]).num_rows == 0
    assert read_items(res.out) == [] and "num_examples: 0" in (res.out / "README.md").read_text()
