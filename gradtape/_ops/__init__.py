"""The primitives: each differentiable operation once, forward + VJP + JVP side by side, by topic
(elementwise, reduction, matmul, shape, indexing, nn, linalg, device). Only blocks, no user-facing logic."""
