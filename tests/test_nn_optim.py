"""gt.nn modules, parameters, initialisers, Dropout, state_dict/.npz, and gt.optim against hand computations."""
import math

import numpy as np
import pytest

import gradtape as gt
from gradtape.testing import check_grads
from conftest import to_np

try:
    import torch
except ImportError:
    torch = None


def arr(a, dtype=None):
    return gt.asarray(np.asarray(a, dtype=dtype or np.float64), device=gt.get_default_device())


class MLP(gt.nn.Module):
    def __init__(self, n_in=4, n_hidden=8, n_out=3, p=0.0):
        super().__init__()
        self.body = gt.nn.Sequential(gt.nn.Linear(n_in, n_hidden, generator=1, dtype=gt.float64), gt.nn.Tanh(), gt.nn.Dropout(p))
        self.head = gt.nn.Linear(n_hidden, n_out, generator=2, dtype=gt.float64)

    def forward(self, x):
        return self.head(self.body(x))


# ---- Parameter and Module ------------------------------------------------------------------------

def test_parameter_is_a_plain_tracked_leaf(device):
    p = gt.nn.Parameter(arr([1.0, 2.0]))
    assert type(p) is gt.Tensor and isinstance(p, gt.nn.Parameter)
    assert p.requires_grad and p.is_leaf and p.grad is None and p.device == device
    assert not isinstance(arr([1.0]), gt.nn.Parameter)
    assert not isinstance(p * 2, gt.nn.Parameter)
    frozen = gt.nn.Parameter(arr([1.0]), requires_grad=False)
    assert isinstance(frozen, gt.nn.Parameter) and not frozen.requires_grad


def test_module_registration_and_names(device):
    net = MLP()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["body.0.weight", "body.0.bias", "head.weight", "head.bias"]
    assert [p.shape for p in net.parameters()] == [(8, 4), (8,), (3, 8), (3,)]
    assert all(p.device == device for p in net.parameters())
    assert [n for n, _ in net.named_modules()] == ["", "body", "body.0", "body.1", "body.2", "head"]
    assert len(list(net.children())) == 2
    net.scale = 3.0                              # plain attributes are not registered
    net.const = arr([1.0])                       # nor plain tensors
    assert len(list(net.parameters())) == 4
    shared = gt.nn.Linear(2, 2)
    twice = gt.nn.Sequential(shared, shared)
    assert len(list(twice.parameters())) == 2    # each parameter once
    del net.head
    assert [n for n, _ in net.named_parameters()] == ["body.0.weight", "body.0.bias"]
    r = repr(MLP())
    assert "Linear(in_features=4, out_features=8, bias=True)" in r and "(head)" in r


def test_module_without_super_init_is_a_clear_error():
    class Bad(gt.nn.Module):
        def __init__(self):
            self.lin = gt.nn.Linear(2, 2)
    with pytest.raises(AttributeError, match="super"):
        Bad()


def test_linear_matches_numpy_and_its_gradients_check(device):
    lin = gt.nn.Linear(3, 2, generator=0, dtype=gt.float64)
    x = arr(np.arange(12.0).reshape(4, 3) / 10)
    W, b = to_np(lin.weight), to_np(lin.bias)
    np.testing.assert_allclose(to_np(lin(x)), to_np(x) @ W.T + b, rtol=1e-12)
    bound = 1 / math.sqrt(3)
    assert np.all(np.abs(W) <= bound) and np.all(np.abs(b) <= bound)
    nobias = gt.nn.Linear(3, 2, bias=False)
    assert nobias.bias is None and len(list(nobias.parameters())) == 1
    check_grads(lambda x, w, b: gt.tanh(x @ w.mT + b), (x, arr(W), arr(b)), order=2)
    assert MLP()(arr(np.ones((2, 4)))).shape == (2, 3)


def test_module_gradients_against_finite_differences(device):
    net = MLP()
    x = arr(np.linspace(-1, 1, 8).reshape(2, 4))
    params = list(net.parameters())

    def loss(x, *ps):
        for (m, name), p in zip([(net.body[0], "weight"), (net.body[0], "bias"), (net.head, "weight"),
                                 (net.head, "bias")], ps):
            object.__setattr__(m, name, p)
        return gt.sum(net(x) ** 2)
    check_grads(loss, (x, *[p.detach() for p in params]), order=1)


