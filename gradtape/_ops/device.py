"""The device transfer primitive: ``to_device`` moves a tensor between backends, and its VJP moves the
cotangent back (JVP: the tangent goes along). The public function is :func:`gradtape._api.device.to_device`.

>>> from gradtape._core.primitive import PRIMS
>>> PRIMS.to_device.inputs, PRIMS.to_device.same_shape
(('x',), True)
"""
from __future__ import annotations

from .._core.primitive import define
from .._core.tensor import Tensor

__all__ = ["to_device_p", "transfer"]


def transfer(data, src, dst):
    """Raw array ``data`` of backend ``src`` as an array of backend ``dst`` (the same object when they are one)."""
    if src is dst:
        return data
    if dst.name == "cupy" and src.name == "cupy":
        return dst.asarray(data, copy=True)
    return dst.asarray(src.to_numpy(data))


def _move_back(xp, ct, src, dst):
    """The cotangent on the source device: a raw array is transferred, a tensor (recorded derivative) moved."""
    if isinstance(ct, Tensor):
        return xp.to_device(ct, src.device)
    return transfer(ct, dst, src)


to_device_p = define("to_device", lambda xp, x, src, dst: transfer(x, src, dst),
                     vjp={"x": lambda xp, ct, out, x, src, dst: _move_back(xp, ct, src, dst)},
                     jvp={"x": lambda xp, t, out, x, src, dst: xp.to_device(t, dst.device)}, same_shape=True)
