#!/usr/bin/env bash
# The GPU check of gradtape: one command, on a machine with a CUDA GPU and no internet.
#
#   1. installs the carried pure-Python wheels (.whl/: array-api-compat, array-api-strict) and the
#      project itself (editable, no index, no build isolation), and checks that CuPy sees a GPU;
#   2. runs the whole test suite (every backend through the `device` fixture: cpu, strict and cuda,
#      plus tests/test_cuda.py and the doctests), in parallel with pytest-xdist where installed;
#   3. runs it again with GRADTAPE_DEVICE=cuda: the tests that do not take the fixture then create
#      their tensors on the GPU (doctests excluded: their printed outputs are the CPU's). This pass
#      is informational: a few tests assume the CPU default on purpose (NumPy operands, "strict"
#      as the other device); its failures are listed in the report but do not fail the check;
#   4. runs the GPU benchmarks (benchmarks/gpu_bench.py: MLP step at batch 256/4096, 200-op chain at
#      16/1e6 elements; gradtape on CuPy vs hand-written CuPy vs PyTorch CUDA; fused kernels);
#   5. writes gpu_check.json and gpu_check.md (and the three logs) to the output folder: $1, else
#      $OUT (the device tool's), else benchmarks/results/gpu/.
# Each stage has a time limit (suite 270 s, second pass 70 s, benchmarks 120 s, install ~20 s): the
# whole check ends in under 8 minutes.
# Exit status 0 only if the install, the whole suite and the benchmarks' correctness checks passed.
#
# How to run it from a development machine with the device tool (the GPU machine has CuPy 14 for
# CUDA 13, PyTorch, pytest, pytest-xdist and hypothesis, but no internet):
#
#   here, once, in the repository root (writes .whl/, which .git/info/exclude keeps out of git):
#       bash /work/shared/tools/gpu-wheels.sh
#   then the device tool's run, with exactly:
#       command:   bash benchmarks/gpu_check.sh
#       carry:     [".whl"]
#       timeout_s: 540
#   The results come back under the reply's files_at: gpu_check.md (tables), gpu_check.json,
#   pytest_all.log, pytest_cuda_default.log, gpu_bench.log.
#
# On any CUDA machine with internet instead: pip install -e ".[test,cuda13]" torch pytest-xdist,
# then `bash benchmarks/gpu_check.sh results/`.
#
# GPU_CHECK_DRY=1 checks the script itself on a machine without a GPU: no GPU required, the second
# pass uses GRADTAPE_DEVICE=strict and the benchmarks run with --dry-run --quick.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUTDIR=${1:-${OUT:-benchmarks/results/gpu}}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=$(mktemp -d)
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false     # a test that imports JAX must not take 75% of the GPU
T0=$(date +%s)
STATUS=0
stage() { echo; echo "=== [$(( $(date +%s) - T0 )) s] $*"; }

# ---- 1. install ---------------------------------------------------------------------------------
stage "install"
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "installing the carried wheels failed"; exit 2; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
else
  echo "no .whl/ folder: assuming array-api-compat and array-api-strict are installed"
  echo "(on the device tool: run bash /work/shared/tools/gpu-wheels.sh here and pass carry=[\".whl\"])"
fi
# the repository root on the path too, so that pytest-xdist workers import benchmarks.gpu_pytest
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
$PY -m pip install -q --no-index --no-deps --no-build-isolation -e . \
  || { echo "installing gradtape (pip install -e .) failed: setuptools>=64 and wheel are needed"; exit 2; }
DRY=${GPU_CHECK_DRY:-0}
DEV2=cuda; BENCH_ARGS=()
[ "$DRY" = 1 ] && { DEV2=strict; BENCH_ARGS=(--dry-run --quick); echo "GPU_CHECK_DRY=1: no GPU needed"; }
DRY=$DRY $PY - <<'EOF' || exit 2
import os, sys
import gradtape as gt
from gradtape import backends
av = backends.available()
print("gradtape backends available:", av)
if "cuda" not in av:
    try:
        import cupy
        print("cupy", cupy.__version__, "imports, but sees no GPU:", cupy.cuda.runtime.getDeviceCount())
    except Exception as e:
        print("cupy is not usable:", type(e).__name__, e)
    if os.environ["DRY"] == "1":
        sys.exit(0)
    sys.exit("no CUDA backend: this check needs a GPU with CuPy")
x = gt.asarray([1.0, 2.0], device="cuda").requires_grad_()
gt.sum(gt.sin(x) * x).backward()
print("smoke:", x.device, gt.to_numpy(x.grad))
EOF
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true

XDIST=()
# one worker per core (16 on the device machines): on a fresh machine most of the time goes into
# compiling CuPy kernels (NVRTC, CPU-bound), which the workers share through the on-disk kernel cache
NPROC=$(nproc 2>/dev/null || echo 8); [ "$NPROC" -gt 16 ] && NPROC=16
$PY -c "import xdist" 2>/dev/null && XDIST=(-n "$NPROC")
TIMEOUT=()
$PY -c "import pytest_timeout" 2>/dev/null && TIMEOUT=(--timeout=120)
PLUGIN=(-p benchmarks.gpu_pytest -p no:cacheprovider)

