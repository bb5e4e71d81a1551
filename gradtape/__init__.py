"""gradtape: automatic differentiation for the Python array API.

``gradtape`` is itself an array API namespace (2024.12): every function of the
standard is here, the differentiable ones with VJP and JVP rules.

>>> import gradtape as gt
>>> x = gt.asarray([[1.0], [2.0]]); x.attach_grad()
>>> with gt.record():
...     y = 2 * (x.mT @ x)
>>> y.backward(); x.grad
Tensor([[4.],
        [8.]])
"""
from __future__ import annotations

__version__ = "0.1.0"
__array_api_version__ = "2024.12"

from . import _core, _prims, _shape, _namespace  # noqa: E402
from ._core import Tensor  # noqa: E402
from . import _tensor  # noqa: E402,F401  (installs the Tensor methods)
from ._namespace import (  # noqa: E402
    DType, asarray, from_dlpack, to_device, set_default_device, default_device, get_default_device,
    zeros, ones, empty, full, eye, arange, linspace, zeros_like, ones_like, empty_like, full_like, meshgrid,
    sum, prod, mean, var, std, max, min, cumulative_sum, cumulative_prod, clip, diff, sort, matmul, vecdot,
    tensordot, isdtype, result_type, can_cast, finfo, iinfo, broadcast_shapes, __array_namespace_info__,
    e, pi, inf, nan, newaxis, NONDIFF, vector_norm as _vector_norm, DTYPES, bool, int8, int16, int32, int64, uint8, uint16, uint32,
    uint64, float32, float64, complex64, complex128,
)
from ._shape import (  # noqa: E402
    reshape, permute_dims, matrix_transpose, broadcast_to, broadcast_arrays, astype, expand_dims, squeeze,
    moveaxis, flip, roll, tril, triu, concat, stack, unstack, where, take, take_along_axis, repeat, tile,
)
from ._prims import abs  # noqa: E402
from ._tensor import to_numpy  # noqa: E402
from ._autograd import (  # noqa: E402
    record, pause, no_grad, enable_grad, is_recording, is_grad_enabled, is_training, train_mode,
    predict_mode, subgradient, stop_gradient, GradientTape,
)
from .transforms import grad, value_and_grad, vjp, jvp, jacobian, hessian, hvp  # noqa: E402
from .custom import custom_vjp, custom_jvp, checkpoint  # noqa: E402

for _n in NONDIFF:
    globals()[_n] = getattr(_namespace, _n)
_ELEMENTWISE1 = ["negative", "positive", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
                 "asinh", "acosh", "atanh", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "square",
                 "reciprocal"]
_ELEMENTWISE2 = ["add", "subtract", "multiply", "divide", "atan2", "hypot", "logaddexp", "maximum", "minimum",
                 "copysign", "remainder"]
for _n in _ELEMENTWISE1:
    globals()[_n] = _prims._fn1(getattr(_prims, _n))
for _n in _ELEMENTWISE2:
    globals()[_n] = _prims._fn2(getattr(_prims, _n))
pow = _prims._fn2(_prims.pow_, "pow")  # noqa: A001


def real(x, /):
    """Real part (the identity on real tensors).

    >>> import gradtape as gt
    >>> gt.real(gt.asarray([1.5]))
    Tensor([1.5])
    """
    x = asarray(x)
    if isdtype(x.dtype, "complex floating"):
        raise TypeError("gradtape.real: complex tensors are not differentiable in this version")
    return positive(x)


def imag(x, /):
    """Imaginary part (zeros on real tensors).

    >>> import gradtape as gt
    >>> gt.imag(gt.asarray([1.5]))
    Tensor([0.])
    """
    x = asarray(x)
    if isdtype(x.dtype, "complex floating"):
        raise TypeError("gradtape.imag: complex tensors are not differentiable in this version")
    return zeros_like(x)


def conj(x, /):
    """Complex conjugate (the identity on real tensors).

    >>> import gradtape as gt
    >>> gt.conj(gt.asarray([1.5]))
    Tensor([1.5])
    """
    return real(x)


from . import linalg, nn, autograd, nd  # noqa: E402
from . import _rulens  # noqa: E402,F401  (the tensor-level namespace rules use)

def synchronize(device=None):
    """Wait for queued work on ``device``, or on every device in use when None (a no-op on the CPU).

    >>> import gradtape as gt
    >>> gt.synchronize()
    """
    from . import backends
    if device is not None:
        backends.get(device).synchronize()
        return
    for bk in list(backends._BY_DEVICE.values()):
        bk.synchronize()


def memory_stats(device=None):
    """Memory figures of ``device``'s allocator (CuPy pool on GPUs; empty on the CPU).

    >>> import gradtape as gt
    >>> isinstance(gt.memory_stats(), dict)
    True
    """
    from . import backends
    return backends.get(device or get_default_device()).memory_stats()
from . import testing  # noqa: E402,F401
from . import optim  # noqa: E402,F401  (gt.optim: SGD, Adam, AdamW)
from .graph import Graph, trace  # noqa: E402  (layer 5: the graph IR; gt.trace(f, x) -> gt.Graph)
from . import sym  # noqa: E402,F401  (explicit graphs; gt functions accept symbols from here on)
from . import special  # noqa: E402,F401  (gt.special: SciPy special functions with array-API formulas)
