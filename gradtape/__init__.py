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

The layers (each imports only the ones before it): ``backends`` (array libraries) <- ``_core``
(Tensor, primitives, dispatch, the reverse walk) <- ``_ops`` (the primitives' rules) <- ``_api``
(the array-API functions) <- ``_autodiff`` (modes, backward, transforms) <- ``graph``, ``nn``,
``optim``, ``special``, ``testing``, ``compat`` <- this file, which only re-exports.
"""
from __future__ import annotations

from ._version import __version__, __array_api_version__
from . import backends
from ._core.tensor import Tensor
from ._api import *  # noqa: F401,F403  (the array API namespace; its __all__ lists the names)
from ._api import __all__ as _api_names
from ._api.info import capabilities, devices, default_dtypes, dtypes   # the info functions, at the top level too
from ._autodiff.modes import (record, pause, no_grad, enable_grad, is_recording, is_grad_enabled, is_training,
                              train_mode, predict_mode, subgradient, stop_gradient)
from ._autodiff.tape import GradientTape
from ._autodiff.transforms import grad, value_and_grad, vjp, jvp, jacobian, hessian, hvp, linearize, jacfwd, jacrev
from ._autodiff.custom import custom_vjp, custom_jvp
from ._autodiff.checkpoint import checkpoint
from ._autodiff.vmap import vmap
from . import linalg, nn, autograd, nd, testing, optim, special, sym, tree
from . import fft
from . import tree as tree_util
from .graph import Graph, trace
from ._jit.api import jit
from ._jit.threads import set_num_threads

__all__ = ["Tensor", "record", "pause", "no_grad", "enable_grad", "is_recording", "is_grad_enabled", "is_training",
           "train_mode", "predict_mode", "subgradient", "stop_gradient", "GradientTape", "grad", "value_and_grad",
           "vjp", "jvp", "jacobian", "hessian", "hvp", "linearize", "jacfwd",
           "jacrev", "custom_vjp", "custom_jvp", "checkpoint", "vmap", "Graph", "trace", "jit",
           "set_num_threads", "capabilities", "devices", "default_dtypes", "dtypes",
           "linalg", "nn", "autograd", "nd", "testing", "optim", "special", "sym", "backends", "tree", "tree_util",
           "fft",
           *_api_names]
