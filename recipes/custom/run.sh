#!/usr/bin/env bash
# Custom-corpus recipe: any data prepared with scripts/prepare_dir.py → trials → validate →
# train an x-vector → extract → score (cosine, and LDA + PLDA on the training embeddings and
# corrupted copies of them) → EER/minDCF, the primary back end chosen on dev. See README.md.
#
#   bash recipes/custom/run.sh --data data/mycorpus                      # all stages
#   bash recipes/custom/run.sh --data data/mycorpus --stage 2 --stop_stage 3
#   bash recipes/custom/run.sh --data data/mycorpus -- data.batch_size=128   # Hydra overrides
#
# Expects <data>/train and <data>/test (and <data>/dev for validation EER during training;
# without it training runs its fixed schedule without validation). Stages: 0 trial lists (for
# dev/test that have none) and validation of every data dir, 1 train, 2 extract (and corrupt one
# copy of each training utterance for the PLDA), 3 score test (and dev, which picks the primary
# back end: results.md lists it first).
#
# The defaults (configs/experiment/custom_ecapa_aam.yaml, and the schedule below) were chosen
# on the dev splits of the robustness benchmark (recipes/robust/README.md): corpora of other
# voices, levels, silences, channels and noise than the synthetic recipe's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

stage=0
stop_stage=3
data=data/custom
exp=exp/custom
experiment=custom_ecapa_aam    # custom_xvector_aam: the half-width x-vector; thousands of speakers and a GPU: vox2_xvector_aam
crops=60000        # training crops in all for a corpus of up to ...
crops_utts=480     # ... this many utterances (above: crops * sqrt(utterances / crops_utts));
                   # epochs = crops / training utterances ...
min_epochs=10      # ... but at least this many ...
max_epochs=200     # ... and at most this many ...
budget_min=auto    # ... and no more than fit in this many minutes of training, timed on the first
                   # epochs (the LR schedule shortened to match; 0: no budget). auto: 10 up to
                   # crops_utts utterances, none above (xvector/training/corpus_schedule.py)
validations=5      # validation passes over dev during training (when there is a dev set)
average=0          # >0: keep K checkpoints over the last 20 % of the epochs and extract with their average
plda_copies=2      # corrupted copies of each training utterance (reverb / noise / music / babble, the
                   # training augmentation's kinds) the PLDA also trains on, as Kaldi's; 0: clean only
                   # (2 beat 1 on dev and test at 96 and 240 speakers: recipes/robust/README.md)
plda_augment_config=configs/augment/synthetic.yaml  # their kinds and SNRs (stand-ins made under <exp>/augment)
plda_speakers=64   # without a dev set, the primary back end is PLDA from this many training speakers
                   # (else cosine: it won at 24 and 48, PLDA at 96 and more); with one, the lower dev EER
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
n_utts=$(wc -l < "$data/train/wav.scp")
plan=$(python -m xvector.training.corpus_schedule --utts "$n_utts" --crops "$crops" --crops-utts "$crops_utts" \
  --min-epochs "$min_epochs" --max-epochs "$max_epochs" --budget-min "$budget_min")
read -r epochs crops_in_all minutes limit <<< "$plan"
schedule=(trainer.max_epochs="$epochs")
budget=(callbacks.time_budget.minutes="$minutes")
[ "$minutes" != 0 ] || budget=(callbacks.time_budget.minutes=null)
if [ -n "$init_from" ]; then  # fine-tuning: the experiment's own (short) schedule, validated each epoch
  epochs=1 schedule=()
fi
if [ -d "$data/dev" ]; then
  dirs+=("$data/dev")
  every=$(( epochs / (validations > 0 ? validations : 1) ))
  [ "$validations" -gt 0 ] || every=$(( epochs + 1 ))
  val=(trainer.check_val_every_n_epoch=$(( every > 0 ? every : 1 )))
else
  # No dev set: a fixed schedule, no validation and no best-by-val/eer checkpoint (so nothing
  # waits for a metric that never comes).
  val=(data.val_dir=null callbacks.model_checkpoint=null trainer.limit_val_batches=0)
  echo "no $data/dev: training $epochs epochs without validation"
fi
run_dir=$exp/xvector
mkdir -p "$exp"
ckpt=$run_dir/checkpoints/last.ckpt
keep=()
if [ "$average" -gt 0 ]; then  # periodic checkpoints every (epochs / 5 / K) epochs: K of them span the last 20 %
  step=$(( epochs / (5 * average) ))
  keep=(callbacks.periodic_checkpoint.save_top_k="$average" +callbacks.periodic_checkpoint.every_n_epochs=$(( step > 0 ? step : 1 ))
        +callbacks.periodic_checkpoint.save_on_train_epoch_end=true)
  ckpt=$run_dir/averaged.ckpt
