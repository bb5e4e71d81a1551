"""The array API ``linalg`` extension, every function differentiable (but ``matrix_rank``), on stacked inputs."""
from ._api.namespace import matmul, tensordot, vecdot, vector_norm  # noqa: F401
from ._ops.shape import matrix_transpose  # noqa: F401
from ._ops.linalg import inv, det, slogdet, solve, cholesky, eigh, eigvalsh, svd, svdvals, qr, pinv, matrix_norm, matrix_power, matrix_rank, cross, trace, outer, diagonal, EighResult, SVDResult, QRResult, SlogdetResult

__all__ = ["matmul", "tensordot", "vecdot", "matrix_transpose", "vector_norm", "inv", "det", "slogdet", "solve",
           "cholesky", "eigh", "eigvalsh", "svd", "svdvals", "qr", "pinv", "matrix_norm", "matrix_power",
           "matrix_rank", "cross", "trace", "outer", "diagonal"]
