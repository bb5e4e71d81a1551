"""What the standard's own suite (data-apis/array-api-tests, run against gradtape and array_api_compat.numpy with
the same seeds) found gradtape failing where array_api_compat.numpy passes, kept as regression tests on NumPy
and array-api-strict."""
import numpy as np
import pytest

import gradtape as gt

from conftest import to_np


# ---- test_getitem_masking: a boolean index with a zero-size axis selects nothing, whatever the axis size ----------
CASES = [((1,), (0,)), ((3,), (0,)), ((2, 3), (0, 3)), ((2, 3), (2, 0)), ((2, 1), (2, 0)), ((2, 3), (0,)),
         ((2, 3, 4), (0, 3))]


@pytest.mark.parametrize("xshape, kshape", CASES)
def test_empty_mask_selects_nothing_as_numpy(device, xshape, kshape):
    a = np.arange(np.prod(xshape), dtype=np.float64).reshape(xshape)
    k = np.zeros(kshape, dtype=bool)
    x = gt.asarray(a, device=device)
    out = x[gt.asarray(k, device=device)]
    assert out.shape == a[k].shape and out.dtype == x.dtype
    np.testing.assert_array_equal(to_np(out), a[k])


@pytest.mark.parametrize("xshape, kshape", CASES[:4])
def test_empty_mask_write_and_gradient(device, xshape, kshape):
    a = np.arange(np.prod(xshape), dtype=np.float64).reshape(xshape) + 1.0
    k = gt.asarray(np.zeros(kshape, dtype=bool), device=device)
    y = gt.asarray(a, device=device)
    y[k] = 7.0                                           # writes nothing
    np.testing.assert_array_equal(to_np(y), a)
    g = gt.grad(lambda x: gt.sum(x[k] ** 2) + gt.sum(x))(gt.asarray(a, device=device))
    np.testing.assert_array_equal(to_np(g), np.ones(xshape))


@pytest.mark.parametrize("xshape, kshape", [((3,), (2,)), ((2, 3), (2, 2)), ((2, 3), (3,)), ((1,), (2,))])
def test_mismatched_nonempty_mask_still_refused(device, xshape, kshape):
    x = gt.zeros(xshape, device=device)
    with pytest.raises(IndexError, match=r"gradtape\.getitem: boolean index of shape"):
        x[gt.asarray(np.ones(kshape, dtype=bool), device=device)]


# ---- test_has_names / test_func_signature of the info functions: at the top level too ----------------------------
def test_info_functions_at_the_top_level():
    import inspect
    info = gt.__array_namespace_info__()
    for name in ("capabilities", "devices", "default_dtypes", "dtypes"):
        f = getattr(gt, name)
        assert f() == getattr(info, name)(), name
        assert name in gt.__all__
    assert str(inspect.signature(gt.dtypes)) == "(*, device=None, kind=None)"
    assert str(inspect.signature(gt.default_dtypes)) == "(*, device=None)"
    assert gt.dtypes(kind="integral") == {n: d for n, d in gt.dtypes().items() if gt.isdtype(d, "integral")}
    with gt.default_device("cpu"):                       # gt.default_device stays the context manager
        assert gt.asarray([1.0]).device == "cpu"
