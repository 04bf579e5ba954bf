"""Git objects with real SHA-1 ids: blobs, trees and commits, stored in memory like a bare repo."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

FILE_MODE = "100644"
TREE_MODE = "40000"


def object_id(kind: str, content: bytes) -> str:
    """Git's id of an object: ``sha1(b"<kind> <len>\\0" + content)``."""
    header = f"{kind} {len(content)}\0".encode()
    return hashlib.sha1(header + content, usedforsecurity=False).hexdigest()


def blob_sha(content: bytes) -> str:
    """Git's id of a blob holding ``content`` (``git hash-object``)."""
    return object_id("blob", content)


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a tree object."""

    name: str
    mode: str
    sha: str

    @property
    def is_tree(self) -> bool:
        """Whether the entry is a sub-tree."""
        return self.mode == TREE_MODE


@dataclass(frozen=True)
class Signature:
    """Author or committer of a commit."""

    name: str
    email: str
    when: datetime

    def encode(self) -> str:
        """The signature as git writes it in a commit object."""
        return f"{self.name} <{self.email}> {int(self.when.timestamp())} +0000"


@dataclass(frozen=True)
class Commit:
    """A parsed commit object."""

    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Signature
    committer: Signature
    message: str


def _tree_sort_key(entry: TreeEntry) -> bytes:
    # Git orders entries by name, comparing a sub-tree as if its name ended with "/".
    return (entry.name + "/" if entry.is_tree else entry.name).encode()


def encode_tree(entries: list[TreeEntry]) -> bytes:
    """The raw content of a tree object holding ``entries``."""
    out = b""
    for entry in sorted(entries, key=_tree_sort_key):
        out += f"{entry.mode} {entry.name}\0".encode() + bytes.fromhex(entry.sha)
    return out


def encode_commit(
    *, tree: str, parents: tuple[str, ...], author: Signature, committer: Signature, message: str
) -> bytes:
    """The raw content of a commit object."""
    lines = [f"tree {tree}", *(f"parent {p}" for p in parents)]
    lines += [f"author {author.encode()}", f"committer {committer.encode()}", "", message]
    return "\n".join(lines).encode()


class ObjectStore:
    """Content-addressed store of blobs, trees and commits."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.trees: dict[str, list[TreeEntry]] = {}
        self.commits: dict[str, Commit] = {}

    def put_blob(self, content: bytes) -> str:
        """Store a blob and return its id."""
        sha = blob_sha(content)
        self.blobs[sha] = content
        return sha

    def put_tree(self, entries: list[TreeEntry]) -> str:
        """Store a tree and return its id."""
        sha = object_id("tree", encode_tree(entries))
        self.trees[sha] = sorted(entries, key=_tree_sort_key)
        return sha

    def put_commit(
        self,
        *,
        tree: str,
        parents: tuple[str, ...],
        author: Signature,
        committer: Signature,
        message: str,
    ) -> str:
        """Store a commit and return its id."""
        raw = encode_commit(
            tree=tree, parents=parents, author=author, committer=committer, message=message
        )
        sha = object_id("commit", raw)
        self.commits[sha] = Commit(sha, tree, parents, author, committer, message)
        return sha

    def write_files(self, files: Mapping[str, bytes]) -> str:
        """Store a whole tree of ``{path: content}`` files and return the root tree id."""
        return self._write_dir({path: self.put_blob(data) for path, data in files.items()})

    def _write_dir(self, blobs: Mapping[str, str]) -> str:
        children: dict[str, dict[str, str]] = {}
        entries: list[TreeEntry] = []
        for path, sha in blobs.items():
            head, _, rest = path.partition("/")
            if rest:
                children.setdefault(head, {})[rest] = sha
            else:
                entries.append(TreeEntry(head, FILE_MODE, sha))
        entries += [
            TreeEntry(name, TREE_MODE, self._write_dir(sub)) for name, sub in children.items()
        ]
        return self.put_tree(entries)

    def edit_tree(self, base: str | None, path: str, entry: TreeEntry | None) -> str | None:
        """A tree like ``base`` with ``path`` set to ``entry`` (None deletes it); None if empty.

        Intermediate directories are created as needed and dropped when a deletion empties
        them (git stores no empty trees), as GitHub's create-tree does for nested paths.
        """
        entries = {e.name: e for e in self.trees[base]} if base is not None else {}
        name, _, rest = path.partition("/")
        if not rest:
            if entry is None:
                entries.pop(name, None)
            else:
                entries[name] = TreeEntry(name, entry.mode, entry.sha)
        else:
            child = entries.get(name)
            sub = self.edit_tree(child.sha if child and child.is_tree else None, rest, entry)
            if sub is None:
                entries.pop(name, None)
            else:
                entries[name] = TreeEntry(name, TREE_MODE, sub)
        return self.put_tree(list(entries.values())) if entries else None

    def walk(self, tree_sha: str, prefix: str = "") -> list[tuple[str, TreeEntry]]:
        """Every entry under a tree, depth first, with its full path."""
        out: list[tuple[str, TreeEntry]] = []
        for entry in self.trees[tree_sha]:
            path = f"{prefix}{entry.name}"
            out.append((path, entry))
            if entry.is_tree:
                out += self.walk(entry.sha, prefix=f"{path}/")
        return out

    def files(self, tree_sha: str) -> dict[str, str]:
        """``{path: blob id}`` of every file under a tree."""
        return {path: e.sha for path, e in self.walk(tree_sha) if not e.is_tree}

    def read_files(self, tree_sha: str) -> dict[str, bytes]:
        """``{path: content}`` of every file under a tree."""
        return {path: self.blobs[sha] for path, sha in self.files(tree_sha).items()}

    def lookup(self, tree_sha: str, path: str) -> TreeEntry | None:
        """The entry at ``path`` under a tree (``""`` is the tree itself), or None."""
        if path == "":
            return TreeEntry("", TREE_MODE, tree_sha)
        current = TreeEntry("", TREE_MODE, tree_sha)
        for part in path.strip("/").split("/"):
            if not current.is_tree:
                return None
            found = [e for e in self.trees[current.sha] if e.name == part]
            if not found:
                return None
            current = found[0]
        return current

    def ancestors(self, sha: str) -> list[str]:
        """``sha`` and every commit reachable from it, breadth first."""
        seen: list[str] = []
        queue = deque([sha])
        while queue:
            current = queue.popleft()
            if current in seen:
                continue
            seen.append(current)
            queue.extend(self.commits[current].parents)
        return seen

    def merge_base(self, left: str, right: str) -> str | None:
        """The nearest common ancestor of two commits."""
        right_side = set(self.ancestors(right))
        return next((sha for sha in self.ancestors(left) if sha in right_side), None)
