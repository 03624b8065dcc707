"""Validation rules for account fields; each check returns a problem or None."""

from __future__ import annotations

import re
import unicodedata

MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128
MAX_DISPLAY_NAME_LENGTH = 100

# The WHATWG "valid email address" grammar, narrowed to domains with at least one dot:
# strict enough to catch typos, loose enough not to refuse real addresses.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_USERNAME = re.compile(r"^[A-Za-z0-9_-]{3,32}$")

# The most common passwords of at least the minimum length, from public breach corpora;
# a tiny list, but it refuses exactly what credential-stuffing tries first.
COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "12345678910",
        "123456789a",
        "0123456789",
        "0987654321",
        "1111111111",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "abcdefghij",
        "aaaaaaaaaa",
        "iloveyou12",
        "letmein123",
        "password12",
        "password123",
        "password1234",
        "password1!",
        "passw0rd123",
        "qwertyuiop",
        "qwerty1234",
        "qwerty12345",
        "qwerty123456",
        "asdfghjkl1",
        "zxcvbnm123",
        "welcome123",
        "changeme123",
        "administrator",
        "football123",
        "baseball123",
        "monkey12345",
        "sunshine123",
        "princess123",
        "marketplace",
        "marketplace1",
    }
)


def normalise_email(email: str) -> str:
    """The form an email is stored and compared in: trimmed and lower-cased."""
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    """What is wrong with a (normalised) email address, if anything."""
    if not email:
        return "is required"
    if len(email) > MAX_EMAIL_LENGTH:
        return f"must be at most {MAX_EMAIL_LENGTH} characters"
    if not _EMAIL.match(email):
        return "must be a valid email address such as name@example.com"
    return None


def username_problem(username: str) -> str | None:
    """What is wrong with a username, if anything."""
    if not username:
        return "is required"
    if not _USERNAME.match(username):
        return "must be 3 to 32 letters, digits, '_' or '-'"
    return None


def password_problem(password: str, *, email: str = "", username: str = "") -> str | None:
    """What is wrong with a new password, if anything."""
    if not password:
        return "is required"
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"must be at most {MAX_PASSWORD_LENGTH} characters"
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS:
        return "is too common; choose another"
    if lowered in {email.lower(), username.lower()}:
        return "must not be your email or username"
    return None


def display_name_problem(display_name: str) -> str | None:
    """What is wrong with a display name, if anything; empty is allowed."""
    if len(display_name) > MAX_DISPLAY_NAME_LENGTH:
        return f"must be at most {MAX_DISPLAY_NAME_LENGTH} characters"
    # Control characters would let a name break the layout of every page showing it.
    if any(unicodedata.category(ch).startswith("C") for ch in display_name):
        return "must not contain control characters"
    return None


def may_read_account(caller_id: str, account_id: str, *, caller_is_admin: bool) -> bool:
    """Whether a caller may read an account: its owner or an admin."""
    return caller_is_admin or caller_id == account_id
