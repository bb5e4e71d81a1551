"""gradtape is a complete array API (2024.12) namespace, and gt.Tensor a complete array object."""
import gradtape as gt

FUNCTIONS_2024_12 = """
abs acos acosh add asin asinh atan atan2 atanh bitwise_and bitwise_left_shift bitwise_invert bitwise_or
bitwise_right_shift bitwise_xor ceil clip conj copysign cos cosh divide equal exp expm1 floor floor_divide greater
greater_equal hypot imag isfinite isinf isnan less less_equal log log1p log2 log10 logaddexp logical_and
logical_not logical_or logical_xor maximum minimum multiply negative nextafter not_equal positive pow real
reciprocal remainder round sign signbit sin sinh square sqrt subtract tan tanh trunc
take take_along_axis __array_namespace_info__ matmul matrix_transpose tensordot vecdot
broadcast_arrays broadcast_to concat expand_dims flip moveaxis permute_dims repeat reshape roll squeeze stack
tile unstack argmax argmin count_nonzero nonzero searchsorted where unique_all unique_counts unique_inverse
unique_values argsort sort cumulative_prod cumulative_sum max mean min prod std sum var all any diff
arange asarray empty empty_like eye from_dlpack full full_like linspace meshgrid ones ones_like tril triu zeros
zeros_like astype can_cast finfo iinfo isdtype result_type
bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float32 float64 complex64 complex128
e inf nan newaxis pi
""".split()

ARRAY_ATTRIBUTES = """dtype device mT ndim shape size T __abs__ __add__ __and__ __array_namespace__ __bool__
__complex__ __dlpack__ __dlpack_device__ __eq__ __float__ __floordiv__ __ge__ __getitem__ __gt__ __index__
__int__ __invert__ __le__ __lshift__ __lt__ __matmul__ __mod__ __mul__ __ne__ __neg__ __or__ __pos__ __pow__
__rshift__ __setitem__ __sub__ __truediv__ __xor__ to_device __radd__ __rsub__ __rmul__ __rtruediv__
__rfloordiv__ __rpow__ __rmod__ __rmatmul__ __rand__ __ror__ __rxor__ __rlshift__ __rrshift__ __iadd__ __isub__
__imul__ __itruediv__ __ifloordiv__ __ipow__ __imod__ __imatmul__ __iand__ __ior__ __ixor__ __ilshift__
__irshift__""".split()


def test_every_standard_function_is_in_the_namespace():
    assert gt.__array_api_version__ == "2024.12"
    missing = [n for n in FUNCTIONS_2024_12 if not hasattr(gt, n)]
    assert not missing, missing
    linalg = ["matmul", "tensordot", "vecdot", "matrix_transpose", "vector_norm"]
    assert not [n for n in linalg if not hasattr(gt.linalg, n)]


def test_tensor_is_a_complete_array_object():
    missing = [n for n in ARRAY_ATTRIBUTES if not hasattr(gt.Tensor, n)]
    assert not missing, missing
    assert gt.ones(2).__array_namespace__() is gt


def test_array_api_compat_recognises_gradtape():
    import array_api_compat
    assert array_api_compat.array_namespace(gt.ones(2)) is gt
