"""Package exports imported on first use (PEP 562), shared by :mod:`ocikit` and :mod:`ocikit.layers`."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str],
                 namespace: dict[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose public names are ``exports``: name ->
    the submodule defining it (an empty submodule: the name is a submodule itself; ``module:PATH``:
    the name is the submodule at PATH). A name is imported when first asked for, then kept in the
    package's ``namespace``."""

    def __getattr__(name: str) -> Any:
        where = exports.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if where.startswith("module:"):
            value = importlib.import_module(f"{package}.{where[7:]}")
        else:
            module = importlib.import_module(f"{package}.{where or name}")
            value = module if not where else getattr(module, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *exports])

    return __getattr__, __dir__
