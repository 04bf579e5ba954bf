"""How big the engine's results are, as Dask counts them.

Dask measures each task's result with `dask.sizeof` to decide when a worker spills results to
disk, pauses, or is restarted (its memory limit). For a type it does not know it falls back to
`sys.getsizeof`: a few dozen bytes for a dataclass that holds hundreds of MB of arrays, so a
cluster with a memory limit saw none of the scored partitions and count tables its workers held
(managed memory 0 MB at 10M rows) and could never spill them. Here a dataclass counts as the
sum of its fields: arrays, bytes, dicts and lists of them, nested dataclasses.
"""

from __future__ import annotations

import dataclasses
import sys
from types import ModuleType
from typing import Any


def _fields_size(obj: Any) -> int:
    from dask.sizeof import sizeof

    fields = dataclasses.fields(obj)
    return sys.getsizeof(obj) + sum(int(sizeof(getattr(obj, f.name))) for f in fields)


def register_dataclasses(*modules: ModuleType) -> None:
    """Teach `dask.sizeof` the dataclasses defined in these modules (nothing to teach
    without dask installed)."""
    try:
        from dask.sizeof import sizeof
    except ImportError:
        return

    for module in modules:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and dataclasses.is_dataclass(value)
                and value.__module__ == module.__name__
            ):
                sizeof.register(value)(_fields_size)  # type: ignore[no-untyped-call]


__all__ = ["register_dataclasses"]
