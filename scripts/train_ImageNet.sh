#!/usr/bin/env sh
# The seed's train_ImageNet.sh with tnn: the paper's ImageNet recipe (Adam,
# lr 1e-4, decay 5e-6, batch 256, 50 epochs, lr × 0.2/0.2/0.5 at epochs
# 30/40/45), fine-tuning a ternary ResNet-18 from torchvision's pretrained
# full-precision weights.
#
# Usage:
#   IMAGENET=path/to/imagenet scripts/train_ImageNet.sh [more tnn flags]
#
#   IMAGENET    folder holding train/ and val/, one subfolder per class (val/
#               sorted into class folders as well, e.g. with the usual valprep.sh)
#   PRETRAINED  a .pth/.safetensors to fine-tune from instead of torchvision's
#               ResNet-18 weights, which --pretrained downloads once (sha256-checked)
#               into $TNN_HOME/checkpoints or the user cache folder
#   MODEL       architecture (default resnet18b_fq_lq_tern_tex_4, the seed's;
#               resnet18b_fq_lq_tex1 is t_ex = 1, resnet18b_ff_lf_tex1 keeps the
#               first and last layers in full precision)
#   EVALUATE    a checkpoint: only report its top-1/top-5 on val/ (the seed
#               script's --evaluate) instead of training
#   TNN         tnn binary (default: tnn on PATH); build it with
#               'go build -tags turbojpeg ./cmd/tnn' to decode JPEG with libjpeg-turbo
#   WORKERS     decoding goroutines (default 8)
#   LABEL       extra tag in the save folder's name (default test)
#
# Extra flags are passed on, e.g. --image_size 128 --subset 100000 --threads 16.
set -eu

TNN=${TNN:-tnn}
imagenet_path=${IMAGENET:?set IMAGENET to the folder holding train/ and val/}
model=${MODEL:-resnet18b_fq_lq_tern_tex_4}
dataset=imagenet
epochs=50
batch_size=256
optimizer=Adam
workers=${WORKERS:-8}
label_info=${LABEL:-test}

if [ -n "${EVALUATE:-}" ]; then
	exec "$TNN" eval --dataset ${dataset} --data_path "${imagenet_path}" \
		--resume "${EVALUATE}" --batch_size ${batch_size} --workers "${workers}" "$@"
fi

if [ -n "${PRETRAINED:-}" ]; then
	set -- --fine_tune --resume "${PRETRAINED}" "$@"
else
	set -- --pretrained "$@"
fi
DATE=$(date +%Y-%m-%d)
save_path=./save/${DATE}/${dataset}_${model}_${epochs}_${label_info}

"$TNN" train --dataset ${dataset} \
	--data_path "${imagenet_path}" --arch "${model}" \
	--save_path "${save_path}" \
	--epochs ${epochs} --learning_rate 0.0001 --optimizer ${optimizer} \
	--schedule 30 40 45 --gammas 0.2 0.2 0.5 \
	--batch_size ${batch_size} --workers "${workers}" \
	--print_freq 100 --decay 0.000005 "$@"
