"""Reverse-mode entry points: ``backward`` and ``grad`` (MXNet), ``Tensor.backward`` (PyTorch, through
``hooks.backward``), ``GradientTape`` (TensorFlow), the validation of head gradients (:func:`head_gradients`)
and the batched reverse pass behind every Jacobian (:func:`reverse_jacobians`)."""
from __future__ import annotations

import contextlib

from .._api import asarray, astype, conj, eye, reshape, zeros
from .._core import engine as _engine
from .._core import hooks
from .._core.dispatch import _seq, wrap
from .._core.tensor import Tensor, check_float
from .._state import scoped, state
from .modes import pause


def head_gradients(roots, heads, create_graph, what="backward"):
    """Validate the head gradients and bring them to the form the engine uses (the output's dtype)."""
    if heads is not None and len(heads) != len(roots):
        raise ValueError(f"gradtape.{what}: {len(heads)} head gradients for {len(roots)} outputs; give one per "
                         f"output (None for ones)")
    out = []
    for i, r in enumerate(roots):
        if not isinstance(r, Tensor):
            raise TypeError(f"gradtape.backward: expected a Tensor, got {type(r).__name__}")
        if not r._requires_grad:
            raise RuntimeError(f"gradtape.backward: tensor {i} (shape {r.shape}) does not require grad: nothing "
                               f"was recorded. Call attach_grad()/requires_grad_() on the inputs and compute it "
                               f"inside gt.record() (or not under gt.pause())")
        h = None if heads is None else heads[i]
        if h is None:
            h = r.backend.xp.ones_like(r.data)
        else:
            if not isinstance(h, Tensor):
                h = asarray(h, device=r.device)
            if h.backend is not r.backend:
                raise TypeError(f"gradtape.backward: head gradient on {h.device!r} but the output is on {r.device!r}")
            if h.shape != r.shape:
                raise ValueError(f"gradtape.backward: head gradient has shape {h.shape} but the output has shape "
                                 f"{r.shape}; they must match")
            if h.data.dtype != r.data.dtype:      # as torch: the head takes the output's dtype
                h = astype(h, r.dtype) if create_graph else wrap(r.backend.xp.astype(h.data, r.data.dtype), r.backend)
            h = h if create_graph else h.data
        if create_graph and not isinstance(h, Tensor):
            h = wrap(h, r.backend)
        out.append(_rules_convention(h, r))
    return out


def _rules_convention(h, r):
    """A complex head given in PyTorch's convention (``backward(gradient=g)``, ``vjp``'s cotangent), conjugated
    for the rules, which are written in JAX's (ct times the derivative); a real head as it is."""
    xp = r.backend.xp
    if not xp.isdtype((h.data if isinstance(h, Tensor) else h).dtype, "complex floating"):
        return h
    return conj(h) if isinstance(h, Tensor) else xp.conj(h)


def backward(heads, head_grads=None, retain_graph=None, create_graph=False, train_mode=True):
    """Back-propagate from one or several outputs into the ``.grad`` of their leaves (MXNet ``autograd.backward``).

    >>> import gradtape as gt
    >>> x = gt.asarray([1.0, 2.0]); x.attach_grad()
    >>> with gt.record(): y = x * x
    >>> gt.autograd.backward([y]); x.grad
    Tensor([2., 4.])
    """
    roots = [heads] if isinstance(heads, Tensor) else list(heads)
    if retain_graph is None:
        retain_graph = create_graph
    _engine.run(roots, head_gradients(roots, _listed(head_grads), create_graph), retain_graph=retain_graph,
                create_graph=create_graph)


