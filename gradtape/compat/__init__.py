"""Compatibility names: MXNet's ``autograd`` and ``nd`` (reached as ``gradtape.autograd``, ``gradtape.nd``)."""
