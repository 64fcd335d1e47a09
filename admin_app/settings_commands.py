"""`admin-app settings` and `admin-app secrets`: what the Settings dialog does, for scripts and
for a server with no window.

Secrets are read from stdin (a terminal: without echo), never from the command line: any local
user can read every process's arguments (`ps`, `/proc/PID/cmdline`).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from services.context import AppContext
from services.errors import ConfigurationError, ValidationError
from services.secrets import SecretName, SecretSource

SECRET_NAMES = {
    "stripe-key": SecretName.STRIPE_SECRET_KEY,
    "webhook-secret": SecretName.STRIPE_WEBHOOK_SECRET,
}
#: A secret longer than this is not a Stripe secret (and is not read whole).
MAX_SECRET = 4096


def settings_show(args: argparse.Namespace, ctx: AppContext) -> int:
    values = ctx.config.values()
    if args.json:
        data: dict[str, Any] = {
            v.key.name: {"value": v.value, "scope": v.key.scope, "stored_in": v.stored_in}
            for v in values
        }
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    width = max(len(v.key.name) for v in values)
    for v in values:
        shown = v.value if v.value is not None else f"(not set: {v.key.default or 'none'})"
        print(f"{v.key.name:<{width}}  {v.key.scope:<7}  {shown}")
    return 0


def settings_set(args: argparse.Namespace, ctx: AppContext) -> int:
    done = ctx.config.set_value(args.key, args.value)
    print(f"{done.key.name} = {done.value} ({done.key.scope}; in {done.stored_in})")
    return 0


def settings_unset(args: argparse.Namespace, ctx: AppContext) -> int:
    done = ctx.config.set_value(args.key, None)
    print(f"{done.key.name} unset; now {done.value or done.key.default or '(none)'}")
    return 0


def read_secret(label: str) -> str:
    """One line from stdin; prompted without echo when stdin is a terminal."""
    if sys.stdin.isatty():
        return getpass.getpass(f"{label} (not shown): ")
    text = sys.stdin.readline(MAX_SECRET + 1)
    if len(text) > MAX_SECRET:
        raise ValidationError(f"That is too long to be a {label}.")
    if not text.strip():
        raise ValidationError(
            f"No {label} on stdin: pipe it in (e.g. `admin-app secrets set ... < file`), "
            "never as an argument."
        )
    return text


def secrets_set(args: argparse.Namespace, ctx: AppContext) -> int:
    name = SECRET_NAMES[args.name]
    value = read_secret(name.label)
    try:
        status = ctx.config.set_secret(name, value)
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"{exc} On a server running the listener service, put {name.value}=… in "
            "/etc/billing-admin/listen.env (mode 0640, root:billing-admin)."
        ) from None
    where = "the OS keyring"
    if status.source is SecretSource.ENVIRONMENT:
        where += f" (but the {name.value} environment variable is set and wins over it)"
    print(f"Stored the {name.label} ({status.hint or 'hidden'}) in {where}.")
    return 0


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    settings = commands.add_parser(
        "settings", help="show or change what the Settings dialog holds (admins change)"
    )
    sub = settings.add_subparsers(dest="settings_command", metavar="ACTION", required=True,
                                  parser_class=parser_class)  # fmt: skip
    p = sub.add_parser("show", help="every setting, its value and whether it is the team's")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=settings_show)
    p = sub.add_parser("set", help="change one setting (admins; validated; audited)")
    p.add_argument("key", metavar="KEY", help="see `settings show`")
    p.add_argument("value", metavar="VALUE")
    p.set_defaults(handler=settings_set)
    p = sub.add_parser("unset", help="back to the default (admins; audited)")
    p.add_argument("key", metavar="KEY")
    p.set_defaults(handler=settings_unset)

    secrets = commands.add_parser(
        "secrets", help="store the Stripe key or webhook secret in the OS keyring (from stdin)"
    )
    sub = secrets.add_subparsers(dest="secrets_command", metavar="ACTION", required=True,
                                 parser_class=parser_class)  # fmt: skip
    p = sub.add_parser(
        "set", help="read the secret from stdin (never an argument) into the keyring (admins)"
    )
    p.add_argument("name", choices=sorted(SECRET_NAMES), metavar="stripe-key|webhook-secret")
    p.set_defaults(handler=secrets_set)