def test_activation_modules(device):
    x = arr([-1.0, 0.5])
    np.testing.assert_allclose(to_np(gt.nn.ReLU()(x)), [0.0, 0.5])
    np.testing.assert_allclose(to_np(gt.nn.Sigmoid()(x)), 1 / (1 + np.exp([1.0, -0.5])))
    np.testing.assert_allclose(to_np(gt.nn.Tanh()(x)), np.tanh([-1.0, 0.5]))
    np.testing.assert_allclose(to_np(gt.nn.Softplus()(x)), np.log1p(np.exp([-1.0, 0.5])))
    np.testing.assert_allclose(to_np(gt.nn.Softmax()(x)).sum(), 1.0)
    assert gt.nn.Flatten()(arr(np.ones((2, 3, 4)))).shape == (2, 12)
    assert gt.nn.Identity()(x) is x
    logits = arr([[2.0, 0.5, -1.0]])
    lab = gt.asarray(np.array([0]), device=device)
    np.testing.assert_allclose(to_np(gt.nn.CrossEntropyLoss()(logits, lab)),
                               -np.log(np.exp(2.0) / np.exp([2.0, 0.5, -1.0]).sum()))
    np.testing.assert_allclose(to_np(gt.nn.MSELoss()(arr([1.0, 3.0]), arr([0.0, 1.0]))), 2.5)


# ---- random numbers and initialisers ---------------------------------------------------------------

def test_generator_is_seedable_on_each_backend(device):
    a = gt.nn.Generator(7).normal((3, 4), dtype=gt.float32)
    b = gt.nn.Generator(7).normal((3, 4), dtype=gt.float32)
    c = gt.nn.Generator(8).normal((3, 4), dtype=gt.float32)
    assert a.device == device and a.dtype == gt.float32 and not a.requires_grad
    np.testing.assert_array_equal(to_np(a), to_np(b))
    assert not np.array_equal(to_np(a), to_np(c))
    g = gt.nn.Generator(0)
    u = to_np(g.uniform((1000,), low=2.0, high=3.0))
    assert u.dtype == np.float64 and u.min() >= 2.0 and u.max() < 3.0
    m = to_np(g.bernoulli(0.25, (4000,)))
    assert set(np.unique(m)) <= {0.0, 1.0} and abs(m.mean() - 0.25) < 0.03
    perm = to_np(g.permutation(10))
    assert sorted(perm.tolist()) == list(range(10))
    ints = to_np(g.integers(0, 5, (100,)))
    assert ints.min() >= 0 and ints.max() < 5
    with pytest.raises(TypeError, match="float32 or float64"):
        g.normal((2,), dtype=gt.int32)


def test_manual_seed_makes_initial_weights_reproducible(device):
    gt.nn.manual_seed(123)
    w1 = to_np(gt.nn.Linear(5, 4).weight)
    gt.nn.manual_seed(123)
    w2 = to_np(gt.nn.Linear(5, 4).weight)
    np.testing.assert_array_equal(w1, w2)
    assert gt.nn.default_generator().seed == 123


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_initialisers_statistics(device, dtype):
    t = gt.zeros((200, 300), dtype=getattr(gt, dtype))
    v0 = t._version
    out = gt.nn.init.xavier_uniform_(t, generator=0)
    assert out is t and t._version > v0 and t.dtype == getattr(gt, dtype)
    a = math.sqrt(6 / 500)
    w = to_np(t)
    assert np.abs(w).max() <= a and abs(w.std() - a / math.sqrt(3)) < 0.02 * a
    w = to_np(gt.nn.init.xavier_normal_(t, gain=2.0, generator=1))
    assert abs(w.std() - 2 * math.sqrt(2 / 500)) < 0.03 * 2 * math.sqrt(2 / 500)
    w = to_np(gt.nn.init.kaiming_normal_(t, nonlinearity="relu", generator=2))
    assert abs(w.std() - math.sqrt(2 / 300)) < 0.03 * math.sqrt(2 / 300)
    w = to_np(gt.nn.init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu", generator=3))
    assert np.abs(w).max() <= math.sqrt(6 / 200) and abs(w.std() - math.sqrt(2 / 200)) < 0.03 * math.sqrt(2 / 200)
    np.testing.assert_array_equal(to_np(gt.nn.init.zeros_(t)), 0)
    np.testing.assert_array_equal(to_np(gt.nn.init.ones_(t)), 1)
    np.testing.assert_array_equal(to_np(gt.nn.init.constant_(t, 0.5)), 0.5)
    w = to_np(gt.nn.init.normal_(t, 1.0, 0.1, generator=4))
    assert abs(w.mean() - 1.0) < 0.01
    w = to_np(gt.nn.init.uniform_(t, -0.1, 0.1, generator=4))
    assert w.min() >= -0.1 and w.max() < 0.1


def test_initialiser_errors(device):
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        gt.nn.init.xavier_uniform_(gt.zeros((3,)))
    with pytest.raises(ValueError, match="mode"):
        gt.nn.init.kaiming_normal_(gt.zeros((3, 3)), mode="fan_avg")
    with pytest.raises(TypeError, match="floating-point"):
        gt.nn.init.normal_(gt.zeros((3, 3), dtype=gt.int64))
    x = arr([1.0]).requires_grad_()
    with pytest.raises(RuntimeError, match="not a leaf"):
        gt.nn.init.zeros_(x * 2)
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        gt.nn.init.calculate_gain("swish")
    assert gt.nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert gt.nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))


