"""Many short strings kept in a few objects: the Customers panel's text at 300,000 customers.

A `list[str]` of 300,000 customers' text holds 300,000 string objects: ~50-75 bytes of header
each, plus an 8-byte pointer, on top of the characters, and a whole string in 1-2 bytes per
character as soon as one character needs it. `PackedText` keeps the same strings as UTF-8,
`BLOCK` of them joined in one `bytes` object: ~1 byte of overhead per string (at 300,000
customers: 23 MB instead of 40). A string is decoded when asked for; the block last asked for is
kept decoded, since a view asks for neighbouring rows one after the other.

It is a sequence of `str` with the few changes `CustomerColumns` makes (replace, delete,
prepend, extend). A string may not hold `RECORD_SEPARATOR`: `pack` replaces it with U+FFFD.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import overload

#: Between two strings of a block (ASCII record separator: no one types it).
RECORD_SEPARATOR = "\x1e"
_SEP = RECORD_SEPARATOR.encode()
#: Strings per block: a row asked for decodes its block (~5 KB at 75 characters a string).
BLOCK = 64
#: Decoded blocks kept: a sorted or searched view shows rows from many blocks.
CACHED_BLOCKS = 64
#: `find_prefixed` looks for up to this many prefixes in the UTF-8 blocks, more in one pass.
FEW_PREFIXES = 8


def pack(texts: Sequence[str]) -> list[str]:
    """`texts`, with any record separator inside replaced (what `PackedText` stores)."""
    if any(RECORD_SEPARATOR in t for t in texts):
        return [t.replace(RECORD_SEPARATOR, "\ufffd") for t in texts]
    return list(texts)


class PackedText(Sequence[str]):
    """A sequence of short strings stored as UTF-8 blocks (see the module's docstring)."""

    __slots__ = ("_blocks", "_cached", "_counts", "_length", "_starts")

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._blocks: list[bytes] = []
        self._counts = array("l")  # strings per block
        self._starts = array("l")  # index of each block's first string
        self._length = 0
        self._cached: dict[int, list[str]] = {}  # block → its strings, oldest first
        self.extend(texts)

    # ---- reading
    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            start, stop, step = i.indices(self._length)
            if step != 1 or start >= stop:
                return list(self)[i]
            block, at = self._locate(start)
            texts: list[str] = []
            while len(texts) < stop - start + at:  # only the blocks the slice covers
                texts += self._blocks[block].decode().split(RECORD_SEPARATOR)
                block += 1
            return texts[at : at + stop - start]
        block, at = self._locate(i)
        return self._decoded(block)[at]

    def __iter__(self) -> Iterator[str]:
        for block in self._blocks:
            yield from block.decode().split(RECORD_SEPARATOR)

    def index_prefixed(self, prefix: str) -> int:
        """The index of the first string that starts with `prefix`; ValueError if none."""
        if RECORD_SEPARATOR in prefix:
            raise ValueError(prefix)
        head, inner = prefix.encode(), _SEP + prefix.encode()
        for block, data in enumerate(self._blocks):
            if data.startswith(head):
                return self._starts[block]
            at = data.find(inner)
            if at >= 0:  # the strings before it in this block end at a separator each
                return self._starts[block] + data.count(_SEP, 0, at) + 1
        raise ValueError(prefix)

    def find_prefixed(self, prefixes: Collection[str]) -> dict[str, int]:
        """For each prefix that some string starts with, the index of the first such string.

        A few prefixes are looked for in the UTF-8 blocks, and only a block that holds one is
        decoded; many are matched in one pass over every string."""
        found: dict[str, int] = {}
        wanted = [p for p in prefixes if p and RECORD_SEPARATOR not in p]
        if len(wanted) > FEW_PREFIXES:
            first = tuple(wanted)
            for i, text in enumerate(self):
                if text.startswith(first):
                    found.setdefault(next(p for p in wanted if text.startswith(p)), i)
            return found
        encoded = [(p, p.encode(), _SEP + p.encode()) for p in wanted]
        for block, data in enumerate(self._blocks):
            for prefix, head, inner in encoded:
                if prefix not in found and (data.startswith(head) or inner in data):
                    texts = self._decoded(block)
                    at = next(j for j, t in enumerate(texts) if t.startswith(prefix))
                    found[prefix] = self._starts[block] + at
        return found

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedText | list):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"PackedText({list(self)!r})"

    def copy(self) -> PackedText:
        """The same strings in new containers (the blocks themselves are shared: immutable)."""
        other = PackedText()
        other._blocks = list(self._blocks)
        other._counts = array("l", self._counts)
        other._starts = array("l", self._starts)
        other._length = self._length
        return other

    # ---- changing
    def extend(self, texts: Iterable[str]) -> None:
        """Append these strings (packed into new blocks; the last block is not reopened)."""
        items = pack(list(texts))
        for at in range(0, len(items), BLOCK):
            part = items[at : at + BLOCK]
            self._blocks.append(RECORD_SEPARATOR.join(part).encode())
            self._counts.append(len(part))
        self._recount()

    def prepend(self, texts: Sequence[str]) -> None:
        """Put these strings first, in this order."""
        if not texts:
            return
        front = PackedText(texts)
        self._blocks[:0] = front._blocks
        self._counts[:0] = front._counts
        self._recount()

    def __setitem__(self, i: int, text: str) -> None:
        block, at = self._locate(i)
        texts = list(self._decoded(block))
        texts[at] = pack([text])[0]
        self._blocks[block] = RECORD_SEPARATOR.join(texts).encode()
        self._cached = {}

    def __delitem__(self, i: int) -> None:
        block, at = self._locate(i)
        texts = list(self._decoded(block))
        del texts[at]
        if texts:
            self._blocks[block] = RECORD_SEPARATOR.join(texts).encode()
            self._counts[block] -= 1
        else:  # an empty block would read back as one empty string
            del self._blocks[block], self._counts[block]
        self._recount()

    # ---- inside
    def _recount(self) -> None:
        starts, total = array("l"), 0
        for count in self._counts:
            starts.append(total)
            total += count
        self._starts, self._length = starts, total
        self._cached = {}

    def _locate(self, i: int) -> tuple[int, int]:
        if i < 0:
            i += self._length
        if not 0 <= i < self._length:
            raise IndexError("PackedText index out of range")
        block = bisect_right(self._starts, i) - 1
        return block, i - self._starts[block]

    def _decoded(self, block: int) -> list[str]:
        texts = self._cached.get(block)
        if texts is None:
            texts = self._blocks[block].decode().split(RECORD_SEPARATOR)
            if len(self._cached) >= CACHED_BLOCKS:
                del self._cached[next(iter(self._cached))]
            self._cached[block] = texts
        return texts
