"""The array API ``linalg`` extension, every function differentiable (but ``matrix_rank``), on stacked inputs.

The functions are defined in :mod:`gradtape._api.linalg`, their primitives in :mod:`gradtape._ops.linalg`.

>>> import gradtape as gt
>>> gt.linalg.inv(gt.asarray([[2.0, 0.0], [0.0, 4.0]])).shape
(2, 2)
"""
from ._api.linalg import (inv, det, slogdet, solve, cholesky, eigh, eigvalsh, svd, svdvals, qr, pinv,  # noqa: F401
                          matrix_norm, matrix_power, matrix_rank, cross, trace, outer, diagonal, matmul, tensordot,
                          vecdot, vector_norm, matrix_transpose, EighResult, SVDResult, QRResult, SlogdetResult)

__all__ = ["matmul", "tensordot", "vecdot", "matrix_transpose", "vector_norm", "inv", "det", "slogdet", "solve",
           "cholesky", "eigh", "eigvalsh", "svd", "svdvals", "qr", "pinv", "matrix_norm", "matrix_power",
           "matrix_rank", "cross", "trace", "outer", "diagonal"]
