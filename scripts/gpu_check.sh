#!/usr/bin/env bash
# GPU check of tnn's XLA device: trains tern_resnet20 on Fashion-MNIST on an
# NVIDIA GPU, evaluates the GPU-trained checkpoint on the CPU engine, and
# times training steps against the PyTorch reference on the same GPU in the
# same run. The summary table is printed last. Builds nothing: give it a tnn
# built elsewhere with the xla tag (needs Go and a C compiler):
#
#   go build -tags xla -o tnn ./cmd/tnn
#
# Usage: scripts/gpu_check.sh [TNN [TORCH_REF]]
#
#   TNN        the tnn binary (default: ./tnn, or $TNN)
#   TORCH_REF  the reference's torch_ref.py (default: $TORCH_REF; the PyTorch
#              timing is skipped without it)
#
# Environment (all optional):
#   PYTHON                    interpreter with torch (CUDA) and the jax-cuda PJRT wheel (python3)
#   PJRT_PLUGIN_LIBRARY_PATH  folder holding pjrt_c_api_cuda_plugin.so (found from the
#                             jax-cuda13-pjrt / jax-cuda12-pjrt wheel when unset)
#   EPOCHS (3)  BATCH (128)  WORKERS (8)  DATA_PATH (Debian's dataset-fashion-mnist)
#   OUT (a new temporary folder)  BUDGET_S (280: each step gets a share)
#
# Exit status: 0 when every step ran, 1 when one failed (the table says which).
set -uo pipefail

TNN=${1:-${TNN:-./tnn}}
TORCH_REF=${2:-${TORCH_REF:-}}
PYTHON=${PYTHON:-python3}
EPOCHS=${EPOCHS:-3}
BATCH=${BATCH:-128}
WORKERS=${WORKERS:-8}
OUT=${OUT:-$(mktemp -d)}
BUDGET_S=${BUDGET_S:-280}
mkdir -p "$OUT"
START=$(date +%s)

say() { printf '== %s\n' "$*" >&2; }
# share N D: N/D of the seconds left, at least 20.
share() {
	local s=$(((BUDGET_S - ($(date +%s) - START)) * $1 / $2))
	echo $((s < 20 ? 20 : s))
}
# run SECONDS LOGFILE CMD...: run with a time limit, tee the output, keep the status.
run() {
	local limit=$1 log=$2
	shift 2
	say "$* (limit ${limit}s)"
	timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$log"
	return "${PIPESTATUS[0]}"
}

declare -a ROWS
row() { ROWS+=("$(printf '| %-52s | %-12s | %s |' "$1" "$2" "$3")"); }
FAILED=0
fail() { FAILED=1; row "$1" "FAILED" "$2"; }

if [[ ! -x $TNN ]]; then
	echo "gpu_check: no tnn binary at $TNN; build one with: go build -tags xla -o tnn ./cmd/tnn" >&2
	exit 1
fi

# --- the CUDA PJRT plugin -------------------------------------------------
# GoMLX looks for pjrt_c_api_<name>_plugin.so in PJRT_PLUGIN_LIBRARY_PATH;
# the jax wheel ships it as jax_plugins/xla_cuda13/xla_cuda_plugin.so, which
# finds its CUDA libraries relative to its own folder, so the name is given
# by a symlink in that folder (or, when it is read-only, by absolute path).
DEVICE=cuda
if [[ -z ${PJRT_PLUGIN_LIBRARY_PATH:-} ]]; then
	PLUGIN_DIR=$("$PYTHON" - <<'EOF' 2>/dev/null
import importlib.util, os
spec = importlib.util.find_spec("jax_plugins")
for root in (spec.submodule_search_locations if spec else []):
    for v in ("xla_cuda13", "xla_cuda12"):
        d = os.path.join(root, v)
        if os.path.exists(os.path.join(d, "xla_cuda_plugin.so")):
            print(d)
            raise SystemExit
EOF
	)
	if [[ -z $PLUGIN_DIR ]]; then
		PLUGIN_DIR=$(find / -xdev -path '*/jax_plugins/xla_cuda1*/xla_cuda_plugin.so' -print -quit 2>/dev/null | xargs -r dirname)
	fi
	if [[ -z $PLUGIN_DIR ]]; then
		echo "gpu_check: no CUDA PJRT plugin found; pip install jax-cuda13-pjrt (or set PJRT_PLUGIN_LIBRARY_PATH)" >&2
		exit 1
	fi
	if [[ -e $PLUGIN_DIR/pjrt_c_api_cuda_plugin.so ]] || ln -sf xla_cuda_plugin.so "$PLUGIN_DIR/pjrt_c_api_cuda_plugin.so" 2>/dev/null; then
		export PJRT_PLUGIN_LIBRARY_PATH=$PLUGIN_DIR
	else
		DEVICE="xla:$PLUGIN_DIR/xla_cuda_plugin.so"
	fi
	say "CUDA plugin: $PLUGIN_DIR (device $DEVICE)"
