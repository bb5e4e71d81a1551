"""A Python list in an index is an array index, as in NumPy and PyTorch (``x[[0, 2]]``, ``x[:, [True, False]]``):
values against NumPy, gradients (repeated positions accumulate), writes, and the errors of lists that are not
indices. SciPy's signal functions index with lists (issue 12's consumer run)."""
import numpy as np
import pytest

import gradtape as gt

A = np.arange(12.0).reshape(3, 4)
KEYS = [[0, 2], ([0, 2], [1, 3]), (slice(None), [True, False, True, False]), [], [-1, 0, -1], ([[0, 1], [2, 2]],),
        (Ellipsis, [3, 0]), ([True, False, True],)]


@pytest.mark.parametrize("key", KEYS, ids=[repr(k) for k in KEYS])
def test_list_keys_read_as_numpy(key):
    np.testing.assert_array_equal(gt.to_numpy(gt.asarray(A)[key]), A[key])


def test_list_key_gradient_accumulates_repeated_rows():
    g = gt.grad(lambda a: gt.sum(a[[0, 0, 2]] ** 2))(gt.asarray(A))
    want = np.zeros_like(A)
    want[0], want[2] = 4 * A[0], 2 * A[2]
    np.testing.assert_array_equal(gt.to_numpy(g), want)


def test_list_key_write():
    y = gt.zeros(4)
    y[[1, 3]] = 1.0
    np.testing.assert_array_equal(gt.to_numpy(y), [0.0, 1.0, 0.0, 1.0])


@pytest.mark.parametrize("key", [[0.5], [slice(None)], ["a"]])
def test_lists_that_are_not_indices_are_index_errors(key):
    with pytest.raises(IndexError, match="getitem"):
        gt.asarray(A)[key]
