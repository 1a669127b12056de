#!/usr/bin/env bash
# Custom-corpus recipe: any data prepared with scripts/prepare_dir.py → trials → validate →
# train an x-vector → extract → score (cosine, and LDA + PLDA) → EER/minDCF. See README.md.
#
#   bash recipes/custom/run.sh --data data/mycorpus                      # all stages
#   bash recipes/custom/run.sh --data data/mycorpus --stage 2 --stop_stage 3
#   bash recipes/custom/run.sh --data data/mycorpus -- trainer.max_epochs=30   # Hydra overrides
#
# Expects <data>/train and <data>/test (and <data>/dev for validation EER during training;
# without it training runs without validation). Stages: 0 trial lists (for dev/test that have
# none) and validation of every data dir, 1 train, 2 extract, 3 score.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

stage=0
stop_stage=3
data=data/custom
exp=exp/custom
experiment=synthetic_xvector_aam   # the small x-vector; for thousands of speakers: vox2_xvector_aam
targets=5000
nontargets=5000
sample_rate=16000
init_from=""   # fine-tune: a checkpoint or model directory to start from (README: Fine-tuning)
# shellcheck source=recipes/lib.sh
. recipes/lib.sh
parse_options "$@"

for d in train test; do
  [ -f "$data/$d/wav.scp" ] || { echo "$data/$d/wav.scp missing: run scripts/prepare_dir.py first (see recipes/custom/README.md)" >&2; exit 1; }
done
dirs=("$data/train" "$data/test")
val=()
if [ -d "$data/dev" ]; then
  dirs+=("$data/dev")
else
  val=(data.val_dir=null)
  echo "no $data/dev: training without validation EER"
fi
run_dir=$exp/xvector
mkdir -p "$exp"

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  echo "== stage 0: trial lists and validation"
  for d in "$data/test" "$data/dev"; do
    if [ -d "$d" ] && [ ! -f "$d/trials" ]; then
      # --clip: a small dev set gets all its pairs rather than an error
      python scripts/make_trials.py "$d" --targets "$targets" --nontargets "$nontargets" --clip
    fi
  done
  xvector-validate "${dirs[@]}" --sample-rate "$sample_rate"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "== stage 1: train ($experiment) -> $run_dir"
  init=()
  [ -z "$init_from" ] || init=(init_from="$init_from")
  xvector-train experiment="$experiment" data=custom paths.data_dir="$data" paths.output_dir="$run_dir" \
    data.sample_rate="$sample_rate" "${init[@]}" "${val[@]}" "${overrides[@]}"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "== stage 2: extract embeddings"
  ckpt=$run_dir/checkpoints/last.ckpt
  xvector-extract ckpt_path="$ckpt" wav_scp="$data/test/wav.scp" output="$run_dir/test.npz"
  xvector-extract ckpt_path="$ckpt" wav_scp="$data/train/wav.scp" output="$run_dir/train.npz"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  echo "== stage 3: scoring: cosine (training mean subtracted), and LDA + PLDA"
  xvector-score embeddings="$run_dir/test.npz" trials="$data/test/trials" \
    mean_embeddings="$run_dir/train.npz" output_dir="$run_dir/scores_cosine"
  xvector-score backend=plda train_embeddings="$run_dir/train.npz" train_utt2spk="$data/train/utt2spk" \
    embeddings="$run_dir/test.npz" trials="$data/test/trials" output_dir="$run_dir/scores_plda"
  python scripts/results_table.py --out "$exp/results.md" \
    "x-vector ($experiment), cosine=$run_dir/scores_cosine/metrics.json" \
    "x-vector ($experiment), LDA + PLDA=$run_dir/scores_plda/metrics.json"
fi
