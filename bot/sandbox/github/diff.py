"""Compare commits like GitHub: the three-dot file diff of a pull, and the merged file set."""

from __future__ import annotations

from typing import Any

from bot.sandbox.github.git_objects import ObjectStore


def changed_files(store: ObjectStore, *, base: str, head: str) -> list[dict[str, Any]]:
    """Files ``head`` changes since its merge base with ``base``, sorted by path."""
    ancestor = store.merge_base(head, base) or base
    old = store.files(store.commits[ancestor].tree)
    new = store.files(store.commits[head].tree)
    changes: list[dict[str, Any]] = []
    for path in sorted(set(old) | set(new)):
        if old.get(path) == new.get(path):
            continue
        status = "added" if path not in old else "removed" if path not in new else "modified"
        before = store.blobs[old[path]] if path in old else b""
        after = store.blobs[new[path]] if path in new else b""
        changes.append(
            {
                "filename": path,
                "status": status,
                "sha": new.get(path) or old[path],
                "additions": after.count(b"\n"),
                "deletions": before.count(b"\n"),
            }
        )
    return changes


def merged_files(store: ObjectStore, *, base: str, head: str) -> dict[str, bytes]:
    """The files of ``base`` with ``head``'s changes applied (the head wins any overlap)."""
    files = store.read_files(store.commits[base].tree)
    ancestor = store.files(store.commits[store.merge_base(head, base) or base].tree)
    changed = store.files(store.commits[head].tree)
    for path in set(ancestor) | set(changed):
        if ancestor.get(path) == changed.get(path):
            continue
        if path in changed:
            files[path] = store.blobs[changed[path]]
        else:
            files.pop(path, None)
    return files
