#!/usr/bin/env bash
# The GPU checks of the CUDA backend, in one short run (about 2 minutes on an H100):
#   1. pytest tests/test_cuda.py -m gpu   (CUDA vs C parity, reproducibility, relax)
#   2. bench/gpu_throughput.py            (CUDA vs C energy+gradient at N = 1e5, 1e6, 1e7)
#
#   bash bench/gpu_check.sh                      # from anywhere inside the repository
#   PYTHON=/path/to/python bash bench/gpu_check.sh
#
# It needs an NVIDIA GPU, nvcc and a C compiler. It installs nothing when the interpreter
# already has cfc's imports; otherwise it installs wheels from .whl/ (for machines with no
# internet: see the note at the end), else asks pip, and then `pip install -e .` offline
# (or, if that fails, links codegen/templates to templates/ and runs in place).
# GPU_CHECK_SIZES overrides the benchmark sizes (default 1e5,1e6,1e7).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
status=0

echo "== machine"
nvidia-smi -L || { echo "gpu_check: no NVIDIA GPU here (nvidia-smi failed)"; exit 1; }
command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
nvcc --version | tail -n 2 || { echo "gpu_check: nvcc not found"; exit 1; }
"$PY" --version
if [ -z "${CFC_CUDA_ARCH:-}" ]; then  # build for this GPU alone: half the nvcc time
    cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' .')
    [ -n "$cap" ] && export CFC_CUDA_ARCH="sm_$cap"
fi
echo "CFC_CUDA_ARCH=${CFC_CUDA_ARCH:-default}"
export CFC_CACHE_DIR=${CFC_CACHE_DIR:-$(mktemp -d /tmp/cfc-gpu-cache.XXXXXX)}

echo "== python packages"
deps="import lark, cffi, jinja2, sympy, numpy, filelock, pytest"
if ! "$PY" -c "$deps" 2>/dev/null; then
    if compgen -G ".whl/*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/cfc-site .whl/*.whl
        export PYTHONPATH="/tmp/cfc-site${PYTHONPATH:+:$PYTHONPATH}"
    else
        "$PY" -m pip install -q lark cffi jinja2 sympy numpy filelock pytest
    fi
fi
"$PY" -c "$deps" || { echo "gpu_check: missing Python packages (see above)"; exit 1; }
if ! "$PY" -c "import cfc_dsl, codegen.templates" 2>/dev/null; then
    # no build isolation and no dependencies: works offline with setuptools >= 64
    "$PY" -m pip install -q --no-deps --no-build-isolation -e . || true
fi
if ! "$PY" -c "import cfc_dsl, codegen.templates" 2>/dev/null; then
    # the install maps codegen.templates to templates/; run in place with a link instead
    echo "gpu_check: 'pip install -e .' did not work; linking codegen/templates -> ../templates"
    ln -sfn ../templates codegen/templates
fi
"$PY" -c "import cfc_dsl, codegen.templates; print('cfc', cfc_dsl.__version__)" || exit 1

echo "== pytest tests/test_cuda.py -m gpu"
"$PY" -m pytest tests/test_cuda.py -m gpu -v -p no:cacheprovider || status=1

echo "== bench/gpu_throughput.py"
"$PY" bench/gpu_throughput.py --sizes "${GPU_CHECK_SIZES:-1e5,1e6,1e7}" || status=1

echo "== gpu_check: $([ $status = 0 ] && echo PASSED || echo FAILED)"
exit $status

# Offline machines. On a machine with internet, from the repository root, fetch the wheels
# the GPU machine lacks (its python3 is 3.12 there) into .whl/, which git ignores through
# .git/info/exclude, and carry .whl along:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 -d .whl lark cffi pycparser
