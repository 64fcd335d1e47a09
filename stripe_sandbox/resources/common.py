"""What every resource shares: request context, metadata rules, lists and ``expand``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from stripe_sandbox.store import RequestInfo, Store, deep_copy
from stripe_sandbox.wire import ApiError, JsonDict, invalid

# Stripe's documented metadata limits.
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500


@dataclass(frozen=True)
class Ctx:
    """The request an API handler runs for.

    Attributes:
        store: The sandbox state (its lock is held while the handler runs).
        now: Request time in Unix seconds.
        request: Request id and idempotency key, recorded on events.
    """

    store: Store
    now: int
    request: RequestInfo


Handler = Callable[[Ctx, JsonDict, str], JsonDict]


@dataclass(frozen=True)
class Route:
    """One API endpoint: method, path (``{id}`` marks the object id) and its params class.

    A path may also hold ``{sub}``, a sub-resource's id; the handler then gets
    ``"<id>/<sub>"``.
    """

    method: str
    path: str
    params: type
    handler: Handler


def apply_metadata(current: JsonDict, value: Any) -> JsonDict:
    """Apply a ``metadata`` param the way Stripe does and return the new metadata.

    ``""`` clears all keys; a key posted with an empty value is unset; other keys are set.

    Raises:
        ApiError: More than 50 keys, or a key/value over Stripe's length limits.
    """
    if value == "":
        return {}
    merged = dict(current)
    for key, item in value.items():
        if len(key) > METADATA_KEY_MAX:
            raise invalid(
                f"Metadata key length can't exceed {METADATA_KEY_MAX} characters.",
                param=f"metadata[{key}]",
            )
        if item == "":
            merged.pop(key, None)
            continue
        if len(item) > METADATA_VALUE_MAX:
            raise invalid(
                f"Metadata values can have up to {METADATA_VALUE_MAX} characters, but you "
                f"passed in a value that is {len(item)} characters.",
                param=f"metadata[{key}]",
            )
        merged[key] = item
    if len(merged) > METADATA_MAX_KEYS:
        raise invalid(
            f"You can have at most {METADATA_MAX_KEYS} keys in metadata.", param="metadata"
        )
    return merged


def check_url(value: str, param: str) -> str:
    """Refuse anything but an absolute http(s) URL, as Stripe does for redirect URLs."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid(f"Not a valid URL: {value}", param=param, code="url_invalid")
    return value


def blank_to_none(value: Any) -> Any:
    """Stripe treats an empty string as "unset this field"."""
    return None if value == "" else value


def diff(before: JsonDict, after: JsonDict) -> JsonDict:
    """The ``previous_attributes`` of an update: old values of the fields that changed.

    For ``metadata`` only the changed keys are listed (``null`` for keys that were added),
    which is what Stripe sends.
    """
    previous: JsonDict = {}
    for key, old in before.items():
        new = after.get(key)
        if old == new:
            continue
        if key == "metadata" and isinstance(old, dict) and isinstance(new, dict):
            previous[key] = {
                k: old.get(k) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
            }
        else:
            previous[key] = deep_copy(old)
    return previous


def record_update(ctx: Ctx, kind: str, before: JsonDict, after: JsonDict) -> bool:
    """Record ``<kind>.updated`` if anything changed; return whether it did."""
    previous = diff(before, after)
    if not previous:
        return False
    ctx.store.touch()
    ctx.store.record_event(f"{kind}.updated", after, ctx.request, ctx.now, previous)
    return True


def save_update(
    ctx: Ctx, kind: str, obj: JsonDict, changed: JsonDict, params: JsonDict
) -> JsonDict:
    """End of every update: `obj` takes `changed`'s contents in place (other objects hold
    references to it), ``<kind>.updated`` is recorded if anything differs, and the result is
    rendered with the request's ``expand``."""
    before = deep_copy(obj)
    obj.clear()
    obj.update(changed)
    record_update(ctx, kind, before, obj)
    return render(ctx.store, obj, params.get("expand", []))


# ---------------------------------------------------------------- lists


def created_matches(created: int, flt: Any) -> bool:
    """Apply a ``created`` filter: a plain timestamp or ``{gt, gte, lt, lte}``."""
    if flt is None:
        return True
    if isinstance(flt, int):
        return created == flt
    return (
        ("gt" not in flt or created > flt["gt"])
        and ("gte" not in flt or created >= flt["gte"])
        and ("lt" not in flt or created < flt["lt"])
        and ("lte" not in flt or created <= flt["lte"])
    )


