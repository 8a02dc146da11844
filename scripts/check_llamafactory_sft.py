"""Load a `cv-data build-sft` dataset with LLaMA-Factory's real data pipeline (from PyPI) and record what it
made of it.

LLaMA-Factory pins transformers below this workspace's version and pulls in a training stack, so it is
installed without dependencies into a throwaway folder and put on PYTHONPATH beside the workspace
environment (torch, transformers, datasets); its data pipeline (dataset_info.json parser, ShareGPT converter,
Qwen2-VL template and multimodal plugin) runs on CPU:

    uv pip install --target /tmp/lf_pkg --no-deps llamafactory==0.9.5 torchaudio omegaconf pyyaml
    DISABLE_VERSION_CHECK=1 PYTHONPATH=/tmp/lf_pkg uv run python scripts/check_llamafactory_sft.py \
        --record packages/cv-data/tests/fixtures/llamafactory_sft.json

(``DISABLE_VERSION_CHECK=1``: LLaMA-Factory 0.9.5 asks for transformers <= 5.6; the data pipeline runs with
the workspace's newer one.)

It builds the dataset the fixture test builds (3 trajectories, seed 0, single_tool / multi_tool /
error_recovery), runs `llamafactory.data.get_dataset` (stage sft, template qwen2_vl, a tiny Qwen2.5-VL
processor built locally) with the folder's `dataset_info.json`, and records per example: the number of
image-pad runs and of images, whether the prompt carries the `# Tools` block with our tool schema and our
system prompt, how many tool responses it holds and whether their tokens are masked from the loss.
cv-data's test `test_llamafactory_fixture.py` rebuilds the dataset and checks that the columns LLaMA-Factory
reads still have the shape that was recorded.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import sys
import tempfile
from pathlib import Path


def sharegpt_columns_hash(files: list[Path]) -> str:
    """Hash of the shape of the columns LLaMA-Factory reads: roles, the system prompt, the tools JSON, the
    `<image>` tokens per turn against the images, and which turns call the tool (not the generated texts)."""
    import pyarrow.parquet as pq

    h = hashlib.sha256()
    for f in files:
        for row in pq.read_table(f, columns=["conversations", "system", "tools", "images"]).to_pylist():
            view = {
                "from": [t["from"] for t in row["conversations"]],
                "image_tokens": [t["value"].count("<image>") for t in row["conversations"]],
                "tool_calls": ["<tool_call>" in t["value"] for t in row["conversations"]],
                "wrapped": [t["value"].startswith("<tool_response>") for t in row["conversations"]],
                "system": row["system"],
                "tools": row["tools"],
                "images": len(row["images"]),
            }
            h.update(json.dumps(view, sort_keys=True).encode())
    return h.hexdigest()


BUILD = {"num": 3, "seed": 0, "kinds": {"single_tool": 1.0, "multi_tool": 1.0, "error_recovery": 1.0}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", help="write the observations to this JSON file")
    args = ap.parse_args()

    from cv_agent.tiny import build_tiny_vlm
    from cv_data import SFTBuildConfig, build_sft_dataset
    from cv_protocol import DEFAULT_PRESET
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments, ModelArguments
    from transformers import AutoProcessor, Seq2SeqTrainingArguments

    work = Path(tempfile.mkdtemp())
    cfg = SFTBuildConfig(num=BUILD["num"], seed=BUILD["seed"], kinds=BUILD["kinds"], progress=False)
    res = build_sft_dataset(cfg, work / "sft")
    model_dir = build_tiny_vlm(work / "tiny")
    processor = AutoProcessor.from_pretrained(model_dir)
    tokenizer = processor.tokenizer
    model_args = ModelArguments(model_name_or_path=str(model_dir))
    data_args = DataArguments(
        dataset_dir=str(res.out), dataset="codevision_sft", template="qwen2_vl", cutoff_len=32768
    )
    training_args = Seq2SeqTrainingArguments(output_dir=str(work / "out"))
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    module = get_dataset(template, model_args, data_args, training_args, "sft", tokenizer, processor)
    ds = module["train_dataset"]
    pad_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    tool_json = json.dumps(DEFAULT_PRESET.tool_schema(), ensure_ascii=False)
    examples = []
    for ex in ds:
        ids, labels = ex["input_ids"], ex["labels"]
        runs = sum(1 for k, t in enumerate(ids) if t == pad_id and (k == 0 or ids[k - 1] != pad_id))
        text = tokenizer.decode(ids)
        trained = tokenizer.decode([t for t, lab in zip(ids, labels, strict=True) if lab != -100])
        examples.append(
            {
                "image_pad_runs": runs,
                "images": len(ex["images"]) if ex.get("images") else None,
                "has_tools_block": "# Tools" in text and tool_json in text,
                "has_system_prompt": DEFAULT_PRESET.system_prompt.splitlines()[0] in text,
                "tool_responses": text.count("<tool_response>"),
                "tool_responses_trained": trained.count("<tool_response>") + trained.count("Execution "),
                "answer_trained": "<answer>" in trained,
            }
        )
    obs = {
        "llamafactory": importlib.metadata.version("llamafactory"),
        "transformers": importlib.metadata.version("transformers"),
        "build": BUILD,
        "rows_in": res.report.stats["rows"],
        "examples": examples,
        "columns_sha256": sharegpt_columns_hash(res.files),
    }
    text = json.dumps(obs, indent=1, sort_keys=True)
    print(text)
    if args.record:
        Path(args.record).parent.mkdir(parents=True, exist_ok=True)
        Path(args.record).write_text(text + "\n")
    ok = len(examples) == obs["rows_in"] and all(e["has_tools_block"] for e in examples)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
