#!/usr/bin/env sh
# A small experiment on any folder of images laid out as ImageNet's
# (train/<class>/*.jpg|jpeg|png and val/<class>/…, any number of classes):
# a ResNet-18 at a reduced image size, trained from scratch, then the
# ternary ResNet-18 fine-tuned from it — the ImageNet recipe at a scale a
# few CPU cores can run.
#
# Usage:
#   DATA=path/to/folder scripts/train_ImageFolder.sh [more tnn flags]
#
#   DATA        folder holding train/ and val/
#   IMAGE_SIZE  crop side (default 64; validation resizes to IMAGE_SIZE·256/224 first)
#   EPOCHS      epochs of each stage (default 30)
#   TNN         tnn binary (default: tnn on PATH)
set -eu

TNN=${TNN:-tnn}
data_path=${DATA:?set DATA to the folder holding train/ and val/}
size=${IMAGE_SIZE:-64}
epochs=${EPOCHS:-30}
name=$(basename "${data_path}")
fp=./save/${name}_resnet18_${size}
tern=./save/${name}_resnet18b_fq_lq_tex1_${size}

# Full precision from scratch: SGD, cosine learning rate.
"$TNN" train --dataset imagefolder --data_path "${data_path}" --arch resnet18 \
	--image_size "${size}" --epochs "${epochs}" --batch_size 64 \
	--learning_rate 0.1 --decay 0.0001 --save_path "${fp}" "$@"

# Ternary, fine-tuned from the best full-precision weights with Adam.
"$TNN" train --dataset imagefolder --data_path "${data_path}" --arch resnet18b_fq_lq_tex1 \
	--image_size "${size}" --epochs "${epochs}" --batch_size 64 \
	--optimizer Adam --learning_rate 0.0001 --decay 0.000005 \
	--resume "${fp}/model_best.safetensors" --fine_tune --save_path "${tern}" "$@"