def test_initialising_a_saved_parameter_invalidates_its_graph(device):
    p = gt.nn.Parameter(arr([1.0, 2.0]))
    y = gt.sum(p * p)
    gt.nn.init.zeros_(p)
    with pytest.raises(RuntimeError, match="changed in place"):
        y.backward()


# ---- training mode and Dropout ------------------------------------------------------------------------

def test_training_mode_follows_record_unless_pinned(device):
    net = MLP()
    assert not net.training
    with gt.record():
        assert net.training                      # MXNet: record() has train_mode=True
    with gt.record(train_mode=False):
        assert not net.training
    with gt.train_mode():
        assert net.training
    net.train()
    assert net.training and net.body[2].training
    with gt.record(train_mode=False):
        assert net.training                      # pinned (PyTorch)
    net.eval()
    with gt.record():
        assert not net.training and not net.head.training
    net.train(None)
    assert not net.training


def test_dropout_only_in_training_mode(device):
    x = arr(np.ones((50, 40)))
    drop = gt.nn.Dropout(0.3, generator=0)
    assert drop(x) is x
    with gt.record(train_mode=False):
        assert drop(x) is x
    with gt.record():
        y = to_np(drop(x))
    vals = set(np.unique(y).tolist())
    assert vals == {0.0, 1 / 0.7} or np.allclose(sorted(vals), [0.0, 1 / 0.7])
    assert abs((y == 0).mean() - 0.3) < 0.03
    drop.eval()
    with gt.record():
        assert drop(x) is x
    drop.train()
    assert not np.array_equal(to_np(drop(x)), to_np(x))
    assert float(gt.sum(gt.nn.Dropout(1.0).train()(x))) == 0.0
    assert gt.nn.Dropout(0.0).train()(x) is x
    with pytest.raises(ValueError, match="0, 1"):
        gt.nn.Dropout(1.5)


def test_dropout_gradient_is_the_mask(device):
    x = arr(np.linspace(1, 2, 30)).requires_grad_()
    drop = gt.nn.Dropout(0.5, generator=3).train()
    y = drop(x)
    gt.sum(y).backward()
    mask = to_np(y) / to_np(x)
    np.testing.assert_allclose(to_np(x.grad), mask)
    assert set(np.round(np.unique(mask), 12).tolist()) <= {0.0, 2.0}


def test_dropout_seeded_masks_repeat():
    x = gt.ones((100,))
    a = to_np(gt.nn.Dropout(0.5, generator=11).train()(x))
    b = to_np(gt.nn.Dropout(0.5, generator=11).train()(x))
    np.testing.assert_array_equal(a, b)


# ---- state_dict and .npz ----------------------------------------------------------------------------

