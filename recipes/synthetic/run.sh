#!/usr/bin/env bash
# Synthetic recipe: generate a corpus → train an x-vector → extract → cosine-score → EER/minDCF,
# beside a no-network baseline (mean MFCC vector + cosine) on the same trials.
#
#   bash recipes/synthetic/run.sh                       # all stages
#   bash recipes/synthetic/run.sh --stage 2 --stop_stage 3
#   bash recipes/synthetic/run.sh -- trainer.max_epochs=2   # extra Hydra overrides for training
#
# Stages: 0 corpus, 1 train, 2 extract, 3 score, 4 multi-utterance enrolment + 1:N identification,
# 5 baseline + results tables.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

stage=0
stop_stage=5
data=data/synthetic
exp=exp/synthetic
experiment=synthetic_xvector_aam
corpus_args=""
enroll_utts=3          # stage 4: test utterances per enrolled speaker model
unknown_speakers=10    # stage 4: test speakers not enrolled (their utterances are non-mated searches)
# shellcheck source=recipes/lib.sh
. recipes/lib.sh
parse_options "$@"


run_dir=$exp/xvector
mkdir -p "$exp"
best_checkpoint() {  # the checkpoint with the best dev EER (training keeps one), else the last
  local ckpt
  ckpt=$(ls "$run_dir"/checkpoints/epoch*.ckpt 2>/dev/null | head -n 1 || true)
  echo "${ckpt:-$run_dir/checkpoints/last.ckpt}"
}
t_all=$(timer)

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  echo "== stage 0: synthetic corpus -> $data"
  t=$(timer)
  # shellcheck disable=SC2086
  python scripts/make_synthetic_corpus.py --out "$data" $corpus_args
  echo "corpus $(( $(timer) - t )) s" > "$exp/time_stage0"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "== stage 1: train ($experiment) -> $run_dir"
  t=$(timer)
  xvector-train experiment="$experiment" paths.data_dir="$data" paths.output_dir="$run_dir" "${overrides[@]}"
  echo "train $(( $(timer) - t )) s" > "$exp/time_stage1"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "== stage 2: extract embeddings"
  t=$(timer)
  ckpt=$(best_checkpoint)
  echo "checkpoint: $ckpt"
  # Training embeddings: their mean is subtracted before cosine scoring; with their speakers
  # they train the LDA + PLDA back-end and form the AS-norm cohort. The development set's
  # embeddings fit the calibration and choose the operating point.
  xvector-extract ckpt_path="$ckpt" wav_scp="$data/test/wav.scp" output="$run_dir/test.npz"
  xvector-extract ckpt_path="$ckpt" wav_scp="$data/dev/wav.scp" output="$run_dir/dev.npz"
  xvector-extract ckpt_path="$ckpt" wav_scp="$data/train/wav.scp" output="$run_dir/train.npz"
  echo "extract $(( $(timer) - t )) s" > "$exp/time_stage2"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  echo "== stage 3: scoring: cosine, cosine + AS-norm, LDA + PLDA (each calibrated on dev)"
  common=(embeddings="$run_dir/test.npz" trials="$data/test/trials"
    train_embeddings="$run_dir/train.npz" train_utt2spk="$data/train/utt2spk"
    calibration=logistic dev_embeddings="$run_dir/dev.npz" dev_trials="$data/dev/trials")
  xvector-score "${common[@]}" mean_embeddings="$run_dir/train.npz" output_dir="$run_dir/scores_cosine"
  # AS-norm cohort: the 600 training speakers' mean embeddings, top 50 (~8%; WeSpeaker keeps
  # 300 of 5994). 50 had the lowest dev minDCF(0.01) of 20/50/100/200/300/all.
  xvector-score "${common[@]}" mean_embeddings="$run_dir/train.npz" norm=asnorm norm.top_k=50 \
    output_dir="$run_dir/scores_cosine_asnorm"
  xvector-score "${common[@]}" backend=plda output_dir="$run_dir/scores_plda"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  echo "== stage 4: enrolment from $enroll_utts utterances (Avg, Concat) and 1:N identification"
  t=$(timer)
  enroll=$data/test_enroll
  n_test_speakers=$(cut -d' ' -f2 "$data/test/utt2spk" | sort -u | wc -l)
  if [ "$unknown_speakers" -gt $(( n_test_speakers / 2 )) ]; then  # small corpora: keep 3/4 enrolled
    unknown_speakers=$(( n_test_speakers / 4 ))
    echo "stage 4: $n_test_speakers test speakers: $unknown_speakers left unknown"
  fi
  # Models of the test speakers but $unknown_speakers from $enroll_utts random utterances each;
  # every other test utterance is a query, scored against every model (and searched for).
  python scripts/make_enroll_lists.py "$data/test" --enroll-utts "$enroll_utts" \
    --unknown-speakers "$unknown_speakers" --out "$enroll"
  common=(embeddings="$run_dir/test.npz" trials="$enroll/trials" enroll_map="$enroll/enroll.map"
    train_embeddings="$run_dir/train.npz" train_utt2spk="$data/train/utt2spk"
    calibration=logistic dev_embeddings="$run_dir/dev.npz" dev_trials="$data/dev/trials")
  # Avg: each model is the mean of its utterances' normalised embeddings (PLDA: n-utterance LLR)
  xvector-score "${common[@]}" mean_embeddings="$run_dir/train.npz" output_dir="$run_dir/scores_enroll_cosine"
  xvector-score "${common[@]}" backend=plda output_dir="$run_dir/scores_enroll_plda"
  # Concat: each model is one embedding of its utterances' audio joined
  xvector-enroll "$run_dir/store_concat.npz" --new --model "$(best_checkpoint)" --mode concat \
    --wav-scp "$data/test/wav.scp" --spk2utt "$enroll/enroll.map" --mean-embeddings "$run_dir/train.npz" \
    --save-embeddings "$run_dir/enroll_concat.npz"
  xvector-score "${common[@]}" mean_embeddings="$run_dir/train.npz" enroll_mode=concat \
    enroll_embeddings="$run_dir/enroll_concat.npz" output_dir="$run_dir/scores_enroll_concat_cosine"
  # 1:N: a store of the enrolled speakers (back end and calibration of stage 3), every query searched
  for be in cosine plda; do
    if [ $be = plda ]; then
      args=(--backend plda --train-embeddings "$run_dir/train.npz" --train-utt2spk "$data/train/utt2spk")
    else
      args=(--mean-embeddings "$run_dir/train.npz")
    fi
    xvector-enroll "$run_dir/store_$be.npz" --new --spk2utt "$enroll/enroll.map" --embeddings "$run_dir/test.npz" \
      "${args[@]}" --score-dir "$run_dir/scores_$be"
    xvector-identify "$run_dir/store_$be.npz" --embeddings "$run_dir/test.npz" --utt2spk "$enroll/query_utt2spk" \
      --top-k 5 --output-dir "$run_dir/identify_$be"
  done
  echo "enrolment + identification $(( $(timer) - t )) s" > "$exp/time_stage4"
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  echo "== stage 5: baseline (mean MFCC + cosine) and results"
  python scripts/mean_mfcc_embeddings.py --wav-scp "$data/test/wav.scp" --out "$exp/baseline/test.npz"
  python scripts/mean_mfcc_embeddings.py --wav-scp "$data/train/wav.scp" --out "$exp/baseline/train.npz"
  xvector-score embeddings="$exp/baseline/test.npz" trials="$data/test/trials" \
    mean_embeddings="$exp/baseline/train.npz" output_dir="$exp/baseline/scores_cosine"
  rows=("x-vector ($experiment), cosine=$run_dir/scores_cosine"
    "x-vector ($experiment), cosine + AS-norm=$run_dir/scores_cosine_asnorm"
    "x-vector ($experiment), LDA + PLDA=$run_dir/scores_plda"
    "baseline: mean MFCC, cosine=$exp/baseline/scores_cosine")
  ident=()
  if [ -f "$run_dir/scores_enroll_cosine/metrics.json" ]; then  # stage 4's rows, when it ran
    rows+=("x-vector, $enroll_utts-utterance models (Avg), cosine=$run_dir/scores_enroll_cosine"
      "x-vector, $enroll_utts-utterance models (Concat), cosine=$run_dir/scores_enroll_concat_cosine"
      "x-vector, $enroll_utts-utterance models (Avg), LDA + PLDA=$run_dir/scores_enroll_plda")
    ident=(--identification "x-vector, cosine, $enroll_utts-utterance models=$run_dir/identify_cosine"
      --identification "x-vector, LDA + PLDA, $enroll_utts-utterance models=$run_dir/identify_plda")
  fi
  python scripts/results_table.py --out "$exp/results.md" --det "$exp/det.png" "${rows[@]}" ${ident[@]+"${ident[@]}"}
fi
cat "$exp"/time_stage* 2>/dev/null || true
echo "total $(( $(timer) - t_all )) s (stages $stage-$stop_stage)"
