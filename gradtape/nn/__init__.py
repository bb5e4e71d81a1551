"""``gt.nn``: functions outside the array API standard, modules, parameters, initialisers, random numbers.

Where everything lives:

* :mod:`.functional` — ``relu``, ``sigmoid``, ``softplus``, ``logsumexp``, ``softmax``,
  ``log_softmax``, ``cross_entropy``
* :mod:`.module` — ``Module``, ``Parameter``, ``StateDictKeyError``
* :mod:`.layers` — ``Linear``, ``Sequential``, activations, ``Flatten``, ``Dropout``, losses
* :mod:`.init` — the initialisers (``gt.nn.init.xavier_uniform_``, also ``gt.nn.xavier_uniform_``)
* :mod:`.random` — ``Generator``, ``manual_seed``, ``default_generator``

>>> import gradtape as gt
>>> net = gt.nn.Sequential(gt.nn.Linear(2, 3, generator=0), gt.nn.ReLU(), gt.nn.Linear(3, 2, generator=1))
>>> loss = gt.nn.cross_entropy(net(gt.ones((4, 2), dtype=gt.float32)), gt.asarray([0, 1, 1, 0]))
>>> loss.backward(); net[0].weight.grad.shape
(3, 2)
"""
from __future__ import annotations

from . import init
from .functional import cross_entropy, log_softmax, logsumexp, relu, sigmoid, softmax, softplus
from .init import (calculate_gain, constant_, kaiming_normal_, kaiming_uniform_, normal_, ones_, uniform_,
                   xavier_normal_, xavier_uniform_, zeros_)
from .layers import (CrossEntropyLoss, Dropout, Flatten, Identity, Linear, LogSoftmax, MSELoss, ReLU, Sequential,
                     Sigmoid, Softmax, Softplus, Tanh)
from .module import Module, Parameter, StateDictKeyError
from .random import Generator, default_generator, manual_seed

# names gt.nn carried before the redesign (it imported them); kept so that code using them still runs
# (tests/test_cuda.py and benchmarks/gpu_bench.py call gt.nn.cross_entropy_p's rule); not in __all__
from .._api import asarray  # noqa: F401
from .._core.dispatch import apply, apply1, apply2  # noqa: F401
from .._ops.nn import cross_entropy_p, log_softmax_p, logsumexp_p, softmax_p  # noqa: F401

__all__ = ["relu", "sigmoid", "softplus", "logsumexp", "softmax", "log_softmax", "cross_entropy",
           "Module", "Parameter", "Linear", "Sequential", "ReLU", "Sigmoid", "Tanh", "Softplus", "Identity",
           "Flatten", "Dropout", "LogSoftmax", "Softmax", "CrossEntropyLoss", "MSELoss", "StateDictKeyError",
           "Generator", "manual_seed", "default_generator", "init", "calculate_gain", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "uniform_", "normal_", "zeros_", "ones_",
           "constant_"]
