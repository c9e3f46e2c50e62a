#!/usr/bin/env bash
# GPU checks on a lent device machine (see docs/development.md): installs the carried wheels
# (.devwheels/, built by `pip download` for Python 3.12) into the machine's Python, then runs the
# CUDA-marked tests and the GPU benchmarks, writing logs and JSON results to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/torch_extensions}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
python3 -m pip install -q --no-deps .devwheels/*.whl >"$OUT/pip.log" 2>&1 || tail -5 "$OUT/pip.log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/gpu.txt"
GPU_TESTS=${GPU_TESTS:-$(grep -l "mark.gpu" tests/models/*.py tests/training/*.py | tr '\n' ' ')}
# shellcheck disable=SC2086
python3 -m pytest -q -m gpu -p no:cacheprovider -o addopts="" $GPU_TESTS 2>&1 | tee "$OUT/gpu_tests.log" | tail -30
for bench in ${GPU_BENCHMARKS:-}; do
  python3 "$bench" --device cuda --out "$OUT/$(basename "$bench" .py).json" 2>&1 | tee "$OUT/$(basename "$bench" .py).log" | tail -15
done
