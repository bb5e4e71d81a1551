"""CuPy-specific tests (marker ``cuda``: skipped with a reason where no GPU is present).

The backend-agnostic suite (op table, transforms, errors, seed cells) already runs on CuPy through
the ``device`` fixture; this file checks what only a GPU has: parity of whole graphs with NumPy,
transfers with gradients, the memory pool after backward, DLPack with PyTorch, device contexts,
and the fused kernels against the generic rules. The first tests need no GPU: gradtape must import
and run where CuPy is missing or sees no GPU.
"""
import gc
import os
import subprocess
import sys

import numpy as np
import pytest

import gradtape as gt
from gradtape import backends
from gradtape._core.dispatch import wrap

HAS_CUDA = "cuda" in backends.available()
_no_gpu = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU with CuPy available "
                                                   "(gradtape.backends.available() lacks 'cuda')")


def cuda(f):
    """Marker ``cuda`` and a skip where no GPU is present."""
    return pytest.mark.cuda(_no_gpu(f))


def _tol(dtype):
    return (2e-4, 1e-5) if dtype == "float32" else (1e-10, 1e-12)


def _close(got, want, dtype, what=""):
    rtol, atol = _tol(dtype)
    scale = max(1.0, float(np.max(np.abs(want)))) if np.size(want) else 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale, err_msg=what)


# ---- without a GPU ---------------------------------------------------------------------------------

