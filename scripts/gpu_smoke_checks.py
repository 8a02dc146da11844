"""Checks of scripts/gpu_smoke.sh that need a few lines of Python.

``prompt-identity MODEL URL``: one multi-turn conversation with a tool image, as cv-agent's ``openai:`` backend
sends it, is tokenised by the vLLM server (``/tokenize``) and rendered by the ``hf:`` backend (the training
template); the two token sequences must be identical (image-pad runs collapsed to one token: the server may
expand them differently from the processor, which the image-token invariants check elsewhere).

``agreement HF_RUN OPENAI_RUN``: two ``cv-bench eval`` runs of the same model (greedy) agree on the answer and
the ops of at least 90 % of the items (bf16 kernels differ slightly between vLLM and transformers).

Both print one ``SMOKE: ...`` line for the summary table and exit non-zero on failure.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

from PIL import Image


def _conversation() -> tuple[list[dict], list[Image.Image]]:
    from cv_data.toy import TOY_QUESTION, toy_item
    from cv_protocol import render_tool_call

    item = toy_item(0, rotation="rotate_90")
    tool_image = item.images[0].rotate(270, expand=True)
    call = render_tool_call("result = image.rotate(270, expand=True)", "Rotate the image upright.", 0)
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "image_index": 0}, {"type": "text", "text": TOY_QUESTION}],
        },
        {"role": "assistant", "content": f"<think>The image is rotated.</think>\n{call}"},
        {
            "role": "tool",
            "content": [
                {"type": "image", "image_index": 1},
                {"type": "text", "text": "Execution succeeded."},
            ],
        },
    ]
    return messages, [item.images[0], tool_image]


def prompt_identity(model: str, url: str) -> int:
    from cv_agent.backends.hf import TransformersBackend, TransformersBackendConfig
    from cv_agent.backends.openai_compat import OpenAIBackend, OpenAIBackendConfig
    from cv_protocol import get_preset
    from cv_train.rl import collapse_image_runs
    from transformers import AutoProcessor

    preset = get_preset("minimal")
    messages, images = _conversation()
    system = [{"role": "system", "content": preset.system_prompt}]
    body = OpenAIBackend(OpenAIBackendConfig(base_url=f"{url}/v1", model="smoke")).build_request(
        system + messages, images
    )
    req = urllib.request.Request(
        f"{url}/tokenize",
        data=json.dumps(
            {"model": "smoke", "messages": body["messages"], "add_generation_prompt": True}
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        served = json.loads(resp.read())["tokens"]
    hf = TransformersBackend(TransformersBackendConfig(model, device="cpu"))
    text, ordered = hf.build_prompt(system + messages, images, tools=preset.tools() or None)
    processor = AutoProcessor.from_pretrained(model)
    ids = processor(text=[text], images=ordered, return_tensors="pt")["input_ids"][0].tolist()
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    a, b = collapse_image_runs(served, pad), collapse_image_runs(ids, pad)
    if a != b:
        first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        print(f"served and hf prompts differ at token {first} of {len(a)}/{len(b)}")
        print("served:", processor.tokenizer.decode(a[max(0, first - 20) : first + 20]))
        print("hf:    ", processor.tokenizer.decode(b[max(0, first - 20) : first + 20]))
        return 1
    print(f"SMOKE: identical prompts ({len(b)} tokens, 2 images)")
    return 0


def agreement(hf_run: str, openai_run: str) -> int:
    def load(run: str) -> dict[tuple[str, int], tuple]:
        out = {}
        for line in (Path(run) / "results.jsonl").read_text().splitlines():
            r = json.loads(line)
            out[(r["item_id"], r["sample"])] = (r["pred"], [c["ops"] for c in r["tool_calls"]])
        return out

    a, b = load(hf_run), load(openai_run)
    keys = sorted(set(a) & set(b))
    same = sum(a[k] == b[k] for k in keys)
    share = same / max(len(keys), 1)
    print(f"SMOKE: hf and openai agree on {same}/{len(keys)} items ({100 * share:.0f} %)")
    return 0 if keys and share >= 0.9 else 1


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "prompt-identity":
        return prompt_identity(argv[1], argv[2])
    if len(argv) == 3 and argv[0] == "agreement":
        return agreement(argv[1], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
