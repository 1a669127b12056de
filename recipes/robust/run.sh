#!/usr/bin/env bash
# Robustness benchmark: small corpora unlike the ones the recipes were tuned on (TTS voices and
# unseen generator settings, few speakers, level spread, digital silence, channels, noisy test
# copies), each system trained on the same data with the same 2-core budget:
#   xvector        the custom-corpus recipe with its defaults (recipes/custom/run.sh, no overrides)
#   SpeechBrain    its x-vector with its VoxCeleb recipe's settings (needs the bench extra)
#   mean MFCC      a no-training baseline
# scored on clean, same-language, noisy and harsher-channel trials (cosine after the training mean,
# and PLDA).
#
#   bash recipes/robust/run.sh                          # every corpus, dev split (for choices)
#   bash recipes/robust/run.sh --split test             # the reported run: test read once
#   bash recipes/robust/run.sh --voices formant --stage 1 -- model=xvector   # overrides for ours
#
# Stages: 0 corpora, 1 train ours, 2 evaluate ours, 3 baseline, 4 SpeechBrain, 5 results table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

stage=0
stop_stage=5
voices="tts formant"     # tts needs espeak-ng (apt-get install espeak-ng); skipped without it
data=data/robust
exp=exp/robust
split=dev
budget_min=12            # SpeechBrain's training budget (ours is bounded by its own defaults)
peer_epochs=""           # SpeechBrain: a fixed epoch count; empty: the epochs that fit the budget, lr annealed over them
seed=1                   # corpus seed of the first voice source; the next one gets seed + 1, ...
corpus_args=""          # extra options of scripts/make_robust_corpus.py (e.g. "--train-speakers 100")
custom_args=""          # extra options of recipes/custom/run.sh (e.g. "--crops 30000")
peer_args=""            # extra options of local/speechbrain_xvector.py
peer_variants="plain augment"  # SpeechBrain's recipe as it runs by default, and with its augmentation
channel=1                # 1: copies of dev and test through a harsher random channel each
                         # (local/harsh_channel.py), scored as the condition 'channel'; 0: none
plda_copies=2            # corrupted copies of each training utterance every system's PLDA also trains on
                         # (train_aug; recipes/custom's --plda_copies)
# shellcheck source=recipes/lib.sh
. recipes/lib.sh
parse_options "$@"

corpora=()
declare -A corpus_seed
n_voices=0
for v in $voices; do
  corpus_seed[$v]=$(( seed + n_voices ))
  n_voices=$(( n_voices + 1 ))
  if [ "$v" = tts ] && ! command -v espeak-ng > /dev/null; then
    echo "espeak-ng is not installed: skipping the tts corpus (apt-get install espeak-ng)" >&2
    continue
  fi
  corpora+=("$v")
done
mkdir -p "$exp"

for v in "${corpora[@]}"; do
  d=$data/$v
  e=$exp/$v
  mkdir -p "$e"
  if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ] && [ ! -f "$d/test_noisy/trials" ]; then
    echo "== stage 0: $v corpus -> $d"
    # shellcheck disable=SC2086
    python scripts/make_robust_corpus.py --out "$d" --voices "$v" --seed "${corpus_seed[$v]}" $corpus_args > "$e/corpus.json"
  fi
  if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ] && [ "$channel" -gt 0 ]; then
    # every utterance through its own channel, harsher than the corpus's (EQ, band limits): a
    # front-end that keeps the channel loses here; the splits get their own seeds
    for s_seed in dev:7 test:8; do
      s=${s_seed%:*}
      [ -f "$d/${s}_channel/wav.scp" ] || python recipes/robust/local/harsh_channel.py "$d/$s" "$d/${s}_channel" \
        --seed "${s_seed#*:}"
    done
  fi
  if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ] && [ "$plda_copies" -gt 0 ] && \
     ! has_utts "$d/train_aug" $(( plda_copies * $(wc -l < "$d/train/wav.scp") )); then
    # corrupted copies of each training utterance (reverb / noise / music / babble of the
    # training augmentation's stand-ins): every system's PLDA is also trained on them
    echo "== stage 0: $plda_copies augmented copies of $d/train -> $d/train_aug"
    python scripts/augment_data_dir.py "$d/train" "$d/train_aug" --augment-dir "$e/augment" --copies "$plda_copies"
  fi
  if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
    echo "== stage 1: xvector via recipes/custom/run.sh ($v)"
    t=$(timer)
    # shellcheck disable=SC2086
    bash recipes/custom/run.sh --data "$d" --exp "$e" --stop_stage 1 $custom_args -- "${overrides[@]}"
    echo "$(( $(timer) - t ))" > "$e/xvector/train_seconds"
  fi
  if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
    echo "== stage 2: evaluate xvector ($v, $split)"
    python recipes/robust/local/evaluate.py --data "$d" --split "$split" --name xvector \
      --model "$(cat "$e/xvector/model_path" 2>/dev/null || echo "$e/xvector/checkpoints/last.ckpt")" \
      --exp "$e/xvector/eval"
  fi
  if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
    echo "== stage 3: mean-MFCC baseline ($v, $split)"
    python recipes/robust/local/evaluate.py --data "$d" --split "$split" --name "mean MFCC" --baseline mfcc \
      --exp "$e/mfcc"
  fi
  if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
    if python -c "import speechbrain" 2> /dev/null; then
      train_aug=""
      [ ! -f "$d/train_aug/wav.scp" ] || train_aug=$d/train_aug/wav.scp
      channel_embed=()
      [ ! -f "$d/${split}_channel/wav.scp" ] || channel_embed=(--embed "${split}_channel"="$d/${split}_channel/wav.scp")
      for pv in $peer_variants; do
        case $pv in
          plain) sub=speechbrain; aug=() ;;
          # ours' noise/RIR stand-ins; batch 64 (x5 augmented copies): the recipe's 256 x 5 crops of
          # 3 s need more than this machine's 24 GiB (killed for memory)
          augment) sub=speechbrain_aug; aug=(--augment "$e/augment" --batch-size 64) ;;
          *) echo "peer_variants: unknown variant $pv (plain, augment)" >&2; exit 1 ;;
        esac
        echo "== stage 4: SpeechBrain x-vector, $pv ($v, budget $budget_min min)"
        python recipes/robust/local/speechbrain_xvector.py --train-dir "$d/train" --out "$e/$sub/eval" \
          ${peer_epochs:+--epochs "$peer_epochs"} --time-budget-min "$budget_min" --threads 2 "${aug[@]}" $peer_args \
          --embed train="$d/train/wav.scp" ${train_aug:+--embed train_aug="$train_aug"} --embed "$split"="$d/$split/wav.scp" \
          --embed "${split}_noisy"="$d/${split}_noisy/wav.scp" "${channel_embed[@]}"
        python -c "import json, sys; print(round(json.load(open(sys.argv[1]))['train_sec']))" \
          "$e/$sub/eval/train_summary.json" > "$e/$sub/train_seconds"
        python recipes/robust/local/evaluate.py --data "$d" --split "$split" --name "SpeechBrain x-vector ($pv)" \
          --embeddings-only --exp "$e/$sub/eval"
      done
    else
      echo "== stage 4: SpeechBrain not installed (pip install -e '.[bench]'): peer skipped"
    fi
  fi
done

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  python recipes/robust/local/results_table.py --exp "$exp" --split "$split" --out "$exp/results_$split.md" \
    "${corpora[@]}"
fi