# ---- 2. the whole suite, every backend ------------------------------------------------------------
stage "pytest: whole suite (cpu, strict, cuda through the device fixture; tests/test_cuda.py; doctests)"
GRADTAPE_PYTEST_SUMMARY=$WORK/pytest_all.json timeout -k 10 270 \
  $PY -m pytest -q -rfEs --durations=15 "${XDIST[@]}" "${TIMEOUT[@]}" "${PLUGIN[@]}" 2>&1 | tail -n 400 > "$OUTDIR/pytest_all.log"
rc=${PIPESTATUS[0]}
tail -n 15 "$OUTDIR/pytest_all.log"
echo "pytest (all) exit status $rc"
[ "$rc" = 0 ] || STATUS=1

# ---- 3. default device cuda ---------------------------------------------------------------------------
stage "pytest: GRADTAPE_DEVICE=$DEV2 (tests without the device fixture, on that device)"
GRADTAPE_DEVICE=$DEV2 GRADTAPE_SKIP_DEVICE_FIXTURE=1 GRADTAPE_PYTEST_SUMMARY=$WORK/pytest_cuda_default.json \
  timeout -k 10 70 $PY -m pytest -q -rfE -o addopts="" "${XDIST[@]}" "${TIMEOUT[@]}" "${PLUGIN[@]}" \
  --ignore=tests/test_cuda.py --ignore=tests/test_gpu_bench.py tests \
  2>&1 | tail -n 400 > "$OUTDIR/pytest_cuda_default.log"
rc=${PIPESTATUS[0]}
tail -n 15 "$OUTDIR/pytest_cuda_default.log"
echo "pytest (GRADTAPE_DEVICE=$DEV2) exit status $rc (informational: some tests assume the CPU default)"

# ---- 4. benchmarks ------------------------------------------------------------------------------------
stage "GPU benchmarks"
timeout -k 10 120 $PY -m benchmarks.gpu_bench "${BENCH_ARGS[@]}" --json "$WORK/gpu_bench.json" --md "$WORK/gpu_bench.md" \
  > "$OUTDIR/gpu_bench.log" 2>&1
rc=$?
cat "$WORK/gpu_bench.md" 2>/dev/null || tail -n 30 "$OUTDIR/gpu_bench.log"
echo "benchmarks exit status $rc"
[ "$rc" = 0 ] || STATUS=1

# ---- 5. report ------------------------------------------------------------------------------------------
stage "report"
DEV2=$DEV2 WORK=$WORK OUTDIR=$OUTDIR STATUS=$STATUS T0=$T0 $PY - <<'EOF'
import json, os, time
work, outdir = os.environ["WORK"], os.environ["OUTDIR"]

def load(name):
    try:
        with open(os.path.join(work, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

res = {"status": "pass" if os.environ["STATUS"] == "0" else "fail",
       "wall_s": time.time() - int(os.environ["T0"]),
       "pytest_all": load("pytest_all.json"), "pytest_cuda_default": load("pytest_cuda_default.json"),
       "bench": load("gpu_bench.json")}
with open(os.path.join(outdir, "gpu_check.json"), "w") as f:
    json.dump(res, f, indent=2, default=str)

def counts(s):
    if s is None:
        return "no summary (timed out or crashed: see the log)"
    c = s["counts"]
    fmt = lambda d: ", ".join(f"{v} {k}" for k, v in sorted(d.items())) or "none"
    out = f"cuda-marked: {fmt(c['cuda'])}; others: {fmt(c['other'])}; exit status {s['exitstatus']}"
    if s["cuda_skip_reasons"]:
        out += f"; CUDA tests skipped because: {s['cuda_skip_reasons']}"
    if s["n_failed"]:
        out += f"; {s['n_failed']} failed, first: " + ", ".join(s["failed"][:10])
    return out

md = [f"# gradtape GPU check: {res['status'].upper()} ({res['wall_s']:.0f} s)", "",
      f"- whole suite (cpu, strict, cuda via the fixture; test_cuda.py; doctests): {counts(res['pytest_all'])}",
      f"- GRADTAPE_DEVICE={os.environ['DEV2']} (tests without the fixture; informational): {counts(res['pytest_cuda_default'])}", ""]
try:
    md.append(open(os.path.join(work, "gpu_bench.md")).read())
except OSError:
    md.append("benchmarks: no results (see gpu_bench.log)")
with open(os.path.join(outdir, "gpu_check.md"), "w") as f:
    f.write("\n".join(md) + "\n")
print("\n".join(md[:5]))
EOF
rm -rf "$WORK"
stage "done: status $STATUS, results in $OUTDIR"
exit $STATUS
