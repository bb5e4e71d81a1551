"""The registration points through which the core reaches code defined after it.

Each is filled exactly once, at import, by the module named here (grep ``hooks.<name> =``); nothing
else assigns them. They let the Tensor class and the engine call the dispatch functions, the array-API
layer and the autodiff layer without import cycles.
"""
from __future__ import annotations

# gradtape._core.dispatch: the primitive-running functions (Tensor's operators call them)
apply = apply1 = apply2 = None
# gradtape._core.views: write(tensor, new, what), an in-place write into a view or a root with views
write = None
# gradtape._api: the functions of the array-API layer (gt's public functions and the internal ones the
# Tensor methods need: getitem, setitem, relu, ...)
API = None
# gradtape._api.rules: the tensor-level namespace rules see when their derivative is recorded
RULES = None
# gradtape._autodiff.tape: backward(tensors, heads, retain_graph, create_graph)
backward = None
# gradtape.graph.symbolic: the Symbol type of explicit graphs, has_symbol(value) (in tuples, lists, dicts, slices) and
# symbolic_call(fn, label, args, kwargs) building the Symbol of a function applied to symbols (gradtape._api.public)
SYMBOL = None
has_symbol = None
symbolic_call = None
