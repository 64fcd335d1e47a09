"""Request validation against stripe-python's generated params TypedDicts.

stripe-python ships one TypedDict per endpoint (``stripe.params.CustomerCreateParams``...)
generated from Stripe's OpenAPI spec for the pinned API version. Reading them gives the
sandbox the same list of accepted parameters, required keys and scalar types as Stripe,
without copying the spec. Their annotations are partly strings (forward references that
``typing.get_type_hints`` cannot always resolve), so they are parsed with ``ast`` instead of
being evaluated.
"""

from __future__ import annotations

import ast
import re
import sys
import typing
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import typing_extensions

from stripe_sandbox.wire import ApiError, invalid

# RequestOptions' own keys travel as headers or client settings, never as wire params.
_REQUEST_OPTION_KEYS = frozenset(
    {
        "api_key",
        "stripe_version",
        "stripe_account",
        "stripe_context",
        "max_network_retries",
        "idempotency_key",
        "content_type",
        "headers",
    }
)

_INT_RE = re.compile(r"-?\d+\Z")


@dataclass(frozen=True)
class Prim:
    """A scalar: ``str``, ``int``, ``bool``, ``float``, ``decimal`` or ``any``."""

    kind: str


@dataclass(frozen=True)
class Lit:
    """A closed set of literal values (``Literal['a', 'b']`` without ``|str``)."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class MapOf:
    """A free-form hash such as ``metadata`` (``Dict[str, str]``)."""

    value: Node


@dataclass(frozen=True)
class ListOf:
    """An array (``List[...]``)."""

    item: Node


@dataclass(frozen=True)
class UnionOf:
    """Any of several shapes (``Literal['']|CustomerCreateParamsAddress``)."""

    options: tuple[Node, ...]


@dataclass(eq=False)
class Obj:
    """A TypedDict: a hash with known keys, some required."""

    name: str
    fields: dict[str, Node] = field(default_factory=dict)
    required: frozenset[str] = frozenset()


Node = Prim | Lit | MapOf | ListOf | UnionOf | Obj

_ANY = Prim("any")
_PRIMS = {
    "str": Prim("str"),
    "int": Prim("int"),
    "bool": Prim("bool"),
    "float": Prim("float"),
    "Decimal": Prim("decimal"),
    "Any": _ANY,
}

_cache: dict[type, Obj] = {}


def schema_for(typed_dict: type) -> Obj:
    """Return the parsed schema of a params TypedDict (cached).

    Args:
        typed_dict: A class such as ``stripe.params.CustomerCreateParams``.
    """
    cached = _cache.get(typed_dict)
    if cached is not None:
        return cached
    obj = Obj(typed_dict.__name__)
    # Registered before the fields are parsed so self-referencing TypedDicts terminate.
    _cache[typed_dict] = obj
    namespace = vars(sys.modules[typed_dict.__module__])
    annotations: dict[str, Any] = {}
    for klass in reversed(typed_dict.__mro__):
        annotations.update(getattr(klass, "__annotations__", {}))
    required: set[str] = set()
    declared_required: frozenset[str] = getattr(typed_dict, "__required_keys__", frozenset())
    for key, annotation in annotations.items():
        if key in _REQUEST_OPTION_KEYS:
            continue
        node, is_required = _from_annotation(annotation, namespace)
        obj.fields[key] = node
        if is_required if is_required is not None else key in declared_required:
            required.add(key)
    obj.required = frozenset(required)
    return obj


def _from_annotation(annotation: Any, ns: dict[str, Any]) -> tuple[Node, bool | None]:
    """Parse one field annotation; the bool says Required/NotRequired when it is explicit."""
    if isinstance(annotation, str):
        return _from_source(annotation, ns)
    if isinstance(annotation, typing.ForwardRef):
        return _from_source(annotation.__forward_arg__, ns)
    origin = typing.get_origin(annotation)
    name = getattr(origin, "_name", None) or getattr(origin, "__name__", None)
    if name in ("NotRequired", "Required"):
        (inner,) = typing.get_args(annotation)
        node, _ = _from_annotation(inner, ns)
        return node, name == "Required"
    return _from_type(annotation, ns), None


def _from_type(tp: Any, ns: dict[str, Any]) -> Node:
    if isinstance(tp, str):
        return _from_source(tp, ns)[0]
    if isinstance(tp, typing.ForwardRef):
        return _from_source(tp.__forward_arg__, ns)[0]
    if tp is type(None):
        return Lit((None,))
    if isinstance(tp, type):
        if typing_extensions.is_typeddict(tp):
            return schema_for(tp)
        return _PRIMS.get(tp.__name__, _ANY)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    origin_name = getattr(origin, "_name", None) or getattr(origin, "__name__", "")
    if origin_name == "Literal" or origin is typing.Literal:
        return Lit(tuple(args))
    if origin is list or origin_name in ("list", "List"):
        return ListOf(_from_type(args[0], ns) if args else _ANY)
    if origin is dict or origin_name in ("dict", "Dict", "Mapping"):
        return MapOf(_from_type(args[1], ns) if len(args) == 2 else _ANY)
    if origin is typing.Union or origin_name in ("Union", "UnionType"):
        return _union([_from_type(a, ns) for a in args])
    if getattr(tp, "__name__", "") == "UntypedStripeObject" or origin_name == "UntypedStripeObject":
        return MapOf(_from_type(args[0], ns) if args else _ANY)
    return _ANY


def _from_source(source: str, ns: dict[str, Any]) -> tuple[Node, bool | None]:
    tree = ast.parse(source, mode="eval").body
    return _from_ast(tree, ns)


def _from_ast(node: ast.expr, ns: dict[str, Any]) -> tuple[Node, bool | None]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, _ = _from_ast(node.left, ns)
        right, _ = _from_ast(node.right, ns)
        return _union([left, right]), None
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            # A quoted forward reference inside a subscript: parse it in turn.
            return _from_source(node.value, ns)
        return Lit((node.value,)), None
    if isinstance(node, ast.Name):
        if node.id in _PRIMS:
            return _PRIMS[node.id], None
        if node.id == "None":
            return Lit((None,)), None
        target = ns.get(node.id)
        if isinstance(target, type) and typing_extensions.is_typeddict(target):
            return schema_for(target), None
        return _ANY, None
    if isinstance(node, ast.Subscript):
        head = node.value.id if isinstance(node.value, ast.Name) else ""
        slice_ = node.slice
        args = list(slice_.elts) if isinstance(slice_, ast.Tuple) else [slice_]
        if head == "Literal":
            return Lit(tuple(ast.literal_eval(a) for a in args)), None
        if head in ("NotRequired", "Required"):
            inner, _ = _from_ast(args[0], ns)
            return inner, head == "Required"
        if head in ("List", "list", "Sequence"):
            return ListOf(_from_ast(args[0], ns)[0]), None
        if head in ("Dict", "dict", "Mapping"):
            return MapOf(_from_ast(args[-1], ns)[0]), None
        if head == "UntypedStripeObject":
            return MapOf(_from_ast(args[0], ns)[0]), None
        if head in ("Union", "Optional"):
            options = [_from_ast(a, ns)[0] for a in args]
            if head == "Optional":
                options.append(Lit((None,)))
            return _union(options), None
    return _ANY, None


def _union(options: list[Node]) -> Node:
    flat: list[Node] = []
    for option in options:
        if isinstance(option, UnionOf):
            flat.extend(option.options)
        else:
            flat.append(option)
    # stripe-python types an enum as `Literal['a', 'b']|str` so a newer API value still
    # type-checks; the API itself refuses any other value. An enum of words closes the union.
    words = [o for o in flat if isinstance(o, Lit) and any(v not in ("", None) for v in o.values)]
    if words:
        flat = [o for o in flat if not (isinstance(o, Prim) and o.kind == "str")]
    return flat[0] if len(flat) == 1 else UnionOf(tuple(flat))


# ---------------------------------------------------------------- validation


def validate(params: dict[str, Any], typed_dict: type) -> dict[str, Any]:
    """Check decoded form params against an endpoint's TypedDict and coerce their types.

    Unknown keys, missing required keys and malformed scalars raise the same errors Stripe
    answers: ``parameter_unknown``, ``parameter_missing``, ``parameter_invalid_integer``...
    Strings become ``int``/``bool``/``float`` where the TypedDict says so, and digit-keyed
    hashes (``expand[0]=x``) become lists where it expects a list.

    Args:
        params: Output of :func:`stripe_sandbox.wire.decode_form`.
        typed_dict: The endpoint's params class, e.g. ``stripe.params.PriceCreateParams``.

    Returns:
        The coerced params.

    Raises:
        ApiError: 400 ``invalid_request_error`` naming the offending parameter.
    """
    return _coerce_obj(params, schema_for(typed_dict), "")


def _name(prefix: str, key: str) -> str:
    return f"{prefix}[{key}]" if prefix else key


def _coerce_obj(value: Any, obj: Obj, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"Invalid object: {param} must be a hash", param=param or None)
    out: dict[str, Any] = {}
    for key, raw in value.items():
        name = _name(param, key)
        node = obj.fields.get(key)
        if node is None:
            raise invalid(
                f"Received unknown parameter: {name}", param=name, code="parameter_unknown"
            )
        if raw == "" and key in obj.required:
            raise _cannot_unset(name)  # Stripe: a required string cannot be emptied
        out[key] = _coerce(raw, node, name)
    for key in sorted(obj.required):
        if key not in out:
            name = _name(param, key)
            raise invalid(f"Missing required param: {name}.", param=name, code="parameter_missing")
    return out


def _cannot_unset(param: str) -> ApiError:
    return invalid(
        f"You passed an empty string for '{param}'. We assume empty values are an attempt "
        f"to unset a parameter; however '{param}' cannot be unset. You should remove "
        f"'{param}' from your request or supply a non-empty value.",
        param=param,
        code="parameter_invalid_empty",
    )


def _accepts_empty(node: Node) -> bool:
    if isinstance(node, Lit):
        return "" in node.values
    if isinstance(node, UnionOf):
        return any(_accepts_empty(o) for o in node.options)
    return False


def _coerce(value: Any, node: Node, param: str) -> Any:
    if value == "" and not isinstance(node, Prim | MapOf | ListOf | Obj | UnionOf):
        return _coerce_scalar(value, node, param)
    if value == "":
        if _accepts_empty(node) or (isinstance(node, Prim) and node.kind in ("str", "any")):
            return ""
        raise _cannot_unset(param)
    if isinstance(node, UnionOf):
        return _coerce_union(value, node, param)
    if isinstance(node, Obj):
        return _coerce_obj(value, node, param)
    if isinstance(node, MapOf):
        if not isinstance(value, dict):
            raise invalid(f"Invalid hash: {param}", param=param)
        return {k: _coerce(v, node.value, _name(param, k)) for k, v in value.items()}
    if isinstance(node, ListOf):
        items = _as_list(value, param)
        return [_coerce(v, node.item, f"{param}[{i}]") for i, v in enumerate(items)]
    return _coerce_scalar(value, node, param)


def _as_list(value: Any, param: str) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and all(_INT_RE.match(k) for k in value):
        return [value[k] for k in sorted(value, key=int)]
    raise invalid(f"Invalid array: {param}", param=param)


def _coerce_union(value: Any, node: UnionOf, param: str) -> Any:
    if isinstance(value, dict | list):
        containers = [o for o in node.options if isinstance(o, Obj | MapOf | ListOf)]
        if not containers:
            raise invalid(f"Invalid {param}: expected a scalar, got a hash", param=param)
        if isinstance(value, dict) and not all(_INT_RE.match(k) for k in value):
            containers = [o for o in containers if not isinstance(o, ListOf)] or containers
        # The first container shape decides, so its precise error (an unknown nested key,
        # say) reaches the caller instead of a vague "no option matched".
        return _coerce(value, containers[0], param)
    first_error: ApiError | None = None
    # Literal and non-string scalars first: "5" must become 5 for `int|str`, and a plain
    # `str` option accepts anything, so it goes last.
    ranked = sorted(node.options, key=lambda o: isinstance(o, Prim) and o.kind in ("str", "any"))
    for option in ranked:
        if isinstance(option, Obj | MapOf | ListOf):
            continue
        try:
            return _coerce_scalar(value, option, param)
        except ApiError as exc:
            first_error = first_error or exc
    raise first_error or invalid(f"Invalid {param}", param=param)


def _coerce_scalar(value: Any, node: Node, param: str) -> Any:
    if isinstance(value, dict | list):
        raise invalid(f"Invalid {param}: expected a scalar, got a hash", param=param)
    if isinstance(node, Lit):
        if value in node.values:
            return value
        for candidate in node.values:
            if isinstance(candidate, int) and str(candidate) == value:
                return candidate
        allowed = ", ".join(str(v) for v in node.values if v is not None)
        raise invalid(f"Invalid {param}: must be one of {allowed}", param=param)
    if not isinstance(node, Prim):
        raise invalid(f"Invalid {param}", param=param)
    if node.kind == "int":
        if _INT_RE.match(value):
            return int(value)
        raise invalid(f"Invalid integer: {value}", param=param, code="parameter_invalid_integer")
    if node.kind == "bool":
        if value in ("true", "false"):
            return value == "true"
        raise invalid(f"Invalid boolean: {value}", param=param)
    if node.kind in ("float", "decimal"):
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise invalid(f"Invalid decimal: {value}", param=param) from None
        if not number.is_finite():
            raise invalid(f"Invalid decimal: {value}", param=param)
        return float(number) if node.kind == "float" else value
    return value
