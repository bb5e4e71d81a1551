"""``gradtape.sym``: explicit computation graphs (MXNet's ``sym.var``); see :mod:`gradtape.graph.symbolic`."""
from .graph.symbolic import *  # noqa: F401,F403
from .graph.symbolic import __all__  # noqa: F401
