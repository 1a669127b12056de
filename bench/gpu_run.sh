#!/usr/bin/env bash
# Everything issue 19 leaves to measure on a GPU, in one run of about 6 minutes on the H200 machine
# of ../shared/gpu/GPU.md (torch 2.11 + CUDA 13, 16 cores, no network). Prepare, on the CPU machine:
#
#   ../shared/gpu/fetch_wheels.sh .whl pytest==8.3.5 pluggy==1.5.0 iniconfig==2.0.0   # + pytest for the CUDA tests
#
# (keep .whl out of commits; a device session carries it as an untracked folder or with carry=[".whl"]),
# then run from the project root there:
#
#   OUT=$OUT bash bench/gpu_run.sh          # the device tool's run(command=..., timeout_s=600)
#
# It writes under $OUT: RESULTS_gpu.md (copy it to bench/RESULTS_gpu.md), bench_gpu.log,
# pytest_cuda.txt (the CUDA parity and no-sync tests), nvidia-smi.txt and corpus.log.
set -uo pipefail
OUT=${OUT:-/tmp/xvector-gpu}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python3 -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())" | tee "$OUT/torch.txt"

# 1. The device path and the step on CUDA: parity with the CPU path, no host sync in the step (~1 min).
if python3 -c "import pytest" 2>/dev/null; then
  timeout 150 python3 -m pytest -q -p no:cacheprovider -x \
    tests/data/test_batch_augment.py tests/training/test_fast_step.py -k "cuda" > "$OUT/pytest_cuda.txt" 2>&1
  echo "pytest (cuda) rc=$?" | tee -a "$OUT/pytest_cuda.txt"
fi

# 2. The synthetic corpus (~16 s there) and the benchmark (~4 min).
[ -f data/synthetic/train/wav.scp ] || python3 scripts/make_synthetic_corpus.py --out data/synthetic --workers 16 > "$OUT/corpus.log" 2>&1
timeout 400 python3 -m bench.bench_gpu --device cuda --data data/synthetic --out "$OUT/RESULTS_gpu.md" > "$OUT/bench_gpu.log" 2>&1
rc=$?
grep '^\[' "$OUT/bench_gpu.log"
tail -n 5 "$OUT/bench_gpu.log"
exit $rc
