"""The array API ``linalg`` extension (so far: matmul, tensordot, vecdot, matrix_transpose, vector_norm)."""
from ._namespace import matmul, tensordot, vecdot, vector_norm  # noqa: F401
from ._shape import matrix_transpose  # noqa: F401

__all__ = ["matmul", "tensordot", "vecdot", "matrix_transpose", "vector_norm"]