fi

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
  echo "== stage 1: train ($experiment${schedule:+, $epochs epochs over $n_utts utterances}, $limit) -> $run_dir"
  if [ -z "$init_from" ] && [ "$n_utts" -gt "$crops_utts" ]; then  # --crops is not the total here: say so
    echo "   --crops $crops is for up to --crops_utts $crops_utts utterances; $n_utts get $crops x sqrt($n_utts / $crops_utts) = $crops_in_all crops in all, $epochs epochs"
  fi
  init=()
  [ -z "$init_from" ] || init=(init_from="$init_from")
  xvector-train experiment="$experiment" data=custom paths.data_dir="$data" paths.output_dir="$run_dir" \
    paths.augment_dir="$exp/augment" data.sample_rate="$sample_rate" "${schedule[@]}" \
    "${budget[@]}" "${keep[@]}" "${init[@]}" "${val[@]}" "${overrides[@]}"
  if [ "$average" -gt 0 ]; then  # step<N>.ckpt names are zero-padded: name order is step order
    mapfile -t periodic < <(ls "$run_dir"/checkpoints/step*.ckpt | tail -n "$average")
    python scripts/average_checkpoints.py "${periodic[@]}" --out "$ckpt"
  fi
  # the checkpoint the later stages (and recipes/robust) embed with, as an absolute path so that
  # it still names the file when read from another directory or clone
  realpath -m "$ckpt" > "$run_dir/model_path.tmp" && mv "$run_dir/model_path.tmp" "$run_dir/model_path"
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "== stage 2: extract embeddings"
  xvector-extract ckpt_path="$ckpt" wav_scp="$data/test/wav.scp" output="$run_dir/test.npz"
  xvector-extract ckpt_path="$ckpt" wav_scp="$data/train/wav.scp" output="$run_dir/train.npz"
  [ ! -d "$data/dev" ] || xvector-extract ckpt_path="$ckpt" wav_scp="$data/dev/wav.scp" output="$run_dir/dev.npz"
  if [ "$plda_copies" -gt 0 ]; then
    has_utts "$exp/train_aug" $(( plda_copies * n_utts )) || python scripts/augment_data_dir.py "$data/train" "$exp/train_aug" \
      --augment-dir "$exp/augment" --config "$plda_augment_config" --copies "$plda_copies" --sample-rate "$sample_rate"
    xvector-extract ckpt_path="$ckpt" wav_scp="$exp/train_aug/wav.scp" output="$run_dir/train_aug.npz"
  fi
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  echo "== stage 3: scoring: cosine (training mean subtracted), and LDA + PLDA"
  plda_train=(train_embeddings="$run_dir/train.npz" train_utt2spk="$data/train/utt2spk")
  plda_name="LDA + PLDA"
  if [ "$plda_copies" -gt 0 ]; then  # the clean embeddings and those of their corrupted copies
    plda_train=(train_embeddings="['$run_dir/train.npz','$run_dir/train_aug.npz']"
                train_utt2spk="['$data/train/utt2spk','$exp/train_aug/utt2spk']")
    plda_name="LDA + PLDA (trained on clean + corrupted copies)"
  fi
  declare -A backend_name=([cosine]="cosine (training mean subtracted)" [plda]="$plda_name")
  score_both() {  # <embeddings> <trials> <output prefix>: <prefix>cosine/ and <prefix>plda/
    xvector-score mean_embeddings="$run_dir/train.npz" embeddings="$1" trials="$2" output_dir="${3}cosine"
    xvector-score backend=plda "${plda_train[@]}" embeddings="$1" trials="$2" output_dir="${3}plda"
  }
  score_both "$run_dir/test.npz" "$data/test/trials" "$run_dir/scores_"
  [ ! -d "$data/dev" ] || score_both "$run_dir/dev.npz" "$data/dev/trials" "$run_dir/dev_scores_"
  # The primary back end: the one with the lower EER on dev; without a dev set, by the number of
  # training speakers (the robustness benchmark: cosine won with 24 and 48, PLDA on clean + corrupted
  # copies with 96, 240 and 1000; recipes/robust/README.md)
  if [ -d "$data/dev" ]; then
    primary=$(python -c 'import json, sys; e = [json.load(open(p))["eer"] for p in sys.argv[1:]]; print("plda" if e[1] < e[0] else "cosine")' \
      "$run_dir/dev_scores_cosine/metrics.json" "$run_dir/dev_scores_plda/metrics.json")
    why="the lower EER on $data/dev"
  else
    n_spk=$(awk '{print $2}' "$data/train/utt2spk" | sort -u | wc -l)
    primary=cosine; [ "$n_spk" -lt "$plda_speakers" ] || primary=plda
    why="no dev set: $n_spk training speakers, PLDA from $plda_speakers (--plda_speakers)"
  fi
  echo "$primary" > "$run_dir/primary_backend.tmp" && mv "$run_dir/primary_backend.tmp" "$run_dir/primary_backend"
  echo "primary back end: ${backend_name[$primary]} ($why)"
  other=plda; [ "$primary" = cosine ] || other=cosine
  python scripts/results_table.py --out "$exp/results.md" \
    "x-vector ($experiment), ${backend_name[$primary]}: primary ($why)=$run_dir/scores_$primary/metrics.json" \
    "x-vector ($experiment), ${backend_name[$other]}=$run_dir/scores_$other/metrics.json"
fi
