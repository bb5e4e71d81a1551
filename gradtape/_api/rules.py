"""The tensor-level namespace rules see when their derivatives are recorded (create_graph, nested
transforms): gradtape's own functions under the names of the array API, so a rule written against ``xp``
runs on tensors and is differentiated again. Built by :mod:`gradtape._api` once its functions exist."""
from __future__ import annotations

import types

from .. import backends as _backends
from .._core.primitive import PRIMS


def namespace(functions, linalg):
    """A namespace of ``functions`` (name -> callable), with ``linalg`` and no fused kernels: the
    ``<name>_vjp`` attributes are None, so recorded derivatives run the generic rules."""
    names = dict(functions)
    names["linalg"] = linalg
    names.update({k: None for k in _backends.FUSABLE})
    names.update({p.name + "_vjp": None for p in PRIMS.values() if p.fused_vjp})
    return types.SimpleNamespace(**names)
