"""Smoke test of the GPU benchmark's logic without a GPU (``--dry-run``: NumPy in place of CuPy)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # the repository root
from benchmarks import gpu_bench  # noqa: E402


def test_gpu_bench_dry_run(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_bench, "_import_torch", lambda: None)     # keep it quick; torch has its own checks
    j, md = tmp_path / "gpu.json", tmp_path / "gpu.md"
    from gradtape._jit import cuda_lower
    before = cuda_lower.ENABLED
    assert gpu_bench.main(["--dry-run", "--json", str(j), "--md", str(md)]) == 0
    res = json.loads(j.read_text())
    assert set(res["cases"]) == {"mlp16", "mlp64", "chain16", "chain1e3"}
    for c in res["cases"].values():
        assert set(c["times"]) == {"cupy", "gradtape", "gradtape_generic", "gt_jit"}
        assert all(v == "ok" for v in c["check"].values())
        assert c["jit"]["kind"] in ("numba", "replay") and c["jit"]["traces"] == 1, c["jit"]   # (NumPy: no CUDA)
    assert res["verdicts"]["checks_ok"] is True
    assert all(m["gradtape"]["after_minus_before_bytes"] == 0 for m in res["memory"].values())
    assert "relu@64x64" in res["kernels"]
    text = md.read_text()
    assert "| case |" in text and "fused kernel" in text and "gt.jit / PyTorch" in text
    assert cuda_lower.ENABLED is before         # (the run turned the CUDA lowering on for itself only)