def test_state_dict_round_trip(device):
    a, b = MLP(), MLP()
    b.apply(lambda m: [gt.nn.init.zeros_(p) for p in m.parameters(recurse=False)])
    sd = a.state_dict()
    assert list(sd) == [n for n, _ in a.named_parameters()]
    assert all(not v.requires_grad and v.device == device for v in sd.values())
    ids = [id(p) for p in b.parameters()]
    b.load_state_dict(sd)
    assert [id(p) for p in b.parameters()] == ids          # loaded in place: optimisers stay valid
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(to_np(p), to_np(q))
    with gt.no_grad():                                     # the state_dict holds copies
        a.head.bias -= 1.0
    np.testing.assert_array_equal(to_np(sd["head.bias"]), to_np(b.head.bias))
    x = arr(np.ones((2, 4)))
    np.testing.assert_allclose(to_np(MLP().load_state_dict(sd) or b(x)), to_np(b(x)))


def test_bad_state_dict_is_rejected_and_nothing_written(device):
    net = MLP()
    before = {k: to_np(v) for k, v in net.state_dict().items()}
    sd = net.state_dict()
    sd["head.bias"] = arr(np.ones(3))
    del sd["body.0.bias"]
    with pytest.raises(KeyError, match=r"missing keys \['body.0.bias'\]"):
        net.load_state_dict(sd)
    sd2 = net.state_dict()
    sd2["extra.weight"] = arr([1.0])
    with pytest.raises(KeyError, match=r"unexpected keys \['extra.weight'\]"):
        net.load_state_dict(sd2)
    sd3 = net.state_dict()
    sd3["head.weight"] = arr(np.zeros((8, 3)))
    sd3["body.0.bias"] = np.ones(8)                       # NumPy arrays are accepted
    with pytest.raises(ValueError, match=r"head.weight: expected shape \(3, 8\), got \(8, 3\)"):
        net.load_state_dict(sd3)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(to_np(v), before[k])
    # strict=False loads what matches
    sd4 = {"head.bias": np.full(3, 7.0), "nonsense": np.zeros(2)}
    net.load_state_dict(sd4, strict=False)
    np.testing.assert_array_equal(to_np(net.head.bias), 7.0)
    with pytest.raises(ValueError, match="shape"):
        net.load_state_dict({"head.bias": np.zeros(4)}, strict=False)


def test_load_state_dict_casts_to_the_parameter_dtype(device):
    lin = gt.nn.Linear(2, 2, dtype=gt.float32)
    lin.load_state_dict({"weight": np.eye(2), "bias": np.zeros(2)})
    assert lin.weight.dtype == gt.float32 and lin.weight.device == device
    np.testing.assert_array_equal(to_np(lin.weight), np.eye(2))


def test_save_and_load_npz(device, tmp_path):
    a = MLP()
    path = tmp_path / "mlp.npz"
    a.save(str(path))
    with np.load(path) as z:
        assert sorted(z.files) == sorted(n for n, _ in a.named_parameters())
    b = MLP()
    gt.nn.init.zeros_(b.head.weight)
    assert b.load(str(path)) is b
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(to_np(p), to_np(q))
        assert q.device == device
    bigger = gt.nn.Sequential(gt.nn.Linear(4, 8))
    with pytest.raises(KeyError, match="missing keys|unexpected keys"):
        bigger.load(str(path))
    other = MLP(n_hidden=5)
    with pytest.raises(ValueError, match="body.0.weight: expected shape"):
        other.load(str(path))


def test_buffers_are_saved(device):
    m = gt.nn.Module()
    m.register_buffer("running", arr([1.0, 2.0]))
    m.register_parameter("w", arr([3.0]))
    assert list(m.state_dict()) == ["w", "running"]
    m.load_state_dict({"w": np.array([4.0]), "running": np.array([5.0, 6.0])})
    np.testing.assert_array_equal(to_np(m.running), [5.0, 6.0])
    m.running = m.running * 0.5                  # assigning a tensor to a buffer keeps it a buffer
    assert list(m.state_dict()) == ["w", "running"]
    np.testing.assert_array_equal(to_np(m.state_dict()["running"]), [2.5, 3.0])


def test_to_device_moves_parameters():
    net = MLP()
    x = np.ones((2, 4))
    ref = to_np(net(gt.asarray(x)))
    net.to_device("strict")
    assert all(p.device == "strict" and isinstance(p, gt.nn.Parameter) and p.requires_grad
               for p in net.parameters())
    np.testing.assert_allclose(to_np(net(gt.asarray(x, device="strict"))), ref, rtol=1e-12)


