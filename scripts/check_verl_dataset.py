"""Load a `cv-data build-rl` dataset with verl's real `RLHFDataset` (from PyPI) and record what verl sees.

verl is not a dependency of this project (it pins transformers and pulls in ray), so it is installed into a
throwaway folder and put on PYTHONPATH beside the workspace environment, which has torch, transformers and
datasets. No GPU is needed: `RLHFDataset` only reads parquet and applies a processor's chat template.

    uv pip install --target /tmp/verl_pkg --no-deps verl==0.9.1 omegaconf ray==2.49.2 tensordict==0.10.0 \
        msgpack requests urllib3 jsonschema attrs referencing rpds-py jsonschema-specifications \
        charset-normalizer idna certifi pyvers cloudpickle pyyaml
    PYTHONPATH=/tmp/verl_pkg uv run python scripts/check_verl_dataset.py \
        --record packages/cv-data/tests/fixtures/verl_rlhf_dataset.json

It builds the dataset the fixture test builds (5 synthetic RL items, seed 0, charts and documents), reads it
with `RLHFDataset` (the prompt-length filter on, a tiny Qwen2.5-VL processor built locally) and writes, per
row, what verl's agent loop receives: the raw prompt's roles and part types, the system prompt, the tools
kwargs, the index and the agent name, plus a hash of the columns verl reads. cv-data's test
`test_verl_fixture.py` rebuilds the same dataset and checks that the shape of those columns still hashes
the same (so what verl did with them still holds).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import sys
import tempfile
from pathlib import Path


def verl_columns_hash(files: list[Path]) -> str:
    """Hash of the shape of the columns verl's dataset and agent loop read: message roles, the system
    prompt, the user turn as `<image>` tokens + the question, the number of images, the tool fields, the
    index, the agent name (not the generated texts and pixels, so that a change of the synthetic sources
    does not call for a new recording)."""
    import pyarrow.parquet as pq

    h = hashlib.sha256()
    for f in files:
        for row in pq.read_table(f).to_pylist():
            extra = row["extra_info"]
            user = row["prompt"][-1]["content"]
            view = {
                "roles": [m["role"] for m in row["prompt"]],
                "system": row["prompt"][0]["content"],
                "user": user.replace(extra["question"], "{question}"),
                "images": len(row["images"]),
                "style": row["reward_model"]["style"],
                "agent_name": row["agent_name"],
                "index": extra["index"],
                "tools_kwargs": extra["tools_kwargs"],
                "need_tools_kwargs": extra["need_tools_kwargs"],
            }
            view["tools_kwargs"]["code_image_tool"]["create_kwargs"]["item_id"] = "{id}"
            h.update(json.dumps(view, sort_keys=True).encode())
    return h.hexdigest()


def _text(content) -> str:
    """A message's text (verl turns every string content into parts once a row has images)."""
    if isinstance(content, str):
        return content
    return "".join(p.get("text") or "" for p in content if p.get("type") == "text")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", help="write the observations to this JSON file")
    args = ap.parse_args()

    from cv_agent.tiny import build_tiny_vlm
    from cv_data import RLBuildConfig, build_rl
    from omegaconf import OmegaConf
    from transformers import AutoProcessor
    from verl.utils.dataset.rl_dataset import RLHFDataset

    work = Path(tempfile.mkdtemp())
    res = build_rl(
        RLBuildConfig(num=5, seed=0, sources={"chart": 1.0, "document": 1.0}, progress=False), work / "rl"
    )
    files = [str(f) for f in res.files]
    processor = AutoProcessor.from_pretrained(build_tiny_vlm(work / "tiny"))
    config = OmegaConf.create(
        {
            "prompt_key": "prompt",
            "image_key": "images",
            "max_prompt_length": 16384,
            "filter_overlong_prompts": True,
            "filter_overlong_prompts_workers": 1,
            "return_raw_chat": True,
            "cache_dir": str(work / "cache"),
        }
    )
    ds = RLHFDataset(files, processor.tokenizer, config, processor=processor)
    rows = []
    for i in range(len(ds)):
        r = ds[i]
        rows.append(
            {
                "roles": [m["role"] for m in r["raw_prompt"]],
                "system_sha256": hashlib.sha256(_text(r["raw_prompt"][0]["content"]).encode()).hexdigest(),
                "user_parts": [p["type"] for p in r["raw_prompt"][-1]["content"]],
                "tools_kwargs": r["tools_kwargs"],
                "index": int(r["index"]),
                "agent_name": r.get("agent_name"),
                "data_source": r["data_source"],
            }
        )
    obs = {
        "verl": importlib.metadata.version("verl"),
        "transformers": importlib.metadata.version("transformers"),
        "build": {"num": 5, "seed": 0, "sources": ["chart", "document"]},
        "rows_in": res.report.stats["rows"],
        "rows_after_filter": len(ds),
        "columns_sha256": verl_columns_hash([Path(f) for f in files]),
        "rows": rows,
    }
    text = json.dumps(obs, indent=1, sort_keys=True)
    print(text)
    if args.record:
        Path(args.record).parent.mkdir(parents=True, exist_ok=True)
        Path(args.record).write_text(text + "\n")
    ok = obs["rows_after_filter"] == obs["rows_in"] and all(r["roles"] == ["system", "user"] for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
