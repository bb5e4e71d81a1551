"""The core: Tensor (tensor.py), primitives and their registry (primitive.py), running and recording them
(dispatch.py), the reverse walk (engine.py), dtypes (dtypes.py) and the registration points through which
the core reaches the layers above it (hooks.py). Imports only backends and the leaf utilities."""
