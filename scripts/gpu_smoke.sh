#!/usr/bin/env bash
# GPU smoke run: every CUDA path of CodeVision on one GPU with tiny models built locally, one summary table.
#
#   bash scripts/gpu_smoke.sh            # on a CUDA machine (needs the vllm extra: uv sync --extra vllm ...)
#   bash scripts/gpu_smoke.sh --dry-run  # on a CPU: runs every part that can run there, marks the rest SKIP
#
# Parts (each a public CLI or benchmark script, as a user would run it):
#   tiny        a tiny Qwen2.5-VL with 64-wide heads (GPU kernels want them), built locally
#   sft-full    cv-train sft, full fine-tune, bf16, on the toy task (its result is the model served below)
#   sft-lora    cv-train sft with LoRA, bf16;  sft-qlora: LoRA on a 4-bit base (bitsandbytes)
#   serve       vllm serve of the SFT model (OpenAI-compatible, dev endpoints for TRL's weight sync)
#   prompt-id   the prompt vLLM's server renders for a multi-turn conversation with a tool image is token for
#               token the one the hf: backend and training render
#   eval-openai cv-bench eval --model openai:... (the served model);  eval-hf: the same with hf:, answers compared
#   eval-vllm   cv-bench eval --model vllm:... (in-process engine)
#   rl-colocate cv-train rl with vLLM colocated, 2 steps (image-token invariants checked on every batch)
#   rl-server   cv-train rl against a vllm serve process (weights synced over NCCL), 2 steps
#   proof       benchmarks/learning_proof.py at GPU speed (its own criteria)
#   profile     benchmarks/rl_step_profile.py: share of an RL step spent in tools, reward and data
# Budget: under 8 minutes on one H100 (each part has a timeout; the table says which ran out).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cache/cv-bootstrap-uv/bin:$PATH" UV_PYTHON_DOWNLOADS=never
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
OUT=${OUT:-runs/gpu-smoke}
PORT=${PORT:-8011}
RL_PORT=${RL_PORT:-8012}
PY=(uv run --frozen python)
rm -rf "$OUT" && mkdir -p "$OUT/logs"
ROWS=()
SERVERS=()
cleanup() { for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null; done; }
trap cleanup EXIT

has_cuda=$("${PY[@]}" -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
has_vllm=$("${PY[@]}" -c "import importlib.util as u; print(int(u.find_spec('vllm') is not None))" 2>/dev/null || echo 0)
has_bnb=$("${PY[@]}" -c "import importlib.util as u; print(int(u.find_spec('bitsandbytes') is not None))" 2>/dev/null || echo 0)
if [ "$DRY" = 0 ] && [ "$has_cuda" = 0 ]; then
    echo "no CUDA device: run with --dry-run on a CPU" >&2
    exit 2
fi
GPU=$([ "$has_cuda" = 1 ] && echo 1 || echo 0)
BF16=$([ "$GPU" = 1 ] && echo true || echo false)

# part NAME TIMEOUT NEEDS CMD...   NEEDS: "-" or a comma list of cuda,vllm,bnb
part() {
    local name=$1 limit=$2 needs=$3
    shift 3
    local missing=""
    for need in ${needs//,/ }; do
        case $need in
        cuda) [ "$has_cuda" = 1 ] || missing+="CUDA " ;;
        vllm) [ "$has_vllm" = 1 ] || missing+="vllm " ;;
        bnb) [ "$has_bnb" = 1 ] || missing+="bitsandbytes " ;;
        esac
    done
    if [ -n "$missing" ]; then
        ROWS+=("$name|SKIP|-|needs ${missing% }")
        echo "::: $name: SKIP (needs ${missing% })"
        return 0
    fi
    echo "::: $name"
    local t0=$SECONDS rc=0
    if declare -F "$1" >/dev/null; then # a function of this script (starts a server): it bounds its own wait
        "$@" >"$OUT/logs/$name.log" 2>&1 || rc=$?
    else
        timeout "$limit" "$@" >"$OUT/logs/$name.log" 2>&1 || rc=$?
    fi
    local dt=$((SECONDS - t0)) status=PASS note=""
    if [ $rc = 124 ]; then
        status=FAIL note="timed out after ${limit}s"
    elif [ $rc != 0 ]; then
        status=FAIL note="exit $rc: $(grep -v '^\s*$' "$OUT/logs/$name.log" | tail -1 | cut -c1-90)"
    else
        note=$(grep '^SMOKE: ' "$OUT/logs/$name.log" | tail -1 | cut -c8-100)
    fi
    ROWS+=("$name|$status|${dt}s|$note")
}

# wait_for URL SECONDS: until the server answers /health
wait_for() {
    for _ in $(seq "$2"); do
        curl -sf "$1/health" >/dev/null 2>&1 && return 0
        sleep 1
    done
    return 1
}