fi
export GOMLX_NO_AUTO_INSTALL=1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2

DATA_ARGS=(--dataset fashion-mnist)
[[ -n ${DATA_PATH:-} ]] && DATA_ARGS+=(--data_path "$DATA_PATH")

# --- 1. step timing: tnn on the GPU ----------------------------------------
# Warm-up steps include the first compile (~15 s for ResNet-20).
TNN_IPS=""
if run "$(share 1 5)" "$OUT/bench.log" "$TNN" bench train --device "$DEVICE" --arch tern_resnet20 \
	--batch_size "$BATCH" --steps 50 --warmup 5 --tex 1; then
	TNN_IPS=$(sed -n 's/^img_per_s=\([0-9.]*\).*/\1/p' "$OUT/bench.log" | tail -1)
	row "tnn bench train --device $DEVICE (tern_resnet20, batch $BATCH)" "$TNN_IPS" "train steps/s × batch after 5 warm-up steps"
else
	fail "tnn bench train --device $DEVICE" "see $OUT/bench.log"
fi

# --- 2. step timing: PyTorch on the same GPU -------------------------------
TORCH_IPS=""
if [[ -n $TORCH_REF ]]; then
	if run "$(share 1 4)" "$OUT/torch.log" "$PYTHON" "$TORCH_REF" --bench 20 --cuda --tex 1 --batch "$BATCH"; then
		TORCH_IPS=$(sed -n 's/.*: \([0-9.]*\) img\/s$/\1/p' "$OUT/torch.log" | tail -1)
		row "torch_ref.py --bench 20 --cuda --tex 1 (batch $BATCH)" "$TORCH_IPS" "$(head -c 60 "$OUT/torch.log" | head -1)"
	else
		fail "torch_ref.py --bench 20 --cuda --tex 1" "see $OUT/torch.log"
	fi
else
	row "torch_ref.py --bench 20 --cuda --tex 1" "skipped" "pass its path as the second argument or TORCH_REF"
fi

# --- 3. a real run: Fashion-MNIST on the GPU --------------------------------
SAVE="$OUT/fashion-mnist_tern_resnet20"
if run "$(share 3 4)" "$OUT/train.log" "$TNN" train --device "$DEVICE" "${DATA_ARGS[@]}" --arch tern_resnet20 \
	--epochs "$EPOCHS" --batch_size "$BATCH" --workers "$WORKERS" --lr_schedule cosine --save_path "$SAVE"; then
	LAST=$(grep -E '^epoch [0-9]+/' "$SAVE/log_seed_5000.txt" | tail -1)
	EPOCH_IPS=$(sed -n 's/.*(\([0-9]*\) img\/s).*/\1/p' <<<"$LAST")
	TOP1=$(sed -n 's/.*test_acc \([0-9.]*\).*/\1/p' <<<"$LAST")
	WALL=$(sed -n 's/.*"wall_seconds": *\([0-9.]*\).*/\1/p' "$SAVE/summary.json")
	row "tnn train --device $DEVICE, fashion-mnist, $EPOCHS epochs" "$EPOCH_IPS" "last epoch img/s incl. data loading; test top-1 $TOP1; wall ${WALL%.*} s incl. compiles"
else
	fail "tnn train --device $DEVICE, fashion-mnist" "see $OUT/train.log"
fi

# --- 4. the GPU checkpoint on the CPU engine --------------------------------
if [[ -f $SAVE/checkpoint.safetensors ]]; then
	if run "$(share 1 1)" "$OUT/eval.log" "$TNN" eval --device cpu "${DATA_ARGS[@]}" --resume "$SAVE/checkpoint.safetensors"; then
		CPU_TOP1=$(sed -n 's/^top1=\([0-9.]*\).*/\1/p' "$OUT/eval.log" | tail -1)
		row "tnn eval --device cpu of the GPU checkpoint" "—" "test top-1 $CPU_TOP1 (GPU run: ${TOP1:-?})"
	else
		fail "tnn eval --device cpu of the GPU checkpoint" "see $OUT/eval.log"
	fi
fi

if [[ -n $TNN_IPS && -n $TORCH_IPS ]]; then
	row "tnn / torch, train steps" "$(awk -v a="$TNN_IPS" -v b="$TORCH_IPS" 'BEGIN { printf "%.2f×", a / b }')" "same GPU, same run"
fi

echo
echo "gpu_check: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1), $(($(date +%s) - START)) s, outputs in $OUT"
printf '| %-52s | %-12s | %s |\n' "what" "img/s" "notes"
printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..54})" "$(printf -- '-%.0s' {1..14})" "-------"
printf '%s\n' "${ROWS[@]}"
exit $FAILED
