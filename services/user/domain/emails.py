"""The mail the user service sends: verification, password reset and security notices."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from urllib.parse import quote


class EmailKind(StrEnum):
    """Why a mail is sent; stored with it for the audit trail and for tests."""

    VERIFY_EMAIL = "verify_email"
    ACCOUNT_EXISTS = "account_exists"
    RESET_PASSWORD = "reset_password"
    PASSWORD_CHANGED = "password_changed"
    ACCOUNT_SUSPENDED = "account_suspended"
    # Order notifications (services.user.domain.order_mail), one kind per event a mail reports.
    ORDER_PLACED = "order_placed"
    ORDER_SHIPPED = "order_shipped"
    ORDER_DELIVERED = "order_delivered"
    ORDER_REFUNDED = "order_refunded"
    ORDER_CANCELLED = "order_cancelled"
    ORDER_SOLD = "order_sold"


@dataclass(frozen=True)
class OutgoingEmail:
    """One mail to one address, queued in the outbox until the relay delivers it."""

    to: str
    subject: str
    body: str
    kind: EmailKind
    user_id: uuid.UUID | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class MailPolicy:
    """Lifetimes and limits of the mailed tokens, and where their links point."""

    base_url: str = "http://localhost:8080"
    verification_ttl: timedelta = timedelta(hours=48)
    reset_ttl: timedelta = timedelta(minutes=30)
    cooldown: timedelta = timedelta(seconds=60)


def _link(base_url: str, path: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{path}?token={quote(token)}"


def verification_email(
    *, to: str, user_id: uuid.UUID, token: str, base_url: str, ttl_hours: int
) -> OutgoingEmail:
    """Asks the owner of a new account to confirm the address."""
    body = (
        "Welcome to the marketplace!\n\n"
        "Confirm your email address by opening this link:\n\n"
        f"  {_link(base_url, '/verify-email', token)}\n\n"
        "or by sending this token to POST /v1/auth/email:verify:\n\n"
        f"  Token: {token}\n\n"
        f"The link works once and expires in {ttl_hours} hours. If you did not sign up, "
        "ignore this mail.\n"
    )
    return OutgoingEmail(to, "Confirm your email address", body, EmailKind.VERIFY_EMAIL, user_id)


def account_exists_email(*, to: str, user_id: uuid.UUID, base_url: str) -> OutgoingEmail:
    """Tells an account's owner that someone tried to sign up with their address.

    Registration answers the same for new and taken addresses, so this mail is how the
    real owner learns of the attempt without the sign-up form revealing the account.
    """
    body = (
        "Someone tried to create a marketplace account with this email address, which "
        "already has an account.\n\n"
        "If it was you, sign in instead, or reset your password here:\n\n"
        f"  {base_url.rstrip('/')}/forgot-password\n\n"
        "If it was not you, you can ignore this mail: nothing changed.\n"
    )
    return OutgoingEmail(
        to, "Someone tried to sign up with your address", body, EmailKind.ACCOUNT_EXISTS, user_id
    )


def reset_email(
    *, to: str, user_id: uuid.UUID, token: str, base_url: str, ttl_minutes: int
) -> OutgoingEmail:
    """Carries a single-use password-reset token."""
    body = (
        "A password reset was requested for your marketplace account.\n\n"
        "Choose a new password by opening this link:\n\n"
        f"  {_link(base_url, '/reset-password', token)}\n\n"
        "or by sending this token with your new password to POST /v1/auth/password:reset:\n\n"
        f"  Token: {token}\n\n"
        f"The link works once and expires in {ttl_minutes} minutes. If you did not ask "
        "for it, ignore this mail: your password stays as it is.\n"
    )
    return OutgoingEmail(to, "Reset your password", body, EmailKind.RESET_PASSWORD, user_id)


def password_changed_email(*, to: str, user_id: uuid.UUID, how: str) -> OutgoingEmail:
    """A security notice: the password changed, and the other sessions ended."""
    body = (
        f"The password of your marketplace account was {how}, and your other sessions "
        "were signed out.\n\n"
        "If this was not you, reset your password at once and contact support.\n"
    )
    return OutgoingEmail(to, "Your password was changed", body, EmailKind.PASSWORD_CHANGED, user_id)


def suspended_email(*, to: str, user_id: uuid.UUID) -> OutgoingEmail:
    """A notice that an admin suspended the account."""
    body = (
        "Your marketplace account has been suspended and signed out everywhere.\n\n"
        "If you think this is a mistake, reply to this mail to reach support.\n"
    )
    return OutgoingEmail(
        to, "Your account was suspended", body, EmailKind.ACCOUNT_SUSPENDED, user_id
    )
