"""Host (NumPy) helpers for the core, which never imports NumPy itself: array repr, NumPy scalar and dtype
tests, .npz files (gt.nn's Module.save/load), and the byte codec of saved graphs' constants."""
import numpy as np


# ---- .npz files for gradtape.nn (the core never imports NumPy: Module.save/load come here) ----

def save_npz(path, arrays):
    """Write ``arrays`` (name -> NumPy array) to ``path`` as an uncompressed .npz file."""
    with open(path, "wb") as f:          # a file object: np.savez would append ".npz" to a bare name
        np.savez(f, **arrays)


def load_npz(path):
    """name -> NumPy array from an .npz file (no pickles are loaded)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# ---- host (NumPy) helpers for the core: it never imports NumPy itself -----------------------------

def is_array(v):
    """Whether v is a NumPy array."""
    return isinstance(v, np.ndarray)


def is_scalar(v):
    """Whether v is a NumPy scalar (np.float64(1.0), np.int32(2)...)."""
    return isinstance(v, np.generic)


def is_dtype(v):
    """Whether v is a NumPy dtype or scalar type."""
    return isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic))


def array_repr(a):
    """NumPy's repr of an array (``array([...])``)."""
    return np.array_repr(np.asarray(a))


def encode(a):
    """(dtype name, shape, little-endian bytes) of an array, for JSON; TypeError for non-numeric dtypes."""
    a = np.asarray(a)
    if a.dtype.kind not in "biufc":
        raise TypeError(f"dtype {a.dtype} is not numeric")
    le = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False)
    return a.dtype.name, list(a.shape), le.tobytes()


def itemsize(dtype_name):
    return np.dtype(dtype_name).itemsize


def decode(buf, dtype_name, shape):
    """The array :func:`encode` described."""
    dt = np.dtype(dtype_name).newbyteorder("<")
    return np.frombuffer(buf, dtype=dt).astype(np.dtype(dtype_name)).reshape(shape)
