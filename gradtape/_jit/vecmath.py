"""placeholder"""
def jitted(numba, ftype):
    return {}
def unfused_policy(graph):
    return None
def kernel_ops(ftype):
    return frozenset()
