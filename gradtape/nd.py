"""``gradtape.nd``: MXNet's ndarray names; see :mod:`gradtape.compat.nd`."""
from .compat.nd import *  # noqa: F401,F403
from .compat.nd import __all__  # noqa: F401
