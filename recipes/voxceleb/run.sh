#!/usr/bin/env bash
# VoxCeleb recipe: VoxCeleb2 dev (m4a → flac) for training, VoxCeleb1 with the official
# Vox1-O/E/H trial lists for testing. See recipes/voxceleb/README.md (the corpora are not
# downloaded by this script: they need a licence agreement on the VoxCeleb site).
#
#   bash recipes/voxceleb/run.sh --vox1 /corpora/voxceleb1 --vox2 /corpora/voxceleb2
#   bash recipes/voxceleb/run.sh --stage 3 --stop_stage 4          # some stages only
#   bash recipes/voxceleb/run.sh --experiment vox_xvector_kaldi --backend plda --train_set vox2_dev_vox1_dev
#   bash recipes/voxceleb/run.sh -- trainer.devices=2 data.batch_size=128   # Hydra overrides
#
# Stages: 0 prepare (lists, trial lists, m4a → flac), 1 validate, 2 train, 3 extract (with the
# average of the last --num_avg epochs' weights when that many were kept, else last.ckpt),
# 4 score every trial list found (Vox1-O/E/H, cleaned and original) and write results.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

stage=0
stop_stage=4
vox1=
vox2=
vox2_flac=
data=data/voxceleb
exp=exp/voxceleb
experiment=vox2_xvector_aam
train_set=vox2_dev
backend=cosine        # cosine (training mean subtracted, + AS-norm) | plda (LDA + PLDA)
jobs=8
num_avg=10            # average the last N epochs' checkpoints before extraction (WeSpeaker: 10); 0: last.ckpt
# shellcheck source=recipes/lib.sh
. recipes/lib.sh
parse_options "$@"
[ -n "$vox2_flac" ] || vox2_flac=${vox2:+$vox2/flac}
run_dir=$exp/$experiment
mkdir -p "$exp"

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  echo "== stage 0: prepare VoxCeleb lists (VoxCeleb2 m4a -> flac with ffmpeg, $jobs jobs)"
  args=(--out "$data" --jobs "$jobs")
  [ -n "$vox1" ] && args+=(--vox1 "$vox1")
  [ -n "$vox2" ] && args+=(--vox2 "$vox2" --vox2-flac "$vox2_flac")
  [ ${#args[@]} -gt 4 ] || { echo "stage 0 needs --vox1 and/or --vox2" >&2; exit 2; }
  python recipes/voxceleb/local/prepare_voxceleb.py "${args[@]}"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "== stage 1: validate (headers only: decoding 1.2 M files takes hours; drop --headers-only to do it)"
  xvector-validate "$data/$train_set" "$data/vox1" --headers-only --min-duration 1.0 --jobs "$jobs"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "== stage 2: train ($experiment on $train_set) -> $run_dir"
  xvector-train experiment="$experiment" paths.data_dir="$data" data.train_dir="$data/$train_set" \
    paths.output_dir="$run_dir" "${overrides[@]}"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  echo "== stage 3: extract embeddings (VoxCeleb1, and the training set for the mean / back-end / cohort)"
  device=cpu; python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" && device=cuda
  ckpt=$run_dir/checkpoints/last.ckpt
  kept=$(ls "$run_dir"/checkpoints/step*.ckpt 2>/dev/null | wc -l)
  if [ "$num_avg" -gt 0 ] && [ "$kept" -ge "$num_avg" ]; then
    python scripts/average_checkpoints.py --dir "$run_dir/checkpoints" --last "$num_avg" --out "$run_dir/avg$num_avg.ckpt"
    ckpt=$run_dir/avg$num_avg.ckpt
  fi
  echo "checkpoint: $ckpt"
  xvector-extract ckpt_path="$ckpt" wav_scp="$data/vox1/wav.scp" output="$run_dir/vox1.npz" device=$device
  xvector-extract ckpt_path="$ckpt" wav_scp="$data/$train_set/wav.scp" output="$run_dir/train.npz" device=$device
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  echo "== stage 4: score ($backend) every Vox1 trial list"
  rows=()
  for trials in "$data"/vox1/trials_*; do
    name=${trials##*/trials_}
    if [ "$backend" = plda ]; then
      xvector-score backend=plda train_embeddings="$run_dir/train.npz" train_utt2spk="$data/$train_set/utt2spk" \
        embeddings="$run_dir/vox1.npz" trials="$trials" output_dir="$run_dir/scores_plda_$name"
      rows+=("$name, LDA + PLDA=$run_dir/scores_plda_$name/metrics.json")
    else
      xvector-score embeddings="$run_dir/vox1.npz" trials="$trials" mean_embeddings="$run_dir/train.npz" \
        output_dir="$run_dir/scores_cosine_$name"
      xvector-score norm=asnorm embeddings="$run_dir/vox1.npz" trials="$trials" mean_embeddings="$run_dir/train.npz" \
        train_embeddings="$run_dir/train.npz" train_utt2spk="$data/$train_set/utt2spk" \
        output_dir="$run_dir/scores_asnorm_$name"
      rows+=("$name, cosine=$run_dir/scores_cosine_$name/metrics.json"
             "$name, cosine + AS-norm=$run_dir/scores_asnorm_$name/metrics.json")
    fi
  done
  python scripts/results_table.py --out "$exp/results_${experiment}_$backend.md" "${rows[@]}"
fi
