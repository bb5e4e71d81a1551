"""Optimisers: SGD (momentum, dampening, weight decay, Nesterov) and Adam/AdamW, with PyTorch's update rules.

``step()`` reads each parameter's ``.grad`` (parameters without one are
skipped) and updates the parameter truly in place under ``gt.no_grad()``
(its version is bumped, so a graph that saved the old value refuses a later
backward). The optimiser's state (momentum buffers, moments) is kept as raw
arrays of the parameter's backend, so it works on any device.

>>> import gradtape as gt
>>> w = gt.nn.Parameter(gt.asarray([1.0, -2.0]))
>>> opt = gt.optim.SGD([w], lr=0.1)
>>> loss = gt.sum(w * w)
>>> opt.zero_grad(); loss.backward(); opt.step()
>>> w
Tensor([ 0.8, -1.6], requires_grad=True)
"""
import math as _math

from ._autodiff.modes import no_grad as _no_grad
from ._core.dispatch import wrap as _wrap
from ._core.dtypes import is_float as _is_float
from ._core.tensor import Tensor as _Tensor

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


class Optimizer:
    """Base class: ``param_groups`` (a list of dicts with "params" and the hyper-parameters) and per-parameter state.

    ``params`` is an iterable of tensors, or of dicts ``{"params": [...], "lr": ...}`` to give groups their
    own hyper-parameters (PyTorch's form)."""

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}               # id(param) -> dict of raw arrays / counters
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        seen = set()
        for g in groups:
            g = dict(g)
            ps = g["params"]
            g["params"] = [ps] if isinstance(ps, _Tensor) else list(ps)
            for p in g["params"]:
                if not isinstance(p, _Tensor):
                    raise TypeError(f"{type(self).__name__}: parameters must be gt.Tensor, got {type(p).__name__}")
                if not _is_float(p.dtype):
                    raise TypeError(f"{type(self).__name__}: a parameter of dtype {p.dtype} (shape {p.shape}) "
                                    f"cannot be optimised; use a floating-point tensor")
                if p._node is not None:
                    raise ValueError(f"{type(self).__name__}: a parameter (shape {p.shape}) is the result of a "
                                     f"recorded operation, not a leaf tensor")
                if id(p) in seen:
                    raise ValueError(f"{type(self).__name__}: a parameter (shape {p.shape}) appears twice")
                seen.add(id(p))
            for k, v in self.defaults.items():
                g.setdefault(k, v)
            self._check(g)
            self.param_groups.append(g)

    def _check(self, group):
        if group["lr"] < 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be >= 0, got {group['lr']}")
        if group.get("weight_decay", 0.0) < 0:
            raise ValueError(f"{type(self).__name__}: weight_decay must be >= 0, got {group['weight_decay']}")

    def zero_grad(self, set_to_none=True):
        """Clear the gradients (``None``, or zeros in place with ``set_to_none=False``)."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def _grads(self, group):
        """(parameter, raw gradient, state dict) for the parameters of ``group`` that have a gradient."""
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            if g.backend is not p.backend or g.shape != p.shape:
                raise ValueError(f"{type(self).__name__}: the gradient of a parameter (shape {p.shape} on "
                                 f"{p.device!r}) has shape {g.shape} on {g.device!r}")
            yield p, g.data, self.state.setdefault(id(p), {})

    @staticmethod
    def _update(p, raw, scale):
        """p += scale * raw, in place (under no_grad, so the tensor keeps its identity and bumps its version)."""
        with _no_grad():
            p += _wrap(raw * scale if scale != 1.0 else raw, p.backend)

    def step(self):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's rule.

    With weight decay ``wd``: g ← g + wd·p. With ``momentum`` μ: b ← g on the
    first step, then b ← μ·b + (1 − dampening)·g; the step direction is b, or
    g + μ·b with ``nesterov``. Then p ← p − lr·direction.

    >>> import gradtape as gt
    >>> w = gt.nn.Parameter(gt.asarray([1.0]))
    >>> opt = gt.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad(); gt.sum(w * w).backward(); opt.step()
    >>> round(w.item(), 6)      # 1 - 0.1*2 = 0.8; b = 0.9*2 + 1.6 = 3.4; 0.8 - 0.34
    0.46
    """

    def __init__(self, params, lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if momentum < 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {momentum}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening = 0")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov})

    def step(self):
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            lr, mu, damp, wd, nest = (group[k] for k in ("lr", "momentum", "dampening", "weight_decay", "nesterov"))
            for p, g, st in self._grads(group):
                if wd:
                    g = g + wd * p.data
                if mu:
                    buf = st.get("momentum_buffer")
                    if buf is None:
                        buf = st["momentum_buffer"] = p.backend.xp.asarray(g, copy=True)
                    else:
                        buf *= mu
                        buf += (1.0 - damp) * g if damp else g
                    g = g + mu * buf if nest else buf
                self._update(p, g, -lr)


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's rule; ``decoupled_weight_decay=True`` gives AdamW.

    m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², then
    p ← p − lr·(m / (1 − β₁ᵗ)) / (sqrt(v / (1 − β₂ᵗ)) + eps). Weight decay
    ``wd`` adds wd·p to g (Adam, L2), or with ``decoupled_weight_decay``
    multiplies p by (1 − lr·wd) before the step (AdamW, Loshchilov & Hutter).

    >>> import gradtape as gt
    >>> w = gt.nn.Parameter(gt.asarray([1.0, -1.0]))
    >>> opt = gt.optim.Adam([w], lr=0.1)
    >>> opt.zero_grad(); gt.sum(w * w).backward(); opt.step()
    >>> w                       # the first Adam step moves each weight by lr against the gradient's sign
    Tensor([ 0.9, -0.9], requires_grad=True)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False):
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"{type(self).__name__}: betas must lie in [0, 1), got {betas}")
        if eps < 0:
            raise ValueError(f"{type(self).__name__}: eps must be >= 0, got {eps}")
        super().__init__(params, {"lr": lr, "betas": (b1, b2), "eps": eps, "weight_decay": weight_decay,
                                  "decoupled_weight_decay": decoupled_weight_decay})

    def step(self):
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            decoupled = group["decoupled_weight_decay"]
            for p, g, st in self._grads(group):
                xp = p.backend.xp
                if wd and decoupled:
                    with _no_grad():
                        p *= 1.0 - lr * wd
                elif wd:
                    g = g + wd * p.data
                if "step" not in st:
                    st["step"] = 0
                    st["exp_avg"] = xp.zeros_like(p.data)
                    st["exp_avg_sq"] = xp.zeros_like(p.data)
                st["step"] += 1
                t = st["step"]
                m, v = st["exp_avg"], st["exp_avg_sq"]
                m *= b1
                m += (1.0 - b1) * g
                v *= b2
                v += (1.0 - b2) * (g * g)
                denom = xp.sqrt(v) * (1.0 / _math.sqrt(1.0 - b2 ** t)) + eps
                self._update(p, m / denom, -lr / (1.0 - b1 ** t))


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01), as ``torch.optim.AdamW``.

    >>> import gradtape as gt
    >>> w = gt.nn.Parameter(gt.asarray([1.0]))
    >>> opt = gt.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> opt.zero_grad(); gt.sum(w * w).backward(); opt.step()
    >>> round(w.item(), 6)      # 1 * (1 - 0.1*0.5) - 0.1
    0.85
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         decoupled_weight_decay=True)
