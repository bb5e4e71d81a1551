"""Lowering a traced graph to an executable: the contract between ``gt.jit`` and the kernel generators.

:func:`compile_graph` takes an optimised :class:`gradtape.graph.Graph` and the backend the call runs on and
returns an :class:`Executable`: ``exe(*raw_arrays) -> tuple of raw arrays`` in the graph's input/output
order, plus ``exe.source()`` (the text of what runs) and ``exe.kind`` (``"replay"``, ``"numba"``,
``"cuda"``). Until a region lowering applies, the executable is the graph's replay plan (correct, not
fused).
"""
from __future__ import annotations

from ..graph.plan import _Plan


class Executable:
    """What a jitted call runs for one input signature: ``exe(*raws) -> tuple of raws``."""

    __slots__ = ("fn", "kind", "_source")

    def __init__(self, fn, kind, source):
        self.fn, self.kind, self._source = fn, kind, source

    def __call__(self, *raws):
        return self.fn(*raws)

    def source(self):
        """The text of what runs (the replay listing, or the generated kernels' source)."""
        return self._source


def compile_graph(graph, backend):
    """An :class:`Executable` for ``graph`` on ``backend`` (the replay plan where nothing is lowered)."""
    plan = _Plan(graph, backend)
    return Executable(plan.fn, "replay", plan.source)
