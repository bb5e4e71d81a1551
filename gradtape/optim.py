"""Optimisers: SGD (momentum, dampening, weight decay, Nesterov) and Adam/AdamW, with PyTorch's update rules.

Two ways to use each optimiser, with the same hyper-parameters and the same arithmetic:

* **in place** (PyTorch's form): ``opt = SGD(model.parameters(), lr=0.1)``, then ``opt.step()``;
* **functional** (optax's form): ``opt = SGD(lr=0.1)`` without parameters, ``state = opt.init(params)``,
  then ``params, state = opt.update(grads, state, params)`` for any pytree of tensors (dict, list, tuple,
  namedtuple, ``None`` nodes...). ``update`` is pure: it returns a new parameter tree and a new state and
  changes neither of its inputs; it is written with gradtape's ops, so ``gt.grad`` can differentiate
  through it (meta-learning). ``state`` is a dict: ``"step"`` (a Python int, the number of updates made) and
  one tree per buffer, of the parameters' structure (``"momentum_buffer"``; ``"exp_avg"``, ``"exp_avg_sq"``).
  A ``gt.nn.Module`` is a pytree of its parameters: ``update`` then returns a new Module. Parameters that
  require grad (``nn.Parameter``) make the update a recorded operation like any other; for plain training
  call it under ``gt.no_grad()`` (or pass plain tensors, as ``gt.grad`` returns them).
  Under ``gt.vmap`` (an ensemble of models) map the trees and leave the count shared:
  ``axes = {"step": None, "exp_avg": 0, "exp_avg_sq": 0}``,
  ``gt.vmap(opt.update, in_axes=(0, axes, 0), out_axes=(0, axes))(grads, state, params)``.

In place, ``step()`` reads each parameter's ``.grad`` (parameters without one are
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

from . import _tree
from ._api import sqrt as _sqrt, zeros_like as _zeros_like
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
        self._functional = params is None
        if self._functional:          # the functional form: init/update only
            self._check(self.defaults)
            return
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

    def _groups(self):
        """The parameter groups that ``step()`` updates (a RuntimeError for the functional form)."""
        if self._functional:
            raise RuntimeError(f"{type(self).__name__} was made without parameters (the functional form): use "
                               f"state = opt.init(params), then params, state = opt.update(grads, state, params); "
                               f"or pass the parameters to the constructor to use step()")
        return self.param_groups

    # ---- the functional form (optax's): init / update over pytrees ------------------------------------------
    _BUFFERS = ()   # the names of the per-parameter buffers kept in the functional state

    def init(self, params):
        """The functional state for ``params`` (a pytree of floating-point tensors): ``{"step": 0}`` and,
        per buffer of the optimiser, a tree of zeros of the structure of ``params``.

        >>> import gradtape as gt
        >>> opt = gt.optim.SGD(lr=0.1, momentum=0.9)
        >>> state = opt.init({"w": gt.asarray([1.0, 2.0])})
        >>> state["step"], state["momentum_buffer"]
        (0, {'w': Tensor([0., 0.])})
        """
        leaves, spec = self._flat(params, "params")
        return {"step": 0, **{k: _tree.tree_unflatten(spec, [_zeros_like(p) for p in leaves])
                              for k in self._BUFFERS}}

    def update(self, grads, state, params):
        """``(new_params, new_state)``: one step from ``grads``, a pytree of the structure of ``params``.

        Pure: ``grads``, ``state`` and ``params`` are left as they are. The hyper-parameters are the
        constructor's (``opt.defaults``); the arithmetic is the in-place ``step()``'s, operation for
        operation, so both forms give the same numbers. It is computed with gradtape's ops, so a function of
        the new parameters can be differentiated through the update.

        >>> import gradtape as gt
        >>> opt = gt.optim.SGD(lr=0.1)
        >>> params = {"w": gt.asarray([1.0, -2.0]), "b": gt.asarray(0.5)}
        >>> state = opt.init(params)
        >>> grads = {"w": 2 * params["w"], "b": gt.asarray(1.0)}     # the gradient of sum(w**2) + b
        >>> params, state = opt.update(grads, state, params)
        >>> params["w"], params["b"], state["step"]
        (Tensor([ 0.8, -1.6]), Tensor(0.4), 1)
        """
        name = type(self).__name__
        ps, spec = self._flat(params, "params")
        gs, gspec = self._flat(grads, "grads")
        if gspec != spec:
            raise ValueError(f"{name}.update: grads have the structure {gspec!r} but params {spec!r}"
                             f"{_where(gspec, spec)}")
        for i, (p, g) in enumerate(zip(ps, gs)):
            if g.shape != p.shape or g.backend is not p.backend:
                raise ValueError(f"{name}.update: the gradient {_path(grads, 'grads', i)} has shape {g.shape} "
                                 f"on {g.device!r}, its parameter shape {p.shape} on {p.device!r}")
        step, bufs = self._state_leaves(state, spec, ps)
        new_ps, new_bufs = [], {k: [] for k in self._BUFFERS}
        for i, (p, g) in enumerate(zip(ps, gs)):
            p, b = self._leaf_update(p, g, {k: bufs[k][i] for k in self._BUFFERS}, step)
            new_ps.append(p)
            for k in self._BUFFERS:
                new_bufs[k].append(b[k])
        new_state = {"step": step + 1, **{k: _tree.tree_unflatten(spec, v) for k, v in new_bufs.items()}}
        return _tree.tree_unflatten(spec, new_ps), new_state

    def _flat(self, tree, what):
        """The leaves and structure of ``tree``, each leaf a floating-point tensor (a TypeError naming its path)."""
        leaves, spec = _tree.tree_flatten(tree)
        for i, v in enumerate(leaves):
            if not isinstance(v, _Tensor):
                raise TypeError(f"{type(self).__name__}: {what} must be a pytree of gt.Tensor, but "
                                f"{_path(tree, what, i)} is a {type(v).__name__}")
            if not _is_float(v.dtype):
                raise TypeError(f"{type(self).__name__}: {_path(tree, what, i)} has dtype {v.dtype} "
                                f"(shape {v.shape}) and cannot be optimised; use a floating-point tensor")
        return leaves, spec

    def _state_leaves(self, state, spec, ps):
        """(step, {buffer name: leaves}) of a state made by ``init`` for parameters of structure ``spec``."""
        name = type(self).__name__
        keys = {"step", *self._BUFFERS}
        if not isinstance(state, dict) or set(state) != keys:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{name}.update: the state must be the dict with keys {sorted(keys)} that "
                             f"{name}.init made, got {got}")
        step = state["step"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise TypeError(f"{name}.update: state['step'] must be an int >= 0, got {step!r}")
        bufs = {}
        for k in self._BUFFERS:
            leaves, s = _tree.tree_flatten(state[k])
            if s != spec or any(not isinstance(b, _Tensor) or b.shape != p.shape for b, p in zip(leaves, ps)):
                raise ValueError(f"{name}.update: state[{k!r}] has the structure {s!r} (shapes "
                                 f"{[getattr(b, 'shape', None) for b in leaves]}) but params {spec!r} (shapes "
                                 f"{[p.shape for p in ps]}); make the state with {name}.init(params)")
            bufs[k] = leaves
        return step, bufs

    def _leaf_update(self, p, g, buf, step):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's rule.

    With weight decay ``wd``: g ← g + wd·p. With ``momentum`` μ: b ← g on the
    first step, then b ← μ·b + (1 − dampening)·g; the step direction is b, or
    g + μ·b with ``nesterov``. Then p ← p − lr·direction.

    ``SGD(params, ...)`` updates ``params`` in place with ``step()``; ``SGD(lr=...)`` without parameters is
    the functional form, ``init``/``update`` over a pytree (its state keeps ``"momentum_buffer"`` when
    ``momentum`` > 0).

    >>> import gradtape as gt
    >>> w = gt.nn.Parameter(gt.asarray([1.0]))
    >>> opt = gt.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad(); gt.sum(w * w).backward(); opt.step()
    >>> round(w.item(), 6)      # 1 - 0.1*2 = 0.8; b = 0.9*2 + 1.6 = 3.4; 0.8 - 0.34
    0.46
    """

    def __init__(self, params=None, lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if momentum < 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {momentum}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening = 0")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov})

    def step(self):
        """One update of every parameter that has a gradient."""
        for group in self._groups():
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

    @property
    def _BUFFERS(self):
        return ("momentum_buffer",) if self.defaults["momentum"] else ()

    def _leaf_update(self, p, g, buf, step):
        """step()'s arithmetic on tensors: the new parameter and buffers of one leaf."""
        lr, mu, damp, wd, nest = (self.defaults[k] for k in ("lr", "momentum", "dampening", "weight_decay",
                                                                 "nesterov"))
        if wd:
            g = g + wd * p
        if mu:
            b = g if step == 0 else buf["momentum_buffer"] * mu + ((1.0 - damp) * g if damp else g)
            buf = {"momentum_buffer": b}
            g = g + mu * b if nest else b
        return p + g * (-lr), buf


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's rule; ``decoupled_weight_decay=True`` gives AdamW.

    m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², then
    p ← p − lr·(m / (1 − β₁ᵗ)) / (sqrt(v / (1 − β₂ᵗ)) + eps). Weight decay
    ``wd`` adds wd·p to g (Adam, L2), or with ``decoupled_weight_decay``
    multiplies p by (1 − lr·wd) before the step (AdamW, Loshchilov & Hutter).

    ``Adam(params, ...)`` updates ``params`` in place with ``step()``; ``Adam(lr=...)`` without parameters
    is the functional form, ``init``/``update`` over a pytree (state: ``"step"``, ``"exp_avg"``,
    ``"exp_avg_sq"``).

    >>> import gradtape as gt
    >>> w = gt.nn.Parameter(gt.asarray([1.0, -1.0]))
    >>> opt = gt.optim.Adam([w], lr=0.1)
    >>> opt.zero_grad(); gt.sum(w * w).backward(); opt.step()
    >>> w                       # the first Adam step moves each weight by lr against the gradient's sign
    Tensor([ 0.9, -0.9], requires_grad=True)
    """

    _BUFFERS = ("exp_avg", "exp_avg_sq")

    def __init__(self, params=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
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
        for group in self._groups():
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

    def _leaf_update(self, p, g, buf, step):
        """step()'s arithmetic on tensors: the new parameter and moments of one leaf."""
        d = self.defaults
        lr, (b1, b2), eps, wd = d["lr"], d["betas"], d["eps"], d["weight_decay"]
        t = step + 1
        if wd and d["decoupled_weight_decay"]:
            p = p * (1.0 - lr * wd)
        elif wd:
            g = g + wd * p
        m = buf["exp_avg"] * b1 + (1.0 - b1) * g
        v = buf["exp_avg_sq"] * b2 + (1.0 - b2) * (g * g)
        denom = _sqrt(v) * (1.0 / _math.sqrt(1.0 - b2 ** t)) + eps
        return p + (m / denom) * (-lr / (1.0 - b1 ** t)), {"exp_avg": m, "exp_avg_sq": v}


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01), as ``torch.optim.AdamW``.

    >>> import gradtape as gt
    >>> w = gt.nn.Parameter(gt.asarray([1.0]))
    >>> opt = gt.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> opt.zero_grad(); gt.sum(w * w).backward(); opt.step()
    >>> round(w.item(), 6)      # 1 * (1 - 0.1*0.5) - 0.1
    0.85
    """

    def __init__(self, params=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         decoupled_weight_decay=True)


def _path(tree, name, index):
    """Leaf number ``index`` of ``tree`` written as an expression: ``params['b'][0]``."""
    pairs, _ = _tree.tree_flatten_with_path(tree)
    return name + _tree.keystr(pairs[index][0])


def _where(a, b):
    """Where two structures differ first, for messages ('' when they do not)."""
    d = _tree.spec_difference(a, b)
    return "" if d is None else f" (at {_tree.keystr(d[0]) or 'the root'}: {d[1]} against {d[2]})"
