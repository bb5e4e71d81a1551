"""Small interoperability points: NumPy scalars, slice bounds past the end, pickling and deepcopy."""
import copy
import pickle

import numpy as np
import pytest

import gradtape as gt


@pytest.mark.parametrize("scalar", [np.float64(2.0), np.float32(2.0), np.int64(2)])
def test_numpy_scalars_act_like_python_numbers(device, scalar):
    x = gt.ones(2, device=device, dtype=gt.float32).requires_grad_()
    y = x * scalar
    assert y.device == x.device and y.dtype == gt.float32
    assert gt.to_numpy(y).tolist() == [2.0, 2.0]
    gt.sum(y).backward()
    assert gt.to_numpy(x.grad).tolist() == [2.0, 2.0]


def test_slice_bounds_past_the_end_are_clamped(device):
    x = gt.asarray([1.0, 2.0, 3.0], device=device).requires_grad_()
    assert gt.to_numpy(x[1:10]).tolist() == [2.0, 3.0]
    assert gt.to_numpy(x[5:]).tolist() == []
    gt.sum(x[0:7] * 2.0).backward()
    assert gt.to_numpy(x.grad).tolist() == [2.0, 2.0, 2.0]


def test_pickle_and_deepcopy_of_leaves(device):
    w = gt.asarray([1.5, -2.0], device=device).requires_grad_()
    for c in (copy.deepcopy(w), pickle.loads(pickle.dumps(w))):
        assert c is not w and c.device == w.device and c.dtype == w.dtype and c.requires_grad
        assert gt.to_numpy(c).tolist() == [1.5, -2.0]
        c.zero_()
        assert gt.to_numpy(w).tolist() == [1.5, -2.0]      # an independent copy
    with pytest.raises(RuntimeError, match="leaf"):
        copy.deepcopy(w * 2.0)
