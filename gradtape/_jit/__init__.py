"""``gt.jit``: compile a traced graph into fused kernels (numba on the CPU, CuPy on the GPU), with guards.

Layer: next to :mod:`gradtape.graph` (it reads traced graphs); ``gradtape/__init__.py`` re-exports ``jit``.
numba and CuPy are imported lazily; without numba ``jit`` runs the replay plan (correct, not fused).
"""