def grad(heads, variables, head_grads=None, retain_graph=None, create_graph=False, train_mode=True):
    """Gradients of ``heads`` w.r.t. ``variables`` returned (``.grad`` untouched), MXNet/PyTorch style.

    >>> import gradtape as gt
    >>> x = gt.asarray([1.0, 2.0]).requires_grad_()
    >>> gt.autograd.grad((x * x).sum(), [x])
    [Tensor([2., 4.])]
    """
    roots = [heads] if isinstance(heads, Tensor) else list(heads)
    single = isinstance(variables, Tensor)
    sources = [variables] if single else _tensors(variables, "autograd.grad", "variables")
    if retain_graph is None:
        retain_graph = create_graph
    got = _engine.run(roots, head_gradients(roots, _listed(head_grads), create_graph, "autograd.grad"),
                      retain_graph=retain_graph, create_graph=create_graph, sources=sources)
    got = user_convention(gradients_or_zeros(got, sources))
    return got[0] if single else got


def user_convention(gs):
    """Gradients as the user sees them: complex ones conjugated (the rules run in JAX's convention, a user gets
    PyTorch's; README "Complex numbers"), real ones and Nones as they are."""
    return [conj(g) if isinstance(g, Tensor) and g.dtype.kind == "complex floating" else g for g in gs]


def gradients_or_zeros(got, sources):
    """Each gradient, or zeros of its source's shape and dtype where the source is not connected."""
    return [g if g is not None else wrap(s.backend.xp.zeros_like(s.data), s.backend) for g, s in zip(got, sources)]


def _listed(value):
    """None, or ``value`` as a list: its items if it is a list or tuple, else the one value."""
    if value is None:
        return None
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _tensors(xs, what, arg):
    """``xs`` (a Tensor or an iterable of them) as a list; anything else is a TypeError naming ``arg``."""
    if isinstance(xs, Tensor):
        return [xs]
    try:
        xs = list(xs)
    except TypeError:
        xs = [xs]
    for i, x in enumerate(xs):
        if not isinstance(x, Tensor):
            raise TypeError(f"gradtape.{what}: {arg}[{i}] must be a Tensor, got {type(x).__name__}")
    return xs