def test_zero_grad(device):
    net = MLP()
    gt.sum(net(arr(np.ones((2, 4))))).backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(float(gt.sum(gt.abs(p.grad))) == 0.0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


# ---- optimisers against hand computations -----------------------------------------------------------

P0 = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])


def _grad_fn(p):
    """Gradient of the test loss sum(p**3)/3 + sum(p): p**2 + 1."""
    return p ** 2 + 1.0


def _run(opt_factory, steps=4, device="cpu", dtype=np.float64):
    p = gt.nn.Parameter(gt.asarray(P0.astype(dtype), device=device))
    opt = opt_factory([p])
    ident = id(p)
    for _ in range(steps):
        opt.zero_grad()
        loss = gt.sum(p * p * p) / 3 + gt.sum(p)
        loss.backward()
        opt.step()
    assert id(p) == ident and p.requires_grad and p.is_leaf
    return to_np(p)


def _sgd_ref(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, steps=4):
    p = P0.copy()
    buf = None
    for _ in range(steps):
        g = _grad_fn(p) + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def _adam_ref(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False, steps=4):
    p = P0.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t in range(1, steps + 1):
        g = _grad_fn(p)
        if weight_decay and decoupled:
            p = p * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        mhat = m / (1 - betas[0] ** t)
        vhat = v / (1 - betas[1] ** t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return p


SGD_CASES = [dict(lr=0.1), dict(lr=0.05, momentum=0.9), dict(lr=0.05, momentum=0.9, dampening=0.3),
             dict(lr=0.05, momentum=0.8, weight_decay=0.1), dict(lr=0.05, momentum=0.9, nesterov=True),
             dict(lr=0.02, momentum=0.5, weight_decay=0.01, nesterov=True)]
ADAM_CASES = [dict(lr=0.1), dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6), dict(lr=0.05, weight_decay=0.1),
              dict(lr=0.05, weight_decay=0.1, decoupled=True)]