def paginate(
    ctx: Ctx,
    kind: str,
    label: str,
    items: Iterable[JsonDict],
    params: JsonDict,
    url: str,
    newest_first: bool = True,
) -> JsonDict:
    """Build a Stripe list object: ordered, ``limit`` and cursor pagination.

    Args:
        ctx: Request context.
        kind: Object kind the cursors refer to (``customer``...).
        label: Name used in "No such ..." messages for a bad cursor.
        items: Matching objects (any order; sorted here).
        params: Validated list params (``limit``, ``starting_after``, ``ending_before``,
            ``expand``).
        url: The list's path, e.g. ``/v1/customers``.
        newest_first: Stripe's usual order; False lists in creation order (line items).

    Raises:
        ApiError: ``limit`` outside 1..100, both cursors given, or an unknown cursor id.
    """
    limit = params.get("limit", 10)
    if not 1 <= limit <= 100:
        raise invalid(
            "Invalid limit: must be an integer between 1 and 100 (inclusive).", param="limit"
        )
    after = params.get("starting_after")
    before = params.get("ending_before")
    if after and before:
        raise invalid(
            "You may only specify one of these parameters: starting_after, ending_before.",
            param="ending_before",
        )
    store = ctx.store
    ordered = sorted(items, key=store.sort_key, reverse=newest_first)
    if after or before:
        cursor_id = str(after or before)
        cursor = store.get(kind, cursor_id)
        if cursor is None:
            raise ApiError(
                400,
                f"No such {label}: '{cursor_id}'",
                code="resource_missing",
                param="starting_after" if after else "ending_before",
            )
        key = store.sort_key(cursor)
        sign = 1 if newest_first else -1

        def position(o: JsonDict) -> int:
            # > 0: comes after the cursor in list order; < 0: before it.
            own = store.sort_key(o)
            return 0 if own == key else (sign if own < key else -sign)

        if after:
            rest = [o for o in ordered if position(o) > 0]
            page, has_more = rest[:limit], len(rest) > limit
        else:
            earlier = [o for o in ordered if position(o) < 0]
            page, has_more = earlier[-limit:], len(earlier) > limit
    else:
        page, has_more = ordered[:limit], len(ordered) > limit
    expand = [p[len("data.") :] for p in params.get("expand", []) if p.startswith("data.")]
    others = [p for p in params.get("expand", []) if not p.startswith("data.")]
    if others:
        raise invalid(f"This property cannot be expanded ({others[0]}).", param="expand")
    return {
        "object": "list",
        "data": [render(store, o, expand) for o in page],
        "has_more": has_more,
        "url": url,
    }


# ---------------------------------------------------------------- expand

# Which fields of which object can be expanded, and what kind of object they point to.
# Keys are an object's `object` value, or "<kind>.<field>" for a plain sub-hash such as an
# invoice payment's `payment`.
EXPANDABLE: dict[str, dict[str, str]] = {
    "product": {"default_price": "price", "tax_code": "tax_code"},
    "price": {"product": "product"},
    "customer": {"default_source": "card", "test_clock": "test_helpers.test_clock"},
    "event": {},
    "webhook_endpoint": {},
}

# Fields Stripe leaves out unless expanded ("includable"): kind -> field -> (a function that
# lists the objects to include, the list's URL with "{id}"). Resource modules register theirs
# at import.
Includer = Callable[[Store, JsonDict], list[JsonDict]]
INCLUDABLE: dict[str, dict[str, tuple[Includer, str]]] = {}


def includable(kind: str, field: str, includer: Includer, url: str) -> None:
    """Register an includable list field (``line_items`` on a Checkout Session...).

    Args:
        kind: The parent's ``object`` value.
        field: The field that appears when expanded.
        includer: Returns the items for a parent object.
        url: The list's URL, ``{id}`` standing for the parent's id.
    """
    INCLUDABLE.setdefault(kind, {})[field] = (includer, url)


def render(store: Store, obj: JsonDict, expand: Iterable[str]) -> JsonDict:
    """Return a copy of an object with the requested ``expand`` paths filled in.

    Raises:
        ApiError: A path names a field that cannot be expanded.
    """
    out: JsonDict = deep_copy(obj)
    for path in expand:
        _expand(store, out, path.split("."), path, out.get("object", ""))
    return out


def _expand(store: Store, obj: JsonDict, parts: list[str], path: str, kind: str) -> None:
    field, rest = parts[0], parts[1:]
    included = INCLUDABLE.get(kind, {}).get(field)
    if included is not None:
        includer, url = included
        items = [deep_copy(o) for o in includer(store, obj)]
        obj[field] = {
            "object": "list",
            "data": items,
            "has_more": False,
            "url": url.replace("{id}", obj["id"]),
        }
        if rest:
            for item in items:
                _expand(store, item, rest[1:] if rest[0] == "data" else rest, path, item["object"])
        return
    target_kind = EXPANDABLE.get(kind, {}).get(field)
    if target_kind is None:
        raise invalid(f"This property cannot be expanded ({path}).", param="expand")
    value = obj.get(field)
    if target_kind == "":
        # A plain sub-hash: expand inside it.
        if rest and isinstance(value, dict):
            _expand(store, value, rest, path, f"{kind}.{field}")
            return
        raise invalid(f"This property cannot be expanded ({path}).", param="expand")
    if isinstance(value, str):
        target = store.get(target_kind, value)
        if target is None:
            return
        value = deep_copy(target)
        obj[field] = value
    if rest and isinstance(value, dict):
        _expand(store, value, rest, path, value.get("object", ""))
