"""``T``: the namespace rules see when their derivatives are recorded (gradtape's own ops)."""
import types

import gradtape as _gt
from . import _namespace
from ._shape import index_add, take_add, along_add

_names = {k: getattr(_gt, k) for k in dir(_gt) if not k.startswith("_")}
_names["index_add"] = index_add
_names["take_add"] = take_add
_names["along_add"] = along_add
_names["linalg"] = _gt.linalg
from .backends import FUSABLE  # noqa: E402
_names.update({k: None for k in FUSABLE})     # recorded derivatives use the generic rules
T = types.SimpleNamespace(**_names)
_namespace.T = T