@pytest.mark.parametrize("kw", SGD_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_sgd_matches_hand_computation(device, kw):
    got = _run(lambda ps: gt.optim.SGD(ps, **kw), device=device)
    np.testing.assert_allclose(got, _sgd_ref(**kw), rtol=1e-12, atol=1e-14)


def test_one_sgd_step_by_hand():
    p = gt.nn.Parameter(gt.asarray([1.0, 2.0]))
    opt = gt.optim.SGD([p], lr=0.5, momentum=0.9, weight_decay=0.1)
    gt.sum(p * p).backward()                 # g = 2p = [2, 4]; + 0.1 p = [2.1, 4.2]
    opt.step()
    np.testing.assert_allclose(to_np(p), [1 - 0.5 * 2.1, 2 - 0.5 * 4.2])


@pytest.mark.parametrize("kw", ADAM_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_adam_matches_hand_computation(device, kw):
    kw = dict(kw)
    decoupled = kw.pop("decoupled", False)
    got = _run(lambda ps: gt.optim.Adam(ps, decoupled_weight_decay=decoupled, **kw), device=device)
    np.testing.assert_allclose(got, _adam_ref(decoupled=decoupled, **kw), rtol=1e-12, atol=1e-14)


def test_one_adam_step_by_hand():
    p = gt.nn.Parameter(gt.asarray([3.0]))
    opt = gt.optim.Adam([p], lr=0.01)
    gt.sum(p * p).backward()                 # g = 6; m = 0.6, v = 0.036; mhat = 6, vhat = 36 -> step 0.01 * 6/6
    opt.step()
    np.testing.assert_allclose(to_np(p), [3.0 - 0.01 * 6 / (6 + 1e-8)])


def test_adamw_is_decoupled_adam():
    a = _run(lambda ps: gt.optim.AdamW(ps, lr=0.05, weight_decay=0.2))
    np.testing.assert_allclose(a, _adam_ref(lr=0.05, weight_decay=0.2, decoupled=True), rtol=1e-12)
    assert gt.optim.AdamW([gt.nn.Parameter(gt.ones(2))]).param_groups[0]["weight_decay"] == 0.01


def test_optimisers_keep_float32(device):
    got = _run(lambda ps: gt.optim.Adam(ps, lr=0.05), device=device, dtype=np.float32)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, _adam_ref(lr=0.05), rtol=1e-5)
    got = _run(lambda ps: gt.optim.SGD(ps, lr=0.05, momentum=0.9), device=device, dtype=np.float32)
    assert got.dtype == np.float32


@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
@pytest.mark.parametrize("which", ["sgd", "nesterov", "adam", "adam_l2", "adamw"])
def test_optimisers_match_pytorch(which):
    make = {"sgd": (lambda g, ps: g.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01, dampening=0.1)),
            "nesterov": (lambda g, ps: g.SGD(ps, lr=0.05, momentum=0.9, nesterov=True)),
            "adam": (lambda g, ps: g.Adam(ps, lr=0.05, betas=(0.85, 0.995))),
            "adam_l2": (lambda g, ps: g.Adam(ps, lr=0.05, weight_decay=0.1)),
            "adamw": (lambda g, ps: g.AdamW(ps, lr=0.05, weight_decay=0.1))}[which]
    got = _run(lambda ps: make(gt.optim, ps), steps=6)
    tp = torch.tensor(P0, requires_grad=True)
    opt = make(torch.optim, [tp])
    for _ in range(6):
        opt.zero_grad()
        (torch.sum(tp ** 3) / 3 + torch.sum(tp)).backward()
        opt.step()
    np.testing.assert_allclose(got, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_param_groups_and_skipped_parameters():
    a = gt.nn.Parameter(gt.asarray([1.0]))
    b = gt.nn.Parameter(gt.asarray([1.0]))
    c = gt.nn.Parameter(gt.asarray([1.0]))
    opt = gt.optim.SGD([{"params": [a]}, {"params": [b, c], "lr": 1.0}], lr=0.1)
    gt.sum(a * 1.0 + b * 1.0).backward()           # c gets no gradient: it is left alone
    opt.step()
    np.testing.assert_allclose([to_np(a)[0], to_np(b)[0], to_np(c)[0]], [0.9, 0.0, 1.0])
    opt.param_groups[0]["lr"] = 0.5               # schedules edit the groups
    opt.step()
    assert to_np(a)[0] == pytest.approx(0.4)


def test_optimiser_errors():
    p = gt.nn.Parameter(gt.ones(2))
    with pytest.raises(ValueError, match="nesterov"):
        gt.optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="empty"):
        gt.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        gt.optim.Adam([p], lr=-1.0)
    with pytest.raises(ValueError, match="betas"):
        gt.optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(TypeError, match="dtype"):
        gt.optim.SGD([gt.ones(2, dtype=gt.int64)], lr=0.1)
    with pytest.raises(ValueError, match="twice"):
        gt.optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="not a leaf"):
        gt.optim.SGD([p * 2], lr=0.1)


def test_step_invalidates_graphs_that_saved_the_old_value():
    p = gt.nn.Parameter(gt.asarray([1.0, 2.0]))
    opt = gt.optim.SGD([p], lr=0.1)
    gt.sum(p * p).backward()
    y = gt.sum(p * p)
    opt.step()
    with pytest.raises(RuntimeError, match="changed in place"):
        y.backward()


def test_training_a_small_model_converges(device):
    gt.nn.manual_seed(0)
    g = gt.nn.Generator(0)
    X = g.normal((200, 3))
    w_true = arr([[1.5], [-2.0], [0.5]])
    y = X @ w_true + 0.3
    model = gt.nn.Sequential(gt.nn.Linear(3, 1, dtype=gt.float64))
    opt = gt.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(150):
        opt.zero_grad()
        loss = gt.nn.MSELoss()(model(X), y)
        loss.backward()
        opt.step()
    assert float(loss) < 1e-4
    np.testing.assert_allclose(to_np(model[0].weight).ravel(), [1.5, -2.0, 0.5], atol=1e-2)


def test_mxnet_style_training_loop(device):
    """record() + backward() + step: the seed's style, with grad_req='write' parameters."""
    lin = gt.nn.Linear(2, 1, generator=0, dtype=gt.float64)
    for p in lin.parameters():
        p.attach_grad()
    opt = gt.optim.SGD(lin.parameters(), lr=0.1)
    X = arr([[1.0, 2.0], [3.0, 4.0]])
    for _ in range(3):
        with gt.record():
            loss = gt.sum(lin(X) ** 2)
        loss.backward()
        opt.step()
    assert isinstance(lin.weight, gt.nn.Parameter) and lin.weight.grad_req == "write"
