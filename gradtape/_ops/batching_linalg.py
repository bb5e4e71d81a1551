"""Batching rules (``gt.vmap``) of the matrix products, the linalg extension, the nn primitives and the device
transfer.

A rule ``rule(prim, args, batched, params, size)`` gets the underlying values (a batched one with the batch
axis at 0), which of them are batched, the primitive's parameters and the batch size, and returns the output
with the batch axis at 0. The linalg primitives act on the trailing axes and stack over the leading ones, so
most rules only broadcast an unbatched operand to the batch where both must be batched; axes arrive negative,
so they need no shift.
"""
from __future__ import annotations

__all__ = []
