"""gt.optim's functional form (issue 11, part 4): ``opt = SGD(lr=...)`` without parameters,
``state = opt.init(params)``, ``params, state = opt.update(grads, state, params)`` over any pytree.

Checked: the same numbers as the in-place ``step()`` on a Module (bit for bit) and as torch.optim; purity;
the structure of every kind of pytree node kept; gt.grad through an update (meta-learning); the errors."""
import collections
import math

import numpy as np
import pytest

import gradtape as gt
from gradtape.testing import check_grads

P = collections.namedtuple("P", "x y")

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.03, betas=(0.85, 0.95), weight_decay=0.2)),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in CONFIGS]


def np_of(t):
    return np.asarray(gt.to_numpy(t))


def fake_grad(p):
    """A gradient that depends on the parameter (so momentum/moments see changing inputs), same ops on both sides."""
    return 2.0 * p + gt.sin(3.0 * p)


class Net(gt.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = gt.nn.Linear(3, 2, generator=1, dtype=gt.float64)
        self.scale = gt.nn.Parameter(gt.asarray([0.5, -1.5, 2.0], dtype=gt.float64))


# ---- the same numbers as the in-place form ----------------------------------------------------------------

@pytest.mark.parametrize("name, kw", CONFIGS, ids=IDS)
def test_functional_equals_in_place_on_a_module(name, kw):
    net = Net()
    params = {k: gt.asarray(np_of(p).copy()) for k, p in net.named_parameters()}
    inplace = getattr(gt.optim, name)(net.parameters(), **kw)
    opt = getattr(gt.optim, name)(**kw)
    state = opt.init(params)
    for _ in range(6):
        for p in net.parameters():
            with gt.no_grad():
                p.grad = fake_grad(p.detach())
        inplace.step()
        params, state = opt.update({k: fake_grad(v) for k, v in params.items()}, state, params)
    assert state["step"] == 6
    for k, p in net.named_parameters():
        np.testing.assert_array_equal(np_of(params[k]), np_of(p), err_msg=k)


@pytest.mark.parametrize("name, kw", CONFIGS, ids=IDS)
def test_functional_equals_torch_optim(name, kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    init = {"w": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
    tparams = [torch.tensor(init[k], requires_grad=True) for k in ("b", "w")]
    tkw = dict(kw)
    topt = getattr(torch.optim, name)(tparams, **tkw)
    opt = getattr(gt.optim, name)(**kw)
    params = {k: gt.asarray(v) for k, v in init.items()}
    state = opt.init(params)
    for _ in range(5):
        for tp in tparams:
            tp.grad = (2.0 * tp + torch.sin(3.0 * tp)).detach()
        topt.step()
        params, state = opt.update({k: fake_grad(v) for k, v in params.items()}, state, params)
    for k, tp in zip(("b", "w"), tparams):
        np.testing.assert_allclose(np_of(params[k]), tp.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=k)


def test_float32_parameters_stay_float32_and_match_in_place():
    w = gt.nn.Parameter(gt.asarray([1.0, -2.0, 0.25], dtype=gt.float32))
    inplace = gt.optim.Adam([w], lr=0.1, weight_decay=0.01)
    opt = gt.optim.Adam(lr=0.1, weight_decay=0.01)
    params = [gt.asarray(np_of(w).copy())]
    state = opt.init(params)
    for _ in range(3):
        with gt.no_grad():
            w.grad = fake_grad(w.detach())
        inplace.step()
        params, state = opt.update([fake_grad(params[0])], state, params)
    assert params[0].dtype == gt.float32 and state["exp_avg"][0].dtype == gt.float32
    np.testing.assert_array_equal(np_of(params[0]), np_of(w))


def test_hand_computed_steps():
    # SGD momentum 0.9, lr 0.1, f = sum(w**2): b1 = 2, w1 = 1 - 0.2 = 0.8; b2 = 1.8 + 1.6 = 3.4, w2 = 0.46
    opt = gt.optim.SGD(lr=0.1, momentum=0.9)
    w = gt.asarray([1.0])
    state = opt.init(w)
    for _ in range(2):
        w, state = opt.update(2 * w, state, w)
    assert math.isclose(w.item(), 0.46, rel_tol=1e-12)
    assert math.isclose(state["momentum_buffer"].item(), 3.4, rel_tol=1e-12)
    # AdamW: p(1 - lr wd) - lr on the first step
    opt = gt.optim.AdamW(lr=0.1, weight_decay=0.5)
    w, state = opt.update(gt.asarray([2.0]), opt.init(gt.asarray([1.0])), gt.asarray([1.0]))
    assert math.isclose(w.item(), 0.85, rel_tol=1e-8)       # eps = 1e-8 in the denominator


# ---- pytrees and purity -----------------------------------------------------------------------------------

def nested(rng):
    a = lambda *s: gt.asarray(rng.standard_normal(s))  # noqa: E731
    return {"dense": [a(3, 2), None, (a(2),)], "nt": P(x=a(4), y=[a(1, 1)]), "z": a()}


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_every_node_kind_keeps_its_structure(name):
    rng = np.random.default_rng(1)
    params, grads = nested(rng), nested(rng)
    opt = getattr(gt.optim, name)(lr=0.1, **({"momentum": 0.9} if name == "SGD" else {}))
    state = opt.init(params)
    spec = gt.tree.structure(params)
    new, state2 = opt.update(grads, state, params)
    assert gt.tree.structure(new) == spec
    for k in state2:
        if k != "step":
            assert gt.tree.structure(state2[k]) == spec
    assert new["dense"][1] is None and type(new["nt"]) is P
    for p, g, q in zip(gt.tree.leaves(params), gt.tree.leaves(grads), gt.tree.leaves(new)):
        assert q.shape == p.shape
        if name == "SGD":
            np.testing.assert_allclose(np_of(q), np_of(p) - 0.1 * np_of(g), rtol=1e-14)
        else:  # the first Adam step moves every element by lr against its gradient's sign (after AdamW's decay)
            decay = 1 - 0.1 * 0.01 if name == "AdamW" else 1.0
            np.testing.assert_allclose(np_of(q), decay * np_of(p) - 0.1 * np.sign(np_of(g)), rtol=1e-6)


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_update_is_pure(name):
    rng = np.random.default_rng(2)
    params, grads = nested(rng), nested(rng)
    opt = getattr(gt.optim, name)(lr=0.1, **({"momentum": 0.9} if name == "SGD" else {}))
    state = opt.init(params)
    params, state = opt.update(grads, state, params)       # step 1, so the buffers are non-zero
    before = [np_of(v).copy() for v in gt.tree.leaves((params, grads, state))]
    ids = [id(v) for v in gt.tree.leaves((params, grads, state))]
    versions = [v._version for v in gt.tree.leaves((params, grads, state)) if isinstance(v, gt.Tensor)]
    new, new_state = opt.update(grads, state, params)
    after = gt.tree.leaves((params, grads, state))
    assert [id(v) for v in after] == ids and state["step"] == 1 and new_state["step"] == 2
    assert versions == [v._version for v in after if isinstance(v, gt.Tensor)]
    for b, v in zip(before, after):
        np.testing.assert_array_equal(np_of(v), b)
    assert not any(np.array_equal(np_of(a), np_of(b)) for a, b in zip(gt.tree.leaves(new), gt.tree.leaves(params)))


def test_dict_keys_in_any_order_and_a_module_keep_their_structure():
    params = {"b": gt.asarray([1.0]), "a": gt.asarray([2.0, 3.0])}
    new, _ = gt.optim.SGD(lr=0.5).update({"a": gt.asarray([1.0, 1.0]), "b": gt.asarray([2.0])},
                                          gt.optim.SGD(lr=0.5).init(params), params)
    np.testing.assert_array_equal(np_of(new["a"]), [1.5, 2.5])
    np.testing.assert_array_equal(np_of(new["b"]), [0.0])
    assert gt.tree.structure(new) == gt.tree.structure(params)


def test_a_module_is_a_parameter_pytree_and_matches_the_in_place_step():
    """gt.grad of a loss of the Module gives a Module of gradients; update gives a new Module (the old one kept),
    with the numbers of the in-place step on an identical Module."""
    x = gt.asarray(np.random.default_rng(4).standard_normal((5, 3)))
    loss = lambda m: gt.sum(gt.tanh(m.lin(x * m.scale)) ** 2)  # noqa: E731
    net, ref = Net(), Net()
    before = {k: np_of(p).copy() for k, p in net.named_parameters()}
    opt, inplace = gt.optim.Adam(lr=0.05, weight_decay=0.1), gt.optim.Adam(ref.parameters(), lr=0.05, weight_decay=0.1)
    state, cur = opt.init(net), net
    for _ in range(3):
        g = gt.grad(loss)(cur)
        assert type(g) is Net
        with gt.no_grad():
            cur, state = opt.update(g, state, cur)
        inplace.zero_grad()
        loss(ref).backward()
        inplace.step()
    assert type(cur) is Net and cur is not net and type(state["exp_avg"]) is Net
    for k, p in net.named_parameters():
        np.testing.assert_array_equal(np_of(p), before[k])                     # the input Module is unchanged
    for (k, p), (_, q) in zip(cur.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(np_of(p), np_of(q), rtol=1e-13, atol=1e-15, err_msg=k)


def test_a_single_tensor_is_a_pytree():
    opt = gt.optim.Adam(lr=0.5)
    w = gt.asarray([1.0, -3.0])
    w2, state = opt.update(gt.asarray([0.1, -0.2]), opt.init(w), w)
    assert isinstance(w2, gt.Tensor) and isinstance(state["exp_avg"], gt.Tensor)
    np.testing.assert_allclose(np_of(w2), [0.5, -2.5], rtol=1e-6)


def test_sgd_without_momentum_keeps_only_the_step():
    opt = gt.optim.SGD(lr=0.1)
    state = opt.init({"w": gt.asarray([1.0])})
    assert state == {"step": 0}


# ---- differentiating through an update (meta-learning) ----------------------------------------------------

def test_grad_through_one_sgd_step_wrt_the_parameters():
    # f(p) = sum(p**2); p' = p - lr (2 + wd) p = c p; L = sum(p'**2) = c**2 sum(p**2); dL/dp = 2 c**2 p
    lr, wd = 0.1, 0.5
    opt = gt.optim.SGD(lr=lr, momentum=0.9, weight_decay=wd)
    f = lambda p: gt.sum(p ** 2)  # noqa: E731

    def outer(p):
        new, _ = opt.update(gt.grad(f)(p), opt.init(p), p)
        return gt.sum(new ** 2)
    p = gt.asarray([1.0, -2.0, 0.5])
    c = 1 - lr * (2 + wd)
    np.testing.assert_allclose(np_of(gt.grad(outer)(p)), 2 * c ** 2 * np_of(p), rtol=1e-12)


def test_grad_through_one_sgd_step_wrt_the_learning_rate():
    p = gt.asarray([1.0, -2.0, 0.5])

    def outer(lr):
        opt = gt.optim.SGD(lr=lr)
        new, _ = opt.update(2 * p, opt.init(p), p)       # p' = (1 - 2 lr) p
        return gt.sum(new ** 2)
    lr = gt.asarray(0.1)
    expected = 2 * (1 - 2 * 0.1) * (-2) * float(np.sum(np_of(p) ** 2))
    assert math.isclose(gt.grad(outer)(lr).item(), expected, rel_tol=1e-12)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_grad_wrt_a_tensor_learning_rate_matches_finite_differences(name):
    """A tensor lr is a hyper-parameter gt.grad can differentiate (hyper-gradient descent)."""
    kw = {"momentum": 0.5} if name == "SGD" else {"weight_decay": 0.2}
    p = {"w": gt.asarray([1.0, -2.0, 0.5]), "b": gt.asarray(0.3)}
    loss = lambda q: gt.sum(gt.sin(q["w"]) * q["b"]) + q["b"] ** 2  # noqa: E731

    def outer(lr):
        opt = getattr(gt.optim, name)(lr=lr, **kw)
        params, state = p, opt.init(p)
        for _ in range(2):
            params, state = opt.update(gt.grad(loss)(params), state, params)
        return loss(params)
    check_grads(outer, (gt.asarray(0.05),), order=1, modes=("rev",))


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_grad_through_two_steps_matches_finite_differences(name):
    kw = {"momentum": 0.9, "nesterov": True} if name == "SGD" else {"weight_decay": 0.1}
    opt = getattr(gt.optim, name)(lr=0.05, **kw)
    loss = lambda p: gt.sum(gt.sin(p["a"]) * p["b"]) + gt.sum(p["b"] ** 2)  # noqa: E731

    def outer(a, b):
        params = {"a": a, "b": b}
        state = opt.init(params)
        for _ in range(2):
            g_a, g_b = gt.grad(lambda a, b: loss({"a": a, "b": b}), argnums=(0, 1))(params["a"], params["b"])
            params, state = opt.update({"a": g_a, "b": g_b}, state, params)
        return loss(params)
    rng = np.random.default_rng(3)
    check_grads(outer, (gt.asarray(rng.standard_normal(3)), gt.asarray(rng.standard_normal(3) + 2.0)),
                order=1, modes=("rev",))


# ---- errors ---------------------------------------------------------------------------------------------

def test_grads_of_another_structure_are_a_value_error_naming_both():
    opt = gt.optim.SGD(lr=0.1)
    params = {"w": gt.asarray([1.0]), "b": gt.asarray(0.0)}
    with pytest.raises(ValueError) as e:
        opt.update({"w": gt.asarray([1.0])}, opt.init(params), params)
    msg = str(e.value)
    assert repr(gt.tree.structure({"w": 0})) in msg and repr(gt.tree.structure(params)) in msg
    assert "at the root" in msg
    with pytest.raises(ValueError, match="structure"):
        opt.update([gt.asarray([1.0]), gt.asarray(0.0)], opt.init(params), params)


def test_a_non_tensor_leaf_is_a_type_error_naming_its_path():
    opt = gt.optim.Adam(lr=0.1)
    with pytest.raises(TypeError, match=r"params\['b'\] is a int"):
        opt.init({"w": gt.asarray([1.0]), "b": 3})
    with pytest.raises(TypeError, match=r"params\[0\]\.y\[1\] is a str"):
        opt.init([P(x=gt.asarray(1.0), y=[gt.asarray(2.0), "s"])])
    params = {"w": gt.asarray([1.0, 2.0])}
    with pytest.raises(TypeError, match=r"grads\['w'\] is a ndarray"):
        opt.update({"w": np.ones(2)}, opt.init(params), params)


def test_an_integer_tensor_is_a_type_error_naming_its_path():
    with pytest.raises(TypeError, match=r"params\['n'\] has dtype int64"):
        gt.optim.SGD(lr=0.1).init({"n": gt.asarray([1, 2])})


def test_a_gradient_of_the_wrong_shape_is_a_value_error():
    opt = gt.optim.SGD(lr=0.1)
    params = {"w": gt.asarray([1.0, 2.0])}
    with pytest.raises(ValueError, match=r"grads\['w'\] has shape \(3,\).*shape \(2,\)"):
        opt.update({"w": gt.asarray([1.0, 2.0, 3.0])}, opt.init(params), params)


def test_a_state_of_another_optimiser_or_tree_is_a_value_error():
    params = {"w": gt.asarray([1.0, 2.0])}
    grads = {"w": gt.asarray([1.0, 1.0])}
    with pytest.raises(ValueError, match="exp_avg"):
        gt.optim.Adam(lr=0.1).update(grads, gt.optim.SGD(lr=0.1, momentum=0.9).init(params), params)
    with pytest.raises(ValueError, match=r"state\['momentum_buffer'\] has the structure"):
        gt.optim.SGD(lr=0.1, momentum=0.9).update(grads, {"step": 0, "momentum_buffer": [grads["w"]]}, params)
    with pytest.raises(TypeError, match="step"):
        gt.optim.SGD(lr=0.1).update(grads, {"step": 1.5}, params)


def test_step_of_the_functional_form_is_a_runtime_error():
    opt = gt.optim.AdamW(lr=0.1)
    with pytest.raises(RuntimeError, match="opt.update"):
        opt.step()


def test_hyperparameters_are_checked_without_parameters():
    with pytest.raises(ValueError, match="learning rate"):
        gt.optim.SGD(lr=-1.0)
    with pytest.raises(ValueError, match="betas"):
        gt.optim.Adam(betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="nesterov"):
        gt.optim.SGD(lr=0.1, nesterov=True)


def test_the_namespace_stays_the_optimisers():
    assert sorted(n for n in dir(gt.optim) if not n.startswith("_")) == ["Adam", "AdamW", "Optimizer", "SGD"]


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_an_ensemble_of_models_updated_under_vmap_equals_one_update_per_model(name):
    """update is made of batchable ops: gt.vmap over a stack of parameter trees (an ensemble) gives each
    member's own update, two steps, the state mapped too and its "step" count shared (axis None, as JAX's idiom)."""
    kw = {"momentum": 0.9, "weight_decay": 0.1} if name == "SGD" else {"weight_decay": 0.1}
    opt = getattr(gt.optim, name)(lr=0.1, **kw)
    rng = np.random.default_rng(5)
    stack = {"w": gt.asarray(rng.standard_normal((4, 3, 2))), "b": gt.asarray(rng.standard_normal((4, 2)))}
    grads = [{"w": gt.asarray(rng.standard_normal((4, 3, 2))), "b": gt.asarray(rng.standard_normal((4, 2)))}
             for _ in range(2)]
    axes = {k: None if k == "step" else 0 for k in opt.init({k: v[0] for k, v in stack.items()})}
    state = gt.vmap(opt.init, out_axes=axes)(stack)
    ps = stack
    for g in grads:
        ps, state = gt.vmap(opt.update, in_axes=(0, axes, 0), out_axes=(0, axes))(g, state, ps)
    assert state["step"] == 2
    for m in range(4):
        p = {k: v[m] for k, v in stack.items()}
        st = opt.init(p)
        for g in grads:
            p, st = opt.update({k: v[m] for k, v in g.items()}, st, p)
        for k in p:
            np.testing.assert_allclose(np_of(ps[k][m]), np_of(p[k]), rtol=1e-13, atol=1e-15, err_msg=(m, k))
