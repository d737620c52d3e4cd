"""Disjoint sets (union-find): group items linked by shared keys.

Used to keep patients that share a StudyInstanceUID in one subset of a split
(``ichkit split`` over the catalog, and the training split without a split file).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["UnionFind"]

T = TypeVar("T", bound=Hashable)


class UnionFind(Generic[T]):
    """Disjoint sets of hashable items, with path compression.

    Examples
    --------
    >>> sets = UnionFind[str]()
    >>> sets.union("a", "b")
    >>> sets.find("b") == sets.find("a") != sets.find("c")
    True
    """

    def __init__(self) -> None:
        self._parent: dict[T, T] = {}

    def find(self, item: T) -> T:
        """The representative of ``item``'s set (``item`` itself when new)."""
        parent = self._parent
        root = item
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[item] != root:
            parent[item], item = root, parent[item]
        return root

    def union(self, a: T, b: T) -> None:
        """Join the sets of ``a`` and ``b``."""
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self._parent[rb] = ra

    def items(self) -> list[T]:
        """Every item seen so far."""
        return list(self._parent)
