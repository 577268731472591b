#!/usr/bin/env bash
# The kit's GPU measurements, for any machine with a CUDA GPU and a copy of this repository.
#
#   bash bench/gpu_session.sh preset       # configs/real_gpu.yaml trained for 7 minutes on the real-mural pool, then
#                                          # scored against Telea on the pool's held-out murals (about 9 minutes)
#   bash bench/gpu_session.sh throughput   # images/s of the kit's training step in fp32, bf16 and channels-last for
#                                          # real_gpu.yaml's and real_cpu.yaml's networks, and partial convolution
#                                          # against nn.Conv2d (bench/partial_conv.py --unet) (about 3 minutes)
#
# Needs: PyTorch with CUDA (the kit need not be installed: the script puts this repository on PYTHONPATH); for
# `preset`, the murals: MURALS (default ../shared/murals) and POOL (default ../shared/murals_pool), or a copy of both
# in gpu_data/ (`make gpu-data`, git-ignored, 43 MB). `make gpu-data PEER_NET=path/to/net.py` also copies
# naoto0804's PConvUNet (MIT licence), which `throughput` then times beside the kit's.
# Results: logs and JSON in $OUT (default runs/gpu_session), the GPU's name printed first. Record each figure in
# BENCHMARKS.md with its command and the GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-runs/gpu_session}"
if [ -d gpu_data/murals_pool ]; then data=gpu_data; else data=../shared; fi
POOL="${POOL:-$data/murals_pool}"
MURALS="${MURALS:-$data/murals}"
mkdir -p "$OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
case "${1:-}" in
  preset)
    test -d "$POOL/train" || { echo "no murals at $POOL: set POOL and MURALS, or run 'make gpu-data'"; exit 2; }
    python3 bench/restoration.py --config configs/real_gpu.yaml --device cuda --minutes 7 --detector-minutes 0 \
      --pool "$POOL" --data "$MURALS" --out "$OUT/real_gpu" 2>&1 | tee "$OUT/real_gpu.log" ;;
  throughput)
    python3 bench/throughput.py --device cuda --config configs/real_gpu.yaml configs/real_cpu.yaml \
      --json "$OUT/throughput.json" 2>&1 | tee "$OUT/throughput.log"
    peer=(); test -f gpu_data/naoto0804_net.py && peer=(--peer gpu_data/naoto0804_net.py)
    python3 bench/partial_conv.py --device cuda --unet "${peer[@]}" 2>&1 | tee "$OUT/partial_conv.log" ;;
  *)
    echo "usage: bash bench/gpu_session.sh preset|throughput"; exit 2 ;;
esac
