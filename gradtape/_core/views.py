"""Views and writes through them (NumPy/PyTorch semantics), tracked by autograd.

A *view* is the output of a basic ``getitem``, of a ``reshape`` that the backend does without a copy, or of
``permute_dims`` (so also ``mT``, ``moveaxis``, ``squeeze``, ``expand_dims`` and unpacking ``a, b = x``).
It shares its base's version counter (``_base``, see :func:`gradtape._core.dispatch.version`) and is
registered with its *root* (the first tensor of the chain that is not a view): ``view._vfn = (root, steps)``
with ``steps`` the ``(primitive, params)`` pairs that make it from the root, ``root._views`` weak
references to the live views. Plain tensors carry neither field (unset slots): the per-op path is unchanged.

An in-place write into a member of a family (``v[k] = x``, ``v += x``, on a view or on a root with live
views) is functional underneath, as PyTorch's CopySlices: the root's new value is the old root with the
view's region replaced (``setitem`` for a basic index, the inverse reshape or permutation otherwise),
recorded like any op; the root is rebound to it, its version bumped (so every alias's version changes and
a value saved before the write raises at backward), and every live view is re-derived from the new root:
its data (a view of the new root's array) and its history. No array is overwritten, so the values the
graph saved stay valid.

>>> import gradtape as gt
>>> x = gt.zeros((2, 3)); y = gt.reshape(x, (6,)); y[0] = 1.0
>>> x[0, 0]
Tensor(1.)
"""
from __future__ import annotations

import weakref

from .._state import scoped, state
from . import hooks
from .primitive import PRIMS
from .tensor import Tensor, new_tensor, rebind

__all__ = ["view_tensor", "write"]

_WRITABLE = frozenset(("getitem", "reshape", "permute_dims"))


def view_tensor(out, backend, x, prim, params):
    """The output ``out`` of view primitive ``prim`` on ``x``: it shares x's version counter, and, when writes
    through it reach x (:data:`_WRITABLE`, a reshape only when the backend returned a view), x's root."""
    t = new_tensor(out, backend, x)
    if prim.name not in _WRITABLE or type(x) is not Tensor or not state.alias:
        return t
    if prim.name == "reshape" and x.size > 1 and _owner(out) is not _owner(x.data):
        return t            # the backend copied (0-d results may be NumPy scalars: one element never copies)
    vfn = None if x._base is None else getattr(x, "_vfn", None)    # (an unset slot: a slow AttributeError)
    root, steps = (x, ()) if vfn is None else vfn
    t._vfn = (root, steps + ((prim, params),))
    views = getattr(root, "_views", None)
    if views is None:
        views = root._views = [0]         # [capacity before the next pruning, weakrefs...]
    views.append(weakref.ref(t))
    if len(views) > views[0]:
        views[1:] = [r for r in views[1:] if r() is not None]
        views[0] = 2 * len(views) + 16
    return t


def _owner(a):
    """The object owning a NumPy/CuPy (or array-api-strict) array's memory: the end of its ``base`` chain."""
    a = getattr(a, "_array", a)
    b = getattr(a, "base", None)
    while b is not None:
        a, b = b, getattr(b, "base", None)
    return a


def write(self, new, what):
    """Make ``new`` (a Tensor of self's shape and dtype) the value of ``self``, a member of a view family:
    the root gets the old root with self's region replaced, then every live view is re-derived from it."""
    vfn = getattr(self, "_vfn", None)
    root, steps = (self, ()) if vfn is None else vfn
    if root._requires_grad and root._node is None and root._grad_req is not None and state.enabled:
        raise RuntimeError(f"gradtape: in-place {what} on a view of a leaf tensor that requires grad (view shape "
                           f"{self.shape}, leaf shape {root.shape}) while recording; do it under "
                           f"gt.pause()/gt.no_grad() or on a copy")
    with scoped(alias=False):
        parents = [root]
        for prim, params in steps[:-1]:
            parents.append(hooks.apply1(prim, parents[-1], params))
        for (prim, params), parent in zip(reversed(steps), reversed(parents)):
            new = _unstep(prim, params, parent, new)
        if state.enabled:
            rebind(root, new)
        else:                   # no_grad (an optimiser's step): new values, histories kept, as PyTorch
            root.data = new.data
            root._version += 1
        views = getattr(root, "_views", None) or [0]
        for r in views[1:]:
            v = r()
            if v is not None:
                _rederive(v, root)


def _unstep(prim, params, parent, child):
    """``parent`` with the region that view step ``prim`` selects replaced by ``child``."""
    if prim.name == "getitem":
        return hooks.apply(PRIMS.setitem, (parent, child), {"key": params["key"], "xshape": params["xshape"]})
    if prim.name == "reshape":
        return hooks.apply1(prim, child, {"shape": params["xshape"], "xshape": params["shape"]})
    inv = [0] * len(params["axes"])
    for i, a in enumerate(params["axes"]):
        inv[a] = i
    return hooks.apply1(prim, child, {"axes": tuple(inv)})


def _rederive(v, root):
    """View ``v`` made again from its root's current value: data, history and tangents (its version counter
    is its base's, already bumped)."""
    t = root
    for prim, params in v._vfn[1]:
        t = hooks.apply1(prim, t, params)
    v.data = t.data
    if not state.enabled:
        return
    v._node = t._node
    v._requires_grad = t._requires_grad
    v.tangents = t.tangents


hooks.write = write
