"""In-place updates: parameters under no_grad are updated truly in place; everything else has value semantics,
writes through views reaching their aliases (tests/test_views.py)."""
import numpy as np
import pytest

import gradtape as gt


def test_parameter_update_under_no_grad_is_in_place_and_stays_a_leaf(device):
    w = gt.asarray(np.arange(3.0), device=device).requires_grad_()
    buf = w.data
    (w * w).sum().backward()
    with gt.no_grad():
        w -= 0.5 * w.grad
    assert w.data is buf                      # same buffer, updated in place
    assert gt.to_numpy(w).tolist() == [0.0, 0.0, 0.0]
    assert w.requires_grad and w.is_leaf
    w.grad = None
    (w * 3.0).sum().backward()
    assert gt.to_numpy(w.grad).tolist() == [3.0, 3.0, 3.0]


def test_update_of_a_parameter_whose_view_was_saved_is_detected(device):
    w = gt.asarray(np.arange(6.0).reshape(2, 3), device=device).requires_grad_()
    x = gt.asarray(np.ones((2, 2)), device=device).requires_grad_()
    y = gt.sum(w.T @ x)                       # matmul saved w.T, a view of w's memory
    with gt.no_grad():
        w += 1.0
    with pytest.raises(RuntimeError, match="changed in place"):
        y.backward()
    assert x.grad is None and w.grad is None  # nothing half-written


def test_update_of_a_parameter_whose_detached_copy_was_saved_is_detected(device):
    w = gt.asarray([1.0, 2.0], device=device).requires_grad_()
    x = gt.asarray([3.0, 4.0], device=device).requires_grad_()
    y = gt.sum(w.detach() * x)                # multiply saved the detached tensor, which shares w's memory
    with gt.no_grad():
        w *= 2.0
    with pytest.raises(RuntimeError, match="changed in place"):
        y.backward()


def test_in_place_on_a_parameter_while_recording_is_an_error(device):
    w = gt.asarray([1.0, 2.0], device=device).requires_grad_()
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w += 1.0


def test_value_semantics_for_other_tensors(device):
    a = gt.asarray([1.0, 2.0], device=device)
    alias = a.data
    b = a[0:2]          # a view (issue 12): it sees the write, as in NumPy and PyTorch
    c = a * 1.0         # a new tensor: earlier results are never rewritten
    a += 1.0
    assert gt.to_numpy(a).tolist() == [2.0, 3.0]
    assert gt.to_numpy(b).tolist() == [2.0, 3.0]
    assert gt.to_numpy(c).tolist() == [1.0, 2.0]
    assert a.data is not alias


def test_mxnet_style_update_with_setitem(device):
    w = gt.asarray([1.0, 2.0], device=device)
    w.attach_grad()
    with gt.record():
        y = gt.sum(w * w)
    y.backward()
    with gt.pause():
        w[:] = w - 0.25 * w.grad
    assert gt.to_numpy(w).tolist() == [0.5, 1.0]
    with gt.record():
        y = gt.sum(w * w)
    y.backward()
    assert gt.to_numpy(w.grad).tolist() == [1.0, 2.0]
