"""Roles and what each may do: the one table of permissions, enforced in services/.

The UI reads the same table to hide or disable what an operator may not do, but the checks that
count are the ones in services, on every call that reads or changes data.
"""

from __future__ import annotations

import enum


class Role(enum.Enum):
    FINANCE = "finance"
    SUPPORT = "support"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Permission(enum.Enum):
    """Named capabilities; the value is how they are written in messages, the CLI and the audit."""

    BROWSE = "browse"
    EXPORT = "export"
    SYNC = "sync from Stripe"
    VIEW_AUDIT = "view audit log"
    ISSUE_TOPUP_LINK = "issue top-up link"
    ISSUE_PORTAL_LINK = "issue portal link"
    MANAGE_AUTO_TOPUP = "manage auto top-up"
    EDIT_CUSTOMER = "edit customer"
    MANAGE_CATALOG = "manage catalog"
    CREATE_INVOICE = "create invoice"
    FINALIZE_INVOICE = "finalize invoice"
    CHARGE_INVOICE = "charge invoice"
    MANAGE_SUBSCRIPTIONS = "manage subscriptions"
    VOID_INVOICE = "void invoice"
    GRANT_CREDITS = "grant credits"
    CONSUME_CREDITS = "consume credits"  # admins; products use PostgreSQL's consume_credits
    REPLAY_EVENTS = "replay events"
    MANAGE_SETTINGS = "manage settings"
    MANAGE_OPERATORS = "manage operators"
    RESOLVE_REQUESTS = "resolve unconfirmed requests"
    RECONCILE = "reconcile with Stripe"
    REPAIR_BOOKS = "repair the books"


_ALL = frozenset(Permission)

#: The one table. Admins may do everything; finance reads, exports and audits; support issues
#: paid links and keeps customer details current. Nobody but admins moves money or grants credits.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.FINANCE: frozenset(
        {
            Permission.BROWSE,
            Permission.EXPORT,
            Permission.SYNC,
            Permission.VIEW_AUDIT,
            Permission.RECONCILE,
        }
    ),
    Role.SUPPORT: frozenset(
        {
            Permission.BROWSE,
            Permission.SYNC,
            Permission.ISSUE_TOPUP_LINK,
            Permission.ISSUE_PORTAL_LINK,
            Permission.EDIT_CUSTOMER,
            Permission.MANAGE_AUTO_TOPUP,
        }
    ),
    Role.ADMIN: _ALL,
}


def allowed(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def roles_with(permission: Permission) -> list[Role]:
    """Which roles have `permission`, for "needs …" messages and tooltips."""
    return [role for role in Role if permission in ROLE_PERMISSIONS[role]]


def why_not(role: Role, permission: Permission) -> str:
    """One line saying what is missing, e.g. for a disabled button's tooltip or exit code 3."""
    who = ", ".join(r.value for r in roles_with(permission))
    return (
        f"Permission denied: '{permission.value}' is needed (role {who}); "
        f"your role is {role.value}."
    )
