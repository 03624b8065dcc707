"""Profiles and preferences: what a user says about themselves and how they want it."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from urllib.parse import urlsplit

import structlog

from services.common.clock import Clock
from services.common.errors import (
    NotFound,
    Violations,
)
from services.common.field_mask import mask_paths
from services.user.domain import commands, rules
from services.user.domain.model import (
    Preferences,
    User,
)
from services.user.domain.reasons import ErrorReason
from services.user.service_layer.access import (
    locked_user,
    resolve_owner,
)
from services.user.service_layer.ports import (
    UnitOfWork,
)

log = structlog.get_logger("user.profiles")

PROFILE_FIELDS = frozenset({"display_name", "bio", "avatar_url", "phone_number"})
PREFERENCE_FIELDS = frozenset(
    {"language", "currency_code", "marketing_opt_in", "notification_channels"}
)
MAX_BIO_LENGTH = 500
MAX_URL_LENGTH = 2048
NOTIFICATION_CHANNELS = frozenset({"email", "sms", "push"})
# The currencies the storefront can show prices in (ISO 4217).
SUPPORTED_CURRENCIES = frozenset(
    [
        "USD",
        "EUR",
        "GBP",
        "JPY",
        "CHF",
        "CAD",
        "AUD",
        "NZD",
        "SEK",
        "NOK",
        "DKK",
        "PLN",
        "CZK",
        "HUF",
        "INR",
        "CNY",
        "BRL",
        "MXN",
        "ZAR",
        "SGD",
        "HKD",
        "KRW",
    ]
)
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
# BCP 47 in the shape browsers send: a 2-3 letter language and optional subtags.
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$")


def _text_problem(value: str, limit: int, *, multiline: bool = False) -> str | None:
    if len(value) > limit:
        return f"must be at most {limit} characters"
    allowed = {"\n", "\t"} if multiline else set()
    if any(unicodedata.category(c).startswith("C") and c not in allowed for c in value):
        return "must not contain control characters"
    return None


def _avatar_problem(url: str) -> str | None:
    if not url:
        return None
    if len(url) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters"
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in url):
        return "must be an https URL"
    if parts.username or parts.password:
        return "must not carry credentials"
    return None


async def update_user(command: commands.UpdateUser, *, uow: UnitOfWork, clock: Clock) -> User:
    """Change the owner's profile fields in the mask; roles, email and state stay put."""
    owner = resolve_owner(command.caller, command.user_id, field="user.user_id")
    paths = mask_paths(command.paths, PROFILE_FIELDS)
    fields = replace(
        command.fields,
        display_name=command.fields.display_name.strip(),
        avatar_url=command.fields.avatar_url.strip(),
        phone_number=command.fields.phone_number.strip(),
    )
    violations = Violations()
    checks = {
        "display_name": rules.display_name_problem(fields.display_name),
        "bio": _text_problem(fields.bio, MAX_BIO_LENGTH, multiline=True),
        "avatar_url": _avatar_problem(fields.avatar_url),
        "phone_number": (
            "must be in E.164 form such as +4930123456"
            if fields.phone_number and not _E164.match(fields.phone_number)
            else None
        ),
    }
    for name in sorted(paths):
        problem = checks[name]
        if problem is not None:
            violations.add(f"user.{name}", problem)
    violations.raise_if_any()
    async with uow:
        user = await locked_user(uow, owner)
        for name in paths:
            setattr(user, name, getattr(fields, name))
        user.updated_at = clock.now()
        await uow.users.update_profile(user)
        await uow.commit()
    log.info("profile_updated", user_id=str(owner), fields=sorted(paths))
    return user


async def get_preferences(
    command: commands.GetPreferences, *, uow: UnitOfWork, clock: Clock
) -> Preferences:
    """The owner's preferences (admins may read any), defaults where never set."""
    owner = resolve_owner(command.caller, command.user_id, admin_may=True)
    async with uow:
        stored = await uow.preferences.get(owner)
    return stored or Preferences(user_id=owner)


async def update_preferences(
    command: commands.UpdatePreferences, *, uow: UnitOfWork, clock: Clock
) -> Preferences:
    """Change the owner's preferences named in the mask."""
    owner = resolve_owner(command.caller, command.user_id, field="preferences.user_id")
    paths = mask_paths(command.paths, PREFERENCE_FIELDS)
    language = command.language.strip()
    currency = command.currency_code.strip().upper()
    channels = command.notification_channels
    violations = Violations()
    if "language" in paths and not (len(language) <= 35 and _LANGUAGE_TAG.match(language)):
        violations.add("preferences.language", "must be a BCP-47 language tag such as 'en-GB'")
    if "currency_code" in paths and currency not in SUPPORTED_CURRENCIES:
        violations.add(
            "preferences.currency_code",
            f"must be one of {', '.join(sorted(SUPPORTED_CURRENCIES))}",
        )
    if "notification_channels" in paths:
        if not channels:
            violations.add(
                "preferences.notification_channels",
                "must name at least one channel: security notices need one",
            )
        elif not set(channels) <= NOTIFICATION_CHANNELS or len(set(channels)) != len(channels):
            violations.add("preferences.notification_channels", "must be distinct, known channels")
    violations.raise_if_any()
    async with uow:
        if await uow.users.get_for_update(owner) is None:
            raise NotFound("no such user", reason=ErrorReason.USER_NOT_FOUND)
        current = await uow.preferences.get(owner) or Preferences(user_id=owner)
        changes: dict[str, object] = {}
        if "language" in paths:
            changes["language"] = language
        if "currency_code" in paths:
            changes["currency_code"] = currency
        if "marketing_opt_in" in paths:
            changes["marketing_opt_in"] = command.marketing_opt_in
        if "notification_channels" in paths:
            changes["notification_channels"] = tuple(channels)
        updated = replace(current, **changes)  # type: ignore[arg-type]
        await uow.preferences.put(updated, clock.now())
        await uow.commit()
    return updated