serve() { # serve PORT MODEL LOG [extra args]: start vllm serve in the background and wait for it
    local port=$1 model=$2 log=$3
    shift 3
    VLLM_SERVER_DEV_MODE=1 "${PY[@]}" -m vllm.entrypoints.cli.main serve "$model" --port "$port" \
        --served-model-name smoke --max-model-len 4096 --gpu-memory-utilization 0.25 --enforce-eager "$@" \
        >"$log" 2>&1 &
    SERVERS+=($!)
    if wait_for "http://127.0.0.1:$port" 240; then
        echo "SMOKE: serving on :$port"
    else
        tail -5 "$log"
        return 1
    fi
}

TINY=$OUT/tiny
SFT=$OUT/sft-full/final
EVAL_ARGS=(--suite toy --size 4 --preset minimal --max-turns 3 --max-new-tokens 128 --quiet)
SFT_STEPS=$([ "$GPU" = 1 ] && echo 600 || echo 8)

part tiny 120 - "${PY[@]}" -m cv_agent build-tiny "$TINY" --hidden-size 256 --head-dim 64 --num-layers 2
part sft-full 300 - "${PY[@]}" -m cv_train sft --model "$TINY" --output_dir "$OUT/sft-full" \
    --max_steps "$SFT_STEPS" --bf16 "$BF16" --save_steps 100000
part sft-lora 120 - "${PY[@]}" -m cv_train sft --model "$TINY" --output_dir "$OUT/sft-lora" --max_steps 8 \
    --bf16 "$BF16" --use_peft true --learning_rate 1e-3 --save_steps 100000
part sft-qlora 120 cuda,bnb "${PY[@]}" -m cv_train sft --model "$TINY" --output_dir "$OUT/sft-qlora" \
    --max_steps 8 --bf16 true --use_peft true --load_in_4bit true --learning_rate 1e-3 --save_steps 100000
part serve 300 cuda,vllm serve "$PORT" "$SFT" "$OUT/logs/vllm-serve.out"
part prompt-id 120 cuda,vllm "${PY[@]}" scripts/gpu_smoke_checks.py prompt-identity "$SFT" "http://127.0.0.1:$PORT"
part eval-openai 180 cuda,vllm "${PY[@]}" -m cv_bench eval --model "openai:http://127.0.0.1:$PORT/v1#smoke" \
    --out "$OUT/eval-openai" "${EVAL_ARGS[@]}"
part eval-hf 180 - "${PY[@]}" -m cv_bench eval --model "hf:$SFT" --out "$OUT/eval-hf" "${EVAL_ARGS[@]}"
part eval-agree 60 cuda,vllm "${PY[@]}" scripts/gpu_smoke_checks.py agreement "$OUT/eval-hf" "$OUT/eval-openai"
cleanup
SERVERS=()
part eval-vllm 240 cuda,vllm "${PY[@]}" -m cv_bench eval --model "vllm:$SFT" --out "$OUT/eval-vllm" "${EVAL_ARGS[@]}"
part rl-colocate 300 cuda,vllm "${PY[@]}" -m cv_train rl --model "$SFT" --output_dir "$OUT/rl-colocate" \
    --max_steps 2 --bf16 true --use_vllm true --vllm_mode colocate --vllm_gpu_memory_utilization 0.2
part rl-serve 300 cuda,vllm serve "$RL_PORT" "$SFT" "$OUT/logs/vllm-rl-serve.out" \
    --weight-transfer-config '{"backend": "nccl"}' --enable-scale-out
part rl-server 300 cuda,vllm "${PY[@]}" -m cv_train rl --model "$SFT" --output_dir "$OUT/rl-server" \
    --max_steps 2 --bf16 true --use_vllm true --vllm_mode server \
    --vllm_server_base_url "http://127.0.0.1:$RL_PORT"
cleanup
SERVERS=()
if [ "$GPU" = 1 ]; then
    part proof 420 cuda "${PY[@]}" benchmarks/learning_proof.py --out "$OUT/learning-proof" --jobs 3
else
    part proof 900 - "${PY[@]}" benchmarks/learning_proof.py --out "$OUT/learning-proof" --quick
fi
PROFILE_ARGS=(--output-dir "$OUT/rl-profile" --json "$OUT/rl-profile.json" --steps 4)
[ "$GPU" = 1 ] && PROFILE_ARGS+=(--bf16)
part profile 300 - "${PY[@]}" benchmarks/rl_step_profile.py "${PROFILE_ARGS[@]}"

echo
printf '%-12s %-5s %6s  %s\n' part status time note
printf '%-12s %-5s %6s  %s\n' ------------ ----- ------ ----------------------------------------
status=0
for row in "${ROWS[@]}"; do
    IFS='|' read -r name st dt note <<<"$row"
    printf '%-12s %-5s %6s  %s\n' "$name" "$st" "$dt" "$note"
    [ "$st" = FAIL ] && status=1
done
echo "device: $("${PY[@]}" -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (dry run)")' 2>/dev/null)"
echo "logs: $OUT/logs"
exit $status