def test_import_and_cpu_work_never_import_cupy():
    code = ("import sys, gradtape as gt\n"
            "x = gt.asarray([1.0, 2.0]).requires_grad_()\n"
            "gt.sum(gt.tanh(x) * x).backward()\n"
            "gt.synchronize(); gt.memory_stats()\n"
            "assert 'cupy' not in sys.modules, 'import gradtape imported cupy'\n"
            "print(x.grad.tolist())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(HAS_CUDA, reason="a GPU is present")
def test_cuda_device_without_a_gpu_is_a_clear_error():
    assert "cuda" not in backends.available()
    with pytest.raises(RuntimeError, match="cuda"):
        gt.asarray([1.0], device="cuda")


# ---- devices, creation, transfers ------------------------------------------------------------------

@cuda
def test_device_strings_and_creation_on_the_gpu():
    import cupy as cp
    assert backends.get("cuda") is backends.get("cuda:0")
    made = [gt.zeros((2, 3), device="cuda"), gt.ones(3, device="cuda"), gt.full((2,), 7.0, device="cuda"),
            gt.arange(4, device="cuda"), gt.eye(3, device="cuda"), gt.linspace(0.0, 1.0, 5, device="cuda"),
            gt.empty((2,), device="cuda"), gt.asarray([1.0, 2.0], device="cuda")]
    with gt.default_device("cuda"):
        made += [gt.ones(2), gt.arange(3.0), gt.asarray([[1.0]])]
        assert gt.get_default_device() == "cuda:0"
    made += [gt.zeros_like(made[0]), gt.ones_like(gt.ones(2), device="cuda")]
    for t in made:
        assert t.device == "cuda:0"
        assert isinstance(t.data, cp.ndarray) and t.data.device.id == 0
    assert "device='cuda:0'" in repr(made[1])
    assert isinstance(gt.to_numpy(made[1]), np.ndarray)
    n = cp.cuda.runtime.getDeviceCount()
    with pytest.raises(ValueError, match=f"cuda:{n}"):
        gt.asarray([1.0], device=f"cuda:{n}")


@cuda
def test_wrapping_cupy_arrays_is_zero_copy():
    import cupy as cp
    a = cp.arange(6.0)
    t = gt.asarray(a)
    assert t.device == "cuda:0" and t.data.data.ptr == a.data.ptr
    assert gt.asarray(np.arange(3.0), device="cuda").device == "cuda:0"


@cuda
def test_to_device_round_trips_carry_gradients():
    rng = np.random.default_rng(0)
    xn = rng.standard_normal(5)
    # cpu leaf -> work on the GPU -> result back on the cpu
    x = gt.asarray(xn).requires_grad_()
    y = x.to_device("cuda")
    assert y.device == "cuda:0"
    z = gt.sum(gt.sin(y) * y)
    w = z.to_device("cpu") * 2.0
    assert w.device == "cpu"
    w.backward()
    assert x.grad.device == "cpu"
    _close(gt.to_numpy(x.grad), 2 * (np.cos(xn) * xn + np.sin(xn)), "float64")
    # GPU leaf -> work on the cpu -> gradient lands on the GPU
    u = gt.asarray(xn, device="cuda").requires_grad_()
    v = gt.sum(gt.exp(gt.asarray(u, device="cpu")))
    v.backward()
    assert u.grad.device == "cuda:0"
    _close(gt.to_numpy(u.grad), np.exp(xn), "float64")
    # forward mode through the transfers
    val, tan = gt.jvp(lambda a: gt.to_device(gt.sin(gt.to_device(a, "cuda")), "cpu"),
                      (gt.asarray(xn),), (gt.ones(5),))
    assert val.device == "cpu" and tan.device == "cpu"
    _close(gt.to_numpy(tan), np.cos(xn), "float64")


@cuda
def test_mixing_devices_in_one_op_is_a_type_error_naming_both():
    a = gt.ones(3, device="cuda")
    b = gt.ones(3)
    for f in (lambda: a + b, lambda: b * a, lambda: gt.matmul(gt.ones((2, 3), device="cuda"), gt.ones((3, 2)))):
        with pytest.raises(TypeError) as e:
            f()
        assert "'cuda:0'" in str(e.value) and "'cpu'" in str(e.value)


# ---- parity with NumPy -----------------------------------------------------------------------------

def _g_mlp(p):
    h = gt.nn.relu(p["x"] @ p["W1"] + p["b1"])
    h = gt.tanh(h @ p["W2"])
    return gt.nn.cross_entropy(h, p["labels"])


def _g_activations(p):
    x = p["x"]
    a = gt.nn.sigmoid(x) * gt.nn.softplus(x) + gt.nn.log_softmax(x, axis=-1)
    b = gt.nn.softmax(x, axis=0) * gt.expand_dims(gt.nn.logsumexp(x, axis=1), axis=1)
    return gt.sum(a * b)


def _g_reductions(p):
    x = p["x"]
    return (gt.sum(gt.mean(x, axis=0) * gt.var(x, axis=0)) + gt.sum(gt.std(x, axis=1)) + gt.max(x)
            + gt.sum(gt.min(x, axis=0)) + gt.linalg.vector_norm(x) + gt.sum(gt.prod(x[:, :3], axis=1))
            + gt.sum(gt.cumulative_sum(x, axis=1)))


def _g_indexing(p):
    x = p["x"]
    idx = gt.asarray(np.array([0, 2, 2, 1]), device=x.device)
    a = gt.take(x, idx, axis=0)                         # repeated rows: scatter-add in the backward
    b = x[1:, ::2] * 3.0
    c = gt.take_along_axis(x, gt.asarray(np.array([[0], [1], [3]]), device=x.device), axis=1)
    return gt.sum(a * a) + gt.sum(b) + gt.sum(gt.exp(c))


def _g_shapes(p):
    x, w = p["x"], p["w"]
    y = gt.reshape(gt.permute_dims(x, (1, 0)), (2, -1))
    z = gt.concat([y, y * 2.0], axis=0)
    s = gt.stack([x, x * x], axis=0)
    return gt.sum(z * z) + gt.sum(gt.where(x > 0, s, -s)) + gt.sum(gt.broadcast_to(w, x.shape) * x)


def _g_elementwise(p):
    x, w = p["x"], p["w"]
    return gt.sum(gt.exp(x * 0.1) * gt.log1p(gt.abs(x)) + gt.sqrt(x * x + 1.0) * gt.sin(x) / (2.0 + gt.cos(w))
                  + gt.atan2(x, w + 3.0) + gt.maximum(x, w) + x ** 3)


def _g_linalg(p):
    a = p["a"]
    n = a.shape[-1]
    m = a @ gt.matrix_transpose(a) + 3.0 * gt.eye(n, dtype=a.dtype, device=a.device)
    return gt.sum(gt.linalg.inv(m)) + gt.linalg.det(m) + gt.sum(gt.linalg.solve(m, a))


def _inputs(dtype):
    rng = np.random.default_rng(42)
    return {"x": rng.standard_normal((3, 4)).astype(dtype), "w": rng.standard_normal(4).astype(dtype),
            "W1": rng.standard_normal((4, 5)).astype(dtype), "b1": rng.standard_normal(5).astype(dtype),
            "W2": rng.standard_normal((5, 3)).astype(dtype), "labels": np.array([2, 0, 1]),
            "a": rng.standard_normal((3, 3)).astype(dtype)}


GRAPHS = {"mlp": (_g_mlp, ("x", "W1", "b1", "W2")), "activations": (_g_activations, ("x",)),
          "reductions": (_g_reductions, ("x",)), "indexing": (_g_indexing, ("x",)),
          "shapes": (_g_shapes, ("x", "w")), "elementwise": (_g_elementwise, ("x", "w")),
          "linalg": (_g_linalg, ("a",))}


def _run_graph(fn, names, data, device):
    p = {k: gt.asarray(v, device=device) for k, v in data.items()}
    for k in names:
        p[k].requires_grad_()
    out = fn(p)
    out.backward()
    assert all(p[k].grad.device == p[k].device for k in names)
    return gt.to_numpy(out), {k: gt.to_numpy(p[k].grad) for k in names}


@cuda
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("graph", list(GRAPHS))
def test_same_graph_same_values_and_gradients_as_numpy(graph, dtype):
    fn, names = GRAPHS[graph]
    data = _inputs(dtype)
    v_cpu, g_cpu = _run_graph(fn, names, data, "cpu")
    v_gpu, g_gpu = _run_graph(fn, names, data, "cuda")
    assert v_gpu.dtype == v_cpu.dtype
    _close(v_gpu, v_cpu, dtype, f"{graph} value")
    for k in names:
        assert g_gpu[k].dtype == g_cpu[k].dtype == np.dtype(dtype)
        _close(g_gpu[k], g_cpu[k], dtype, f"{graph} d/d{k}")


@cuda
def test_higher_order_parity():
    xn = np.linspace(-1.0, 1.0, 4)

    def f(x):
        return gt.sum(gt.tanh(x) * gt.sin(x) * x)
    h_cpu = gt.to_numpy(gt.hessian(f)(gt.asarray(xn)))
    h_gpu = gt.hessian(f)(gt.asarray(xn, device="cuda"))
    assert h_gpu.device == "cuda:0"
    _close(gt.to_numpy(h_gpu), h_cpu, "float64")


# ---- memory, synchronisation, DLPack ---------------------------------------------------------------

@cuda
def test_memory_back_to_baseline_after_backward():
    """No graph, saved value or cotangent outlives the backward pass in CuPy's pool."""
    rng = np.random.default_rng(1)
    W1 = gt.asarray(rng.standard_normal((256, 512)).astype(np.float32), device="cuda").requires_grad_()
    W2 = gt.asarray(rng.standard_normal((512, 10)).astype(np.float32), device="cuda").requires_grad_()
    x = gt.asarray(rng.standard_normal((128, 256)).astype(np.float32), device="cuda")
    y = gt.asarray(rng.integers(0, 10, 128), device="cuda")

    def step():
        loss = gt.nn.cross_entropy(gt.tanh(gt.nn.relu(x @ W1) @ W2), y)
        loss.backward()
        with gt.no_grad():
            for w in (W1, W2):
                w -= 0.01 * w.grad
                w.grad = None

    step()                                  # warm-up: kernels, CuPy's internal caches
    gt.synchronize("cuda")
    gc.collect()
    base = gt.memory_stats("cuda")["used_bytes"]
    for _ in range(3):
        step()
    gt.synchronize("cuda")
    gc.collect()
    assert gt.memory_stats("cuda")["used_bytes"] == base
    # and the live parameters are accounted for
    assert base >= W1.data.nbytes + W2.data.nbytes


@cuda
def test_synchronize_and_memory_stats():
    a = gt.ones((1024, 1024), device="cuda")
    assert gt.synchronize("cuda") is None
    st = gt.memory_stats("cuda")
    for k in ("used_bytes", "total_bytes", "free_bytes", "device_free_bytes", "device_total_bytes"):
        assert isinstance(st[k], int) and st[k] >= 0, k
    assert st["device"] == "cuda:0"
    assert st["used_bytes"] >= a.data.nbytes and st["total_bytes"] >= st["used_bytes"]
    with gt.default_device("cuda"):
        assert gt.memory_stats()["device"] == "cuda:0"
        gt.synchronize()


@cuda
def test_dlpack_with_torch_cuda_tensors_shares_memory():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch without CUDA")
    t = torch.arange(6, dtype=torch.float32, device="cuda")
    g = gt.from_dlpack(t)
    assert g.device == "cuda:0" and g.data.data.ptr == t.data_ptr()
    assert gt.asarray(t).data.data.ptr == t.data_ptr()            # asarray takes the DLPack path too
    t.add_(1.0)
    torch.cuda.synchronize()
    np.testing.assert_array_equal(gt.to_numpy(g), np.arange(1.0, 7.0, dtype=np.float32))
    back = torch.from_dlpack(g)                                  # gradtape -> torch, no copy either
    assert back.data_ptr() == t.data_ptr() and back.device.type == "cuda"
    x = gt.from_dlpack(t).requires_grad_()
    gt.sum(x * x).backward()
    gx = torch.from_dlpack(x.grad)
    torch.testing.assert_close(gx, 2 * t)


@cuda
def test_dlpack_with_jax_gpu_arrays():
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")     # JAX would take 75% of the GPU
    jax = pytest.importorskip("jax")
    try:
        gpu = jax.devices("gpu")[0]
    except RuntimeError:
        pytest.skip("JAX without a GPU backend")
    a = jax.device_put(jax.numpy.arange(6.0, dtype=jax.numpy.float32), gpu)
    g = gt.from_dlpack(a)
    assert g.device == "cuda:0" and g.data.data.ptr == a.unsafe_buffer_pointer()
    np.testing.assert_array_equal(gt.to_numpy(g), np.arange(6.0, dtype=np.float32))
    x = g.to_device("cuda").requires_grad_()
    gt.sum(gt.sin(x)).backward()
    back = jax.numpy.from_dlpack(x.grad)
    np.testing.assert_allclose(np.asarray(back), np.cos(np.arange(6.0, dtype=np.float32)), rtol=1e-6)


# ---- device contexts ---------------------------------------------------------------------------------

@cuda
def test_guarded_backend_runs_ops_and_backward_under_its_device():
    """The several-GPU path (``xp`` a property that makes the GPU current), exercised on GPU 0."""
    import cupy as cp
    from gradtape.backends import cupy as cb
    bk = cb.GuardedCupyBackend(0)
    assert bk.guarded and bk.xp is bk._xp and (getattr(bk.xp, "tanh_vjp", None) is not None) == ("tanh" in bk.fused)
    xn = np.linspace(-1.0, 1.0, 7)
    x = wrap(bk.asarray(xn), bk).requires_grad_()
    y = gt.sum(gt.tanh(x) * x + gt.nn.relu(x))
    y.backward()
    assert x.grad.backend is bk and cp.cuda.runtime.getDevice() == 0
    _close(gt.to_numpy(x.grad), (1 - np.tanh(xn) ** 2) * xn + np.tanh(xn) + (xn > 0), "float64")


@cuda
def test_several_gpus_ops_run_on_the_tensors_device():
    import cupy as cp
    if cp.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("needs 2 GPUs")
    xn = np.linspace(-1.0, 1.0, 5)
    with cp.cuda.Device(0):
        x = gt.asarray(xn, device="cuda:1").requires_grad_()
        assert x.data.device.id == 1
        y = gt.sum(gt.exp(x) * x)
        assert y.data.device.id == 1
        y.backward()
        assert x.grad.device == "cuda:1" and x.grad.data.device.id == 1
        assert gt.ones(3, device="cuda:1").data.device.id == 1
        a = gt.asarray(xn, device="cuda:0").requires_grad_()
        b = a.to_device("cuda:1")
        assert b.data.device.id == 1
        c = gt.sum(b * b)
        c.backward()
        assert a.grad.data.device.id == 0
        _close(gt.to_numpy(a.grad), 2 * xn, "float64")
        with pytest.raises(TypeError, match="cuda:1"):
            a + b
    _close(gt.to_numpy(x.grad), np.exp(xn) * (1 + xn), "float64")


# ---- fused kernels ---------------------------------------------------------------------------------------

def _rule_inputs(name, dtype, shape=(64, 33)):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype(dtype) * 3
    x.flat[:5] = [0.0, -0.0, 1e-30, -1e-30, 40.0]
    if name == "cross_entropy":
        return {"x": x, "labels": rng.integers(0, shape[-1], shape[:-1])}
    return {"x": x}


def _vjp_call(name, bk, d, ct):
    from gradtape._ops import elementwise as P
    from gradtape._ops import nn as gnn
    x = bk.asarray(d["x"])
    if name == "relu":
        return P.relu.vjp[0](bk.xp, ct, None, x, 0.0)
    if name == "tanh":
        return P.tanh.vjp[0](bk.xp, ct, bk.xp.tanh(x), None)
    if name == "sigmoid":
        return P.sigmoid.vjp[0](bk.xp, ct, P.sigmoid.fwd(bk.xp, x), None)
    if name == "softplus":
        return P.softplus.vjp[0](bk.xp, ct, None, x)
    return gnn.cross_entropy_p.vjp[0](bk.xp, ct, None, x, bk.asarray(d["labels"]))


@cuda
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "softplus", "cross_entropy"])
def test_fused_kernel_equals_generic_rule(name, dtype):
    bk = backends.get("cuda")
    d = _rule_inputs(name, dtype)
    rng = np.random.default_rng(8)
    cts = [bk.asarray(np.asarray(1.5, dtype=dtype))] if name == "cross_entropy" else \
        [bk.asarray(rng.standard_normal(d["x"].shape).astype(dtype)),
         bk.asarray(rng.standard_normal((2,) + d["x"].shape).astype(dtype))]     # a batched cotangent too
    old = bk.set_fused([name])
    try:
        assert (getattr(bk.xp, name + "_vjp", None) is not None)
        fused = [bk.to_numpy(_vjp_call(name, bk, d, ct)) for ct in cts]
        bk.set_fused(())
        assert not (getattr(bk.xp, name + "_vjp", None) is not None)
        generic = [bk.to_numpy(_vjp_call(name, bk, d, ct)) for ct in cts]
    finally:
        bk.set_fused(old)
    eps = np.finfo(dtype).eps
    for f, g in zip(fused, generic):
        assert f.dtype == g.dtype and f.shape == g.shape
        np.testing.assert_allclose(f, g, rtol=4 * eps, atol=4 * eps * float(np.max(np.abs(g))))


