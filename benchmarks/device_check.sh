#!/usr/bin/env bash
# One command for a lent GPU machine: training throughput, torch-cuda latency (FP32/FP16, CUDA graphs,
# roofline), one NCCL DDP step -> one table + one JSON line (and --json FILE). Under 8 minutes.
# Needs only torch (CUDA build), torchvision and this checkout; downloads nothing. Without CUDA it
# prints why and exits 0. Usage: bash benchmarks/device_check.sh [--quick] [--json out.json]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout "${DEVICE_CHECK_TIMEOUT:-470}" "$PYTHON" benchmarks/device_check.py "$@"
