#!/usr/bin/env bash
# Fine-tuning, shown on synthetic corpora (recipes/custom/README.md, "Fine-tuning a pretrained
# model"): pre-train on a source corpus, fine-tune on a small target corpus made with other
# generator settings, and compare with training the target corpus from scratch on the same budget.
#
#   bash recipes/custom/local/finetune_demo.sh                  # all stages
#   bash recipes/custom/local/finetune_demo.sh --stage 2        # the target runs again
#
# Stages: 0 corpora + the mixed train dir, 1 pre-training, 2 the target runs (from scratch,
# fine-tuned, fine-tuned with source data mixed in), 3 extraction + cosine scoring of every
# system on the target test trials (the pre-trained net as it is, too), 4 results table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."

stage=0
stop_stage=4
data=data
exp=exp/finetune_demo
pretrain_epochs=6
# The recipe's x-vector layout at a quarter of the published width (128 x 4, 384; 0.50 M
# parameters) for every run here, so the whole demonstration takes minutes on 2 CPU cores.
width="[128,128,128,128,384]"
# shellcheck source=recipes/lib.sh
. recipes/lib.sh
parse_options "$@"

src=$data/ft_source   # 300 speakers x 8 utterances, 2-6 s, 16 kHz, voices of seed 0
tgt=$data/ft_target   # 40 speakers x 6 utterances, 1.5-4 s, 8 kHz (telephone band), voices of seed 1
mix=$data/ft_target_mix
mkdir -p "$exp"

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  echo "== stage 0: corpora"
  [ -f "$src/train/wav.scp" ] || python scripts/make_synthetic_corpus.py --out "$src" --train-speakers 300 \
    --train-utts 8 --test-speakers 20 --test-utts 10 --dev-speakers 20 --dev-utts 8 --seed 0
  [ -f "$tgt/train/wav.scp" ] || python scripts/make_synthetic_corpus.py --out "$tgt" --train-speakers 40 \
    --train-utts 6 --test-speakers 40 --test-utts 10 --dev-speakers 10 --dev-utts 6 --min-sec 1.5 \
    --max-sec 4.0 --sample-rate 8000 --seed 1
  # target + 100 source speakers with 4 utterances each (ids prefixed: the speakers stay apart)
  python scripts/combine_data_dirs.py "$tgt/train" "$src/train" --out "$mix/train" --prefix tgt src \
    --max-speakers all 100 --max-utts-per-speaker all 4
  rm -rf "$mix/dev" && cp -r "$tgt/dev" "$mix/dev"
fi

net=(model.channels="$width")
common=(data.batch_size=32 data.resample=true trainer.enable_progress_bar=false "${net[@]}")
if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "== stage 1: pre-training on $src"
  t=$(timer)
  xvector-train experiment=synthetic_xvector_aam paths.data_dir="$src" paths.output_dir="$exp/pretrain" \
    trainer.max_epochs="$pretrain_epochs" trainer.enable_progress_bar=false "${net[@]}"
  echo "pretrain $(( $(timer) - t )) s" > "$exp/time_pretrain"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "== stage 2: target runs (6 epochs each, batch 32)"
  t=$(timer)
  xvector-train experiment=synthetic_xvector_aam paths.data_dir="$tgt" paths.output_dir="$exp/scratch" \
    trainer.max_epochs=6 "${common[@]}"
  echo "scratch $(( $(timer) - t )) s" > "$exp/time_scratch"; t=$(timer)
  xvector-train experiment=synthetic_xvector_aam_ft paths.data_dir="$tgt" paths.output_dir="$exp/finetune" \
    init_from="$exp/pretrain/checkpoints/last.ckpt" "${common[@]}"
  echo "finetune $(( $(timer) - t )) s" > "$exp/time_finetune"; t=$(timer)
  xvector-train experiment=synthetic_xvector_aam_ft paths.data_dir="$mix" paths.output_dir="$exp/finetune_mix" \
    init_from="$exp/pretrain/checkpoints/last.ckpt" "${common[@]}"
  echo "finetune_mix $(( $(timer) - t )) s" > "$exp/time_finetune_mix"
fi

systems=(pretrain scratch finetune finetune_mix)
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  echo "== stage 3: extract (last checkpoint of each run) and score the target test trials"
  for s in "${systems[@]}"; do
    ckpt=$exp/$s/checkpoints/last.ckpt
    xvector-extract ckpt_path="$ckpt" wav_scp="$tgt/test/wav.scp" output="$exp/$s/tgt_test.npz"
    xvector-extract ckpt_path="$ckpt" wav_scp="$tgt/train/wav.scp" output="$exp/$s/tgt_train.npz"
    xvector-score embeddings="$exp/$s/tgt_test.npz" trials="$tgt/test/trials" \
      mean_embeddings="$exp/$s/tgt_train.npz" output_dir="$exp/$s/scores_cosine"
  done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  python scripts/results_table.py --out "$exp/results.md" \
    "pre-trained on the source corpus, not fine-tuned=$exp/pretrain/scores_cosine" \
    "target only, from scratch (synthetic_xvector_aam, 6 epochs)=$exp/scratch/scores_cosine" \
    "fine-tuned (synthetic_xvector_aam_ft, 6 epochs)=$exp/finetune/scores_cosine" \
    "fine-tuned, source data mixed in (100 speakers x 4)=$exp/finetune_mix/scores_cosine"
  cat "$exp/results.md" "$exp"/time_* 2>/dev/null || true
fi
