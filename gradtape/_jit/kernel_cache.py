"""The generated kernels' file cache and numba's disk cache of them (shared by the kernel generator,
:mod:`~gradtape._jit.numba_lower`, and the strip interpreter, :mod:`~gradtape._jit.strip_vm`).

A kernel's source is written to :func:`cache_dir` as ``k_<digest>.py`` (compared as data with what is there,
never read back as code) so that numba's ``cache=True`` can key its compiled entries to a real file.
"""
from __future__ import annotations

import collections
import importlib
import os
import sys
import types

__all__ = ["cache_dir", "LOADS", "module"]


def cache_dir():
    """Where generated kernel files (and numba's cache of them) live: ``$GRADTAPE_CACHE_DIR`` or
    ``~/.cache/gradtape/jit``.

    >>> import os; os.environ.get("GRADTAPE_CACHE_DIR") is None or cache_dir() == os.environ["GRADTAPE_CACHE_DIR"]
    True
    """
    d = os.environ.get("GRADTAPE_CACHE_DIR")
    return d if d else os.path.join(os.path.expanduser("~"), ".cache", "gradtape", "jit")


LOADS = collections.deque(maxlen=64)     # how the latest kernels came: "cache" (numba's disk cache), "compiled"


def _warm(fn, *args):
    """Call the kernel ``fn`` once on ``args`` (n = 0: nothing runs), loading its entry from numba's disk
    cache first where there is one (:func:`_load_cached`), else compiling it (and caching it).

    An entry numba cannot load (one written under another module name, say by another version of gradtape:
    numba looks the module up by that name, ModuleNotFoundError) is dropped: numba's index of the function
    is emptied and the kernel compiled afresh; an error that comes again is raised."""
    got = _load_cached(fn, args)
    try:
        _first_call(fn, *args)
    except Exception:               # noqa: BLE001 - raised again below unless a fresh compile mends it
        if got or fn.signatures or getattr(fn, "_cache", None) is None:
            raise
        fn._cache.flush()
        _first_call(fn, *args)
        LOADS.append("recompiled")
        return
    LOADS.append("cache" if got or fn.stats.cache_hits else "compiled")


def _load_cached(fn, args):
    """Load the dispatcher ``fn``'s entry for ``args`` from numba's disk cache as ``Dispatcher.compile`` does,
    without its first step: ``target_context.refresh()``, which installs every lowering registry of numba
    (~0.4 s on a process's first load; a loaded entry is machine code and needs only the runtime, NRT).
    Any failure (another numba's internals, no entry) returns False: the dispatcher then compiles or loads
    as usual, and a later compile in the process refreshes the context itself."""
    try:
        compiler_lock = importlib.import_module("numba.core.compiler_lock")
        runtime = importlib.import_module("numba.core.runtime")
        sig = tuple(fn.typeof_pyval(a) for a in args)
        with compiler_lock.global_compiler_lock:
            if sig in fn.overloads:
                return True
            ctx = fn.targetctx
            runtime.rtsys.initialize(ctx)
            cres = fn._cache._load_overload(sig, ctx)
            if cres is None:
                return False
            fn._cache_hits[sig] += 1
            if not cres.objectmode:
                ctx.insert_user_function(cres.entry_point, cres.fndesc, [cres.library])
            fn.add_overload(cres)
        return True
    except Exception:               # noqa: BLE001 - numba's own path follows
        return False


def _first_call(fn, *args):
    """Call a kernel that may compile now: numba's SSA pass recurses once per block of the function, and a
    region of 100 inlined vecmath calls has thousands, so the recursion limit is raised meanwhile."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 100000))
    try:
        return fn(*args)
    finally:
        sys.setrecursionlimit(old)


def _cache_file(digest, source):
    d = cache_dir()
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, f"k_{digest}.py")
    try:
        with open(path, encoding="utf-8") as f:
            same = f.read() == source           # compared as data, never executed
    except OSError:
        same = False
    if not same:
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(source)
        os.replace(tmp, path)
    return path


def module(digest, source, env, name):
    """(the cache file's path, the globals of the module compiled from ``source``): written to (or checked in)
    :func:`cache_dir` as ``k_<digest>.py`` and compiled from ``source`` itself, never from the file; one module
    object per process under ``name`` (numba's disk cache records it and finds a kernel's globals through
    it: an entry cached under one name does not load under another). ``env()`` gives the names the source
    expects to find (numba functions it calls), made only for a new module."""
    path = _cache_file(digest, source)
    mod = sys.modules.get(name)
    if mod is None:
        mod = types.ModuleType(name)
        mod.__file__ = path
        mod.__dict__.update(env())
        exec(compile(source, path, "exec"), mod.__dict__)       # the text made here, not the file's
        sys.modules[name] = mod
    return path, mod.__dict__
