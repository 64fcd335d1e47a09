"""PackedText: the Customers panel's text, 64 strings to a bytes object, reads as the list it
replaces, through every change the panel makes (issue 15's memory goal)."""

from __future__ import annotations

import random

import pytest

from services.packed_text import BLOCK, FEW_PREFIXES, RECORD_SEPARATOR, PackedText

ALPHABET = "abcAB19 üŌß\x1f"  # ASCII, Latin-1, wider, a field separator


def _texts(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 9))) for _ in range(n)]


@pytest.mark.parametrize("seed", range(6))
def test_reads_and_changes_as_a_list_does(seed: int) -> None:
    rng = random.Random(seed)
    model = _texts(rng, rng.randrange(0, 3 * BLOCK + 5))
    packed = PackedText(model)
    for _ in range(120):
        action = rng.randrange(4)
        if action == 0 and model:
            i = rng.randrange(len(model))
            model[i] = packed[i] = _texts(rng, 1)[0]
        elif action == 1 and model:
            i = rng.randrange(-len(model), len(model))
            del model[i], packed[i]
        elif action == 2:
            front = _texts(rng, rng.randrange(0, BLOCK + 3))
            model[:0] = front
            packed.prepend(front)
        else:
            more = _texts(rng, rng.randrange(0, BLOCK + 3))
            model += more
            packed.extend(more)
        assert len(packed) == len(model)
        if model:
            i = rng.randrange(len(model))
            assert packed[i] == model[i]
            assert packed[-1] == model[-1]
            a = rng.randrange(len(model))
            b = rng.randrange(a, len(model) + 2)
            assert packed[a:b] == model[a:b]
    assert list(packed) == model
    assert packed.copy() == model


def test_a_copy_changes_alone() -> None:
    packed = PackedText(["a", "b", "c"])
    other = packed.copy()
    other[0] = "z"
    del other[1]
    assert list(packed) == ["a", "b", "c"]
    assert list(other) == ["z", "c"]


def test_a_record_separator_inside_a_string_cannot_split_it() -> None:
    packed = PackedText([f"x{RECORD_SEPARATOR}y", "z"])
    packed[1] = f"{RECORD_SEPARATOR}"
    assert list(packed) == ["x\ufffdy", "\ufffd"]
    assert len(packed) == 2


@pytest.mark.parametrize("how_many", [1, FEW_PREFIXES, FEW_PREFIXES + 1, 40])
def test_prefixes_are_found_at_their_first_string(how_many: int) -> None:
    texts = [f"cus_{i:05d}\x1fname {i}" for i in range(5 * BLOCK + 7)]
    texts[200] = "cus_00003\x1fa second one"  # the first wins
    packed = PackedText(texts)
    wanted = {f"cus_{i:05d}\x1f": i for i in range(0, len(texts), 7)}
    asked = dict(list(wanted.items())[: how_many - 1])
    asked["cus_00003\x1f"] = 3
    missing = "cus_99999\x1f"
    found = packed.find_prefixed([*asked, missing])
    assert found == asked
    for prefix, i in asked.items():
        assert packed.index_prefixed(prefix) == i
    with pytest.raises(ValueError, match="cus_99999"):
        packed.index_prefixed(missing)
    # A prefix that is the end of one string and the start of the next is not a match.
    assert packed.find_prefixed(["name 0\x1ecus"]) == {}
