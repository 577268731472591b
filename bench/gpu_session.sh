#!/usr/bin/env bash
# Issue 14's GPU figures, prepared so that a session lent a GPU only has to run them (each part fits one device
# call of at most 10 minutes; the device README says how to call). Before the first call, here:
#   make gpu-data                      # copies ../shared/murals and murals_pool into gpu_data/ (git-ignored, 43 MB)
#   (and, for the PConvUNet(7) step against naoto0804's port: make gpu-data PEER_NET=path/to/naoto0804/net.py)
# then on the GPU machine, with carry ["gpu_data"]:
#   bash bench/gpu_session.sh preset        # configs/real_gpu.yaml trained 7 minutes, scored on the pool (~9 min)
#   bash bench/gpu_session.sh throughput    # fp32 / bf16 / channels-last images/s of the kit's train step, and
#                                           # bench/partial_conv.py --unet (with the peer's net when given) (~3 min)
# Results go to $OUT (the device's output folder) or runs/gpu_session; record them in BENCHMARKS.md.
# The GPU machine has torch but no install of the kit: it runs from the repository with PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-runs/gpu_session}"
mkdir -p "$OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
case "${1:-}" in
  preset)
    test -d gpu_data/murals_pool || { echo "gpu_data/ is missing: run 'make gpu-data' here and carry gpu_data"; exit 2; }
    python3 bench/restoration.py --config configs/real_gpu.yaml --device cuda --minutes 7 --detector-minutes 0 \
      --pool gpu_data/murals_pool --data gpu_data/murals --out "$OUT/real_gpu" 2>&1 | tee "$OUT/real_gpu.log" ;;
  throughput)
    python3 bench/throughput.py --device cuda --config configs/real_gpu.yaml configs/real_cpu.yaml \
      --json "$OUT/throughput.json" 2>&1 | tee "$OUT/throughput.log"
    peer=(); test -f gpu_data/naoto0804_net.py && peer=(--peer gpu_data/naoto0804_net.py)
    python3 bench/partial_conv.py --device cuda --unet "${peer[@]}" 2>&1 | tee "$OUT/partial_conv.log" ;;
  *)
    echo "usage: bash bench/gpu_session.sh preset|throughput"; exit 2 ;;
esac