class GradientTape:
    """TensorFlow-style tape: operations on watched tensors inside are recorded.

    >>> import gradtape as gt
    >>> c = gt.asarray(3.0)
    >>> with gt.GradientTape() as tape:
    ...     tape.watch(c)
    ...     y = c * c
    >>> tape.gradient(y, c)
    Tensor(6.)
    """

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self.persistent = persistent
        self._watched = []
        self._used = False
        self._active = False
        self._end = None      # seq of the first node made after the block: later ones are not on this tape
        self._scope = None    # the recording scope of the ``with`` block

    def __enter__(self):
        self._scope = scoped(enabled=True, recording=state.recording + 1)
        self._scope.__enter__()
        self._active = True
        self._end = None
        return self

    def __exit__(self, *exc):
        self._scope.__exit__(*exc)
        self._active = False
        self._end = next(_seq)
        for t in self._watched:   # stop tracking what only this tape was tracking
            if t._node is None and t._grad_req is None:
                t._requires_grad = False
        return False

    def watch(self, tensor):
        """Record operations on ``tensor`` (which need not require grad)."""
        for t in ([tensor] if isinstance(tensor, Tensor) else list(tensor)):
            if not isinstance(t, Tensor):
                raise TypeError(f"GradientTape.watch: expected a Tensor, got {type(t).__name__}")
            check_float(t, "GradientTape.watch")
            if not t._requires_grad:
                t._requires_grad = True
                self._watched.append(t)

    @contextlib.contextmanager
    def stop_recording(self):
        """Pause this tape inside."""
        with pause():
            yield

    def gradient(self, target, sources, output_gradients=None):
        """d(sum of target * output_gradients)/d(sources), in the structure of ``sources`` (None where unconnected)."""
        if self._used and not self.persistent:
            raise RuntimeError("GradientTape.gradient can only be called once on a non-persistent tape; "
                               "use GradientTape(persistent=True) to call it several times")
        single = isinstance(sources, Tensor)
        srcs = [sources] if single else _tensors(sources, "GradientTape.gradient", "sources")
        targets = [target] if isinstance(target, Tensor) else list(target)
        given = _listed(output_gradients)
        if given is not None and len(given) != len(targets):
            raise ValueError(f"GradientTape.gradient: {len(given)} output_gradients for {len(targets)} targets; "
                             f"give one per target")
        self._used = True
        live = [t for t in targets if self._recorded(t)]
        if not live:      # the target does not depend on anything recorded: no gradient (TensorFlow's None)
            return None if single else [None] * len(srcs)
        if len(live) != len(targets):
            given = None if given is None else [g for g, t in zip(given, targets) if self._recorded(t)]
            targets = live
        create = state.enabled and state.recording > 0   # inside an outer tape/record: record this pass too
        back = self._rewatch(targets)
        try:
            got = user_convention(_engine.run(targets, head_gradients(targets, given, create,
                                                                      "GradientTape.gradient"),
                                              retain_graph=self.persistent or create, create_graph=create,
                                              sources=srcs))
        finally:
            self._unwatch(back)
        return got[0] if single else got

    def _recorded(self, t):
        """Whether ``t`` is on this tape: tracked (or watched by it), and not computed after the ``with``
        block (TensorFlow)."""
        if not isinstance(t, Tensor):
            return False
        if not t._requires_grad:
            return t._node is None and any(t is w for w in self._watched)
        return self._end is None or t._node is None or t._node.seq < self._end

    def _rewatch(self, targets):
        """After the block, a target that is a tensor this tape watched is tracked again while the tape
        differentiates it (the gradient of a watched tensor w.r.t. itself)."""
        back = [t for t in targets if not t._requires_grad and t._node is None and any(t is w for w in self._watched)]
        for t in back:
            t._requires_grad = True
        return back

    @staticmethod
    def _unwatch(back):
        for t in back:
            if t._node is None and t._grad_req is None:
                t._requires_grad = False

    def jacobian(self, target, sources):
        """Jacobian(s) of ``target`` w.r.t. ``sources``, shaped target.shape + source.shape."""
        single = isinstance(sources, Tensor)
        srcs = [sources] if single else _tensors(sources, "GradientTape.jacobian", "sources")
        if self._used and not self.persistent:
            raise RuntimeError("GradientTape.jacobian can only be called once on a non-persistent tape")
        self._used = True
        if isinstance(target, Tensor) and target._requires_grad and not self._recorded(target):
            return None if single else [None] * len(srcs)    # computed after the block: not on this tape
        back = self._rewatch([target] if isinstance(target, Tensor) else [])
        try:
            out = reverse_jacobians([target], srcs, retain=self.persistent)[0]
        finally:
            self._unwatch(back)
        return out[0] if single else out


def reverse_jacobians(outs, srcs, create=False, retain=None):
    """Per output, its Jacobians w.r.t. each source (``out.shape + src.shape``), from one batched reverse pass
    for all outputs at once: output k's cotangents are rows lo_k:lo_k + size_k of an identity over all output
    elements. ``create``: record the pass (an outer transform differentiates it); ``retain``: keep the graph
    (default: ``create``)."""
    live = [k for k, o in enumerate(outs) if o._requires_grad and o.size]
    m = sum(outs[k].size for k in live)
    got, heads, lo = [None] * len(srcs), [], 0
    for k in live:
        o = outs[k]
        h = reshape(eye(m, o.size, k=-lo, dtype=o.dtype, device=o.device), (m,) + o.shape)
        heads.append(h if create else h.data)
        lo += o.size
    if live:
        got = _engine.run([outs[k] for k in live], heads, retain_graph=create if retain is None else retain,
                          create_graph=create, sources=list(srcs), batch=1)
    rows, lo = [], 0
    for k, o in enumerate(outs):
        if k not in live:
            rows.append([zeros(o.shape + s.shape, dtype=s.dtype, device=s.device) for s in srcs])
            continue
        rows.append([reshape(g[lo:lo + o.size], o.shape + s.shape) if g is not None else
                     zeros(o.shape + s.shape, dtype=s.dtype, device=s.device) for g, s in zip(got, srcs)])
        lo += o.size
    return rows


hooks.backward = backward
