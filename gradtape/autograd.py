"""``gradtape.autograd``: MXNet's autograd names; see :mod:`gradtape.compat.autograd`."""
from .compat.autograd import *  # noqa: F401,F403
from .compat.autograd import __all__  # noqa: F401
