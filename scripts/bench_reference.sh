#!/usr/bin/env bash
# Side-by-side speed of tnn against the references users would otherwise pick:
# PyTorch running the paper's method (torch_ref.py) and ONNX Runtime for float
# inference. Machines are shared and noisy, so the commands alternate, each is
# run ROUNDS times, and the table shows medians and the ratio tnn / reference.
#
# Usage:
#   TORCH_REF=path/to/torch_ref.py ORT_DIR=path/to/ort scripts/bench_reference.sh
#
#   TORCH_REF  torch_ref.py (needs a python with torch; PYTHON, default /usr/bin/python3)
#   ORT_DIR    folder with bench.js and node_modules (npm ci done); optional
#   TNN        tnn binary (default: built from this checkout into a temp dir)
#   THREADS    threads for every engine (default 2)
#   ROUNDS     repetitions of each command (default 3)
#   PAUSE      pgrep -f pattern of processes to SIGSTOP while measuring (optional)
set -euo pipefail

THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
PYTHON=${PYTHON:-/usr/bin/python3}
: "${TORCH_REF:?set TORCH_REF to the path of torch_ref.py}"

work=$(mktemp -d)
paused=""
cleanup() {
	if [ -n "$paused" ]; then kill -CONT $paused 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${TNN:-}" ]; then
	TNN=$work/tnn
	(cd "$(dirname "$0")/.." && go build -o "$TNN" ./cmd/tnn)
fi
"$TNN" export --random_init --arch tern_resnet20 --dataset cifar10 --out "$work/bench.tnn" >/dev/null
if [ -n "${PAUSE:-}" ]; then
	paused=$(pgrep -f "$PAUSE" | tr '\n' ' ' || true)
	if [ -n "$paused" ]; then kill -STOP $paused; fi
fi

record() { echo "$2" >>"$work/$1"; }
median() { sort -g "$work/$1" | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
rss() { awk '/Maximum resident set size/ {print $NF}' "$1"; }

for r in $(seq "$ROUNDS"); do
	echo "round $r/$ROUNDS" >&2
	for tex in 1 0; do
		arch=tern_resnet20
		[ "$tex" = 0 ] && arch=resnet20
		out=$(/usr/bin/time -v -o "$work/time" "$TNN" bench train --arch $arch --batch_size 128 --steps 10 --threads "$THREADS" | tail -n 1)
		record "tnn_train_$tex" "$(sed -n 's/.*img_per_s=\([0-9.]*\).*/\1/p' <<<"$out")"
		record "tnn_rss_$tex" "$(rss "$work/time")"
		out=$(/usr/bin/time -v -o "$work/time" "$PYTHON" "$TORCH_REF" --bench 10 --tex $tex --threads "$THREADS" 2>&1 | tail -n 1)
		record "torch_train_$tex" "$(sed -n 's/.*: \([0-9.]*\) img\/s.*/\1/p' <<<"$out")"
		record "torch_rss_$tex" "$(rss "$work/time")"
		# The two commands of a round ran back to back: their ratio cancels
		# the slow swings of a shared machine that separate medians keep.
		record "pair_train_$tex" "$(awk -v a="$(tail -n 1 "$work/tnn_train_$tex")" -v b="$(tail -n 1 "$work/torch_train_$tex")" 'BEGIN { if (b > 0) printf "%.3f", a / b }')"
	done
	for b in 128 1; do
		steps=8
		[ "$b" = 1 ] && steps=200
		out=$("$TNN" bench infer --arch resnet20 --batch_size $b --steps $steps --threads "$THREADS" | tail -n 1)
		record "tnn_infer_$b" "$(sed -n 's/.*img_per_s=\([0-9.]*\) ms_per_step=\([0-9.]*\).*/\1 \2/p' <<<"$out" | awk -v b=$b '{print (b==1) ? $2 : $1}')"
		out=$("$PYTHON" "$TORCH_REF" --infer $steps --batch $b --tex 0 --threads "$THREADS" 2>&1 | tail -n 1)
		record "torch_infer_$b" "$(sed -n 's/.*eval: \([0-9.]*\) img\/s, \([0-9.]*\) ms\/batch.*/\1 \2/p' <<<"$out" | awk -v b=$b '{print (b==1) ? $2 : $1}')"
	done
	for b in 128 1; do
		steps=8
		[ "$b" = 1 ] && steps=200
		for mode in exact int8; do
			flag=""
			[ "$mode" = int8 ] && flag=--int8
			out=$("$TNN" bench infer --model "$work/bench.tnn" $flag --batch_size $b --steps $steps --threads "$THREADS" | tail -n 1)
			record "packed_${mode}_$b" "$(sed -n 's/.*img_per_s=\([0-9.]*\) ms_per_step=\([0-9.]*\).*/\1 \2/p' <<<"$out" | awk -v b=$b '{print (b==1) ? $2 : $1}')"
		done
	done
	if [ -n "${ORT_DIR:-}" ]; then
		out=$(cd "$ORT_DIR" && node bench.js)
		record ort_infer_1 "$(sed -n 's/.*batch=1: \([0-9.]*\) ms\/batch.*/\1/p' <<<"$out")"
		record ort_infer_128 "$(sed -n 's/.*batch=128: [0-9.]* ms\/batch, \([0-9.]*\) img\/s.*/\1/p' <<<"$out")"
	fi
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
tt1=$(median tnn_train_1) pt1=$(median torch_train_1)
tt0=$(median tnn_train_0) pt0=$(median torch_train_0)
ti128=$(median tnn_infer_128) pi128=$(median torch_infer_128)
ti1=$(median tnn_infer_1) pi1=$(median torch_infer_1)
tr1=$(median tnn_rss_1) pr1=$(median torch_rss_1)
echo
echo "threads=$THREADS rounds=$ROUNDS (medians; ratio = tnn / reference, > 1 is better for img/s, < 1 for ms and KiB)"
printf '%-44s %12s %12s %8s\n' "what" "tnn" "reference" "ratio"
printf '%-44s %12s %12s %8s\n' "train tern_resnet20 b128 img/s vs torch" "$tt1" "$pt1" "$(ratio "$tt1" "$pt1")"
printf '%-44s %12s %12s %8s\n' "train resnet20 b128 img/s vs torch" "$tt0" "$pt0" "$(ratio "$tt0" "$pt0")"
printf '%-44s %12s %12s %8s\n' "peak RSS train tern_resnet20 b128 KiB" "$tr1" "$pr1" "$(ratio "$tr1" "$pr1")"
printf '%-44s %12s %12s %8s\n' "eval resnet20 b128 img/s vs torch" "$ti128" "$pi128" "$(ratio "$ti128" "$pi128")"
printf '%-44s %12s %12s %8s\n' "eval resnet20 b1 ms vs torch" "$ti1" "$pi1" "$(ratio "$ti1" "$pi1")"
for tex in 1 0; do
	arch=tern_resnet20
	[ "$tex" = 0 ] && arch=resnet20
	printf '%-44s %s (median %s)\n' "train $arch, ratio per round" "$(sort -g "$work/pair_train_$tex" | tr '\n' ' ')" "$(median "pair_train_$tex")"
done
if [ -n "${ORT_DIR:-}" ]; then
	oi128=$(median ort_infer_128) oi1=$(median ort_infer_1)
	printf '%-44s %12s %12s %8s\n' "eval resnet20 b128 img/s vs onnxruntime" "$ti128" "$oi128" "$(ratio "$ti128" "$oi128")"
	printf '%-44s %12s %12s %8s\n' "eval resnet20 b1 ms vs onnxruntime" "$ti1" "$oi1" "$(ratio "$ti1" "$oi1")"
	for mode in exact int8; do
		p128=$(median packed_${mode}_128) p1=$(median packed_${mode}_1)
		printf '%-44s %12s %12s %8s\n' "tnn infer $mode tern_resnet20 b128 img/s vs ort" "$p128" "$oi128" "$(ratio "$p128" "$oi128")"
		printf '%-44s %12s %12s %8s\n' "tnn infer $mode tern_resnet20 b1 ms vs ort" "$p1" "$oi1" "$(ratio "$p1" "$oi1")"
	done
fi