@cuda
def test_fused_and_generic_gradients_agree_end_to_end():
    bk = backends.get("cuda")
    data = _inputs("float32")
    fn, names = GRAPHS["mlp"]

    def act(p):
        return _g_mlp(p) + gt.sum(gt.nn.sigmoid(p["x"]) * gt.nn.softplus(p["x"]))
    old = bk.set_fused(True)
    try:
        v1, g1 = _run_graph(act, names, data, "cuda")
        bk.set_fused(False)
        v2, g2 = _run_graph(act, names, data, "cuda")
    finally:
        bk.set_fused(old)
    _close(v1, v2, "float32")
    for k in names:
        _close(g1[k], g2[k], "float32", k)


@cuda
def test_fused_kernels_fall_back_where_they_do_not_apply():
    import cupy as cp
    from gradtape.backends import cupy as cb
    f32, f64 = cp.ones(3, dtype=cp.float32), cp.ones(3, dtype=cp.float64)
    assert cb._tanh_vjp(f32, f64, None) is None                       # mixed dtypes: the generic rule
    assert cb._sigmoid_vjp(cp.ones(3, dtype=cp.complex64), cp.ones(3, dtype=cp.complex64), None) is None
    assert cb._softplus_vjp(f64, None, f32) is None
    x = cp.ones((4, 3), dtype=cp.float32)
    assert cb._cross_entropy_vjp(cp.ones(2, dtype=cp.float32), None, x, cp.zeros(4, dtype=cp.int64)) is None
    np.testing.assert_array_equal(cp.asnumpy(cb._relu_vjp(f64, cp.asarray([-1.0, 0.0, 2.0]))), [0.0, 0.0, 1.0])


@cuda
def test_set_fused_and_the_environment_variable(monkeypatch):
    from gradtape.backends import cupy as cb
    bk = backends.get("cuda")
    old = bk.set_fused(["tanh"])
    try:
        assert (getattr(bk.xp, "tanh_vjp", None) is not None) and not (getattr(bk.xp, "relu_vjp", None) is not None) and bk.fused == ("tanh",)
        with pytest.raises(ValueError, match="unknown fused kernel"):
            bk.set_fused(["gelu"])
    finally:
        bk.set_fused(old)
    for v, want in (("none", ()), ("all", cb.FUSED), ("tanh, relu", ("tanh", "relu"))):
        monkeypatch.setenv("GRADTAPE_CUPY_FUSED", v)
        assert cb._fused_from_env() == want
    monkeypatch.setenv("GRADTAPE_CUPY_FUSED", "bogus")
    with pytest.raises(ValueError, match="GRADTAPE_CUPY_FUSED"):
        cb._fused_from_env()
