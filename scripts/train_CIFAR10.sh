#!/usr/bin/env sh
# The seed's train_CIFAR10.sh with tnn: the paper's CIFAR-10 recipe (SGD with
# Nesterov momentum 0.9, lr 0.1, decay 3e-4, batch 128, 200 epochs, lr × 0.1,
# 0.1, 0.5 at epochs 80, 120, 160), training a fully ternarized ResNet-20 from
# scratch. CIFAR-10 is downloaded (and checksummed) first unless already there.
#
# Usage:
#   scripts/train_CIFAR10.sh [more tnn flags]
#
#   DATA    folder for the dataset (default ./data; the archive goes to DATA/cifar10)
#   MODEL   architecture (default tern_resnet20; also tern_resnet32/44/56/110 and
#           the full-precision resnet20 … resnet110)
#   TNN     tnn binary (default: tnn on PATH)
#   LABEL   extra tag in the save folder's name (default test)
#
# Extra flags are passed on, e.g. --tex 2 --threads 8, or --resume CKPT to continue.
set -eu

TNN=${TNN:-tnn}
data_path=${DATA:-./data}
model=${MODEL:-tern_resnet20}
dataset=cifar10
epochs=200
batch_size=128
optimizer=SGD
label_info=${LABEL:-test}
DATE=$(date +%Y-%m-%d)
save_path=./save/${DATE}/${dataset}_${model}_${epochs}_${label_info}

"$TNN" download --dataset ${dataset} --data_path "${data_path}"

"$TNN" train --dataset ${dataset} \
	--data_path "${data_path}" --arch "${model}" \
	--save_path "${save_path}" \
	--epochs ${epochs} --learning_rate 0.1 --optimizer ${optimizer} \
	--schedule 80 120 160 --gammas 0.1 0.1 0.5 \
	--batch_size ${batch_size} --workers 2 \
	--print_freq 100 --decay 0.0003 "$@"
