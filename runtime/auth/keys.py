"""API keys: make them, hash them, check owner-chosen values, and show a harmless prefix."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import unicodedata

from runtime.datadir.datafile import utc_text
from runtime.errors import SpaceDevError
from runtime.models import ApiKey

PREFIX_LENGTH = 8
SECRET_LENGTH = 32
MIN_CUSTOM_LENGTH = 16
# Keys travel in headers and cookies; past this a value is a mistake, not a key.
MAX_CUSTOM_LENGTH = 1024
# An owner-chosen value must not be trivially guessable: this many different characters, of this
# many kinds (lowercase letters, capitals, digits, anything else), and not mostly runs.
MIN_CUSTOM_DISTINCT = 8
MIN_CUSTOM_KINDS = 2
# The rule in words, for hints, the settings page and the command's help.
CUSTOM_VALUE_RULE = (
    f"at least {MIN_CUSTOM_LENGTH} characters with no spaces, at least {MIN_CUSTOM_DISTINCT} of "
    f"them different, of at least {MIN_CUSTOM_KINDS} kinds (lowercase letters, capitals, digits, "
    "symbols), not runs like 1234 or aaaa"
)
# Of an owner-chosen value, only this much is shown: enough to tell keys apart at a glance.
CUSTOM_PREFIX_SHOWN = 4

_ALPHANUMERIC = string.ascii_letters + string.digits
_GENERATED = re.compile(rf"[A-Za-z0-9]{{{PREFIX_LENGTH}}}\.[A-Za-z0-9_-]{{{SECRET_LENGTH}}}")


def generate_key() -> str:
    """A new key: `<8 alphanumeric>.<32 URL-safe random characters>` (about 190 random bits)."""
    prefix = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(PREFIX_LENGTH))
    # 24 random bytes are exactly 32 base64url characters, with no padding.
    return f"{prefix}.{secrets.token_urlsafe(SECRET_LENGTH * 3 // 4)}"


def is_generated_form(key: str) -> bool:
    """Whether the key has the shape `generate_key` gives."""
    return _GENERATED.fullmatch(key) is not None


def _key_bytes(key: str) -> bytes:
    try:
        # A header that was not UTF-8 reaches us with surrogate escapes: hash the bytes sent.
        return key.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return key.encode("utf-8", "surrogatepass")


def hash_key(key: str) -> str:
    """The hex SHA-256 of the whole key: all that is ever stored of it.

    A fast hash is right here: generated keys carry ~190 random bits and owner-chosen ones at
    least 16 characters of some variety, and wrong keys are slowed per client at the gate
    (`serve/key_guesses.py`); a slow hash would only make every request slow.
    """
    return hashlib.sha256(_key_bytes(key)).hexdigest()


def key_prefix(key: str) -> str:
    """What lists show of a key: the part before the dot of a generated key (public by design),
    else the first four characters and `...` for an owner-chosen value, which holds at least 12
    more characters nobody is shown."""
    if is_generated_form(key):
        return key[:PREFIX_LENGTH]
    return key[:CUSTOM_PREFIX_SHOWN] + "..."


def _bad_char(value: str) -> str | None:
    for index, char in enumerate(value):
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp", "Zs"):
            return f"a blank or control character ({ord(char):#06x}) at position {index + 1}"
    return None


_KIND_NAMES = ("lowercase letters", "capitals", "digits", "symbols")


def _kind(char: str) -> int:
    """Which of `_KIND_NAMES` a character is."""
    if char.islower():
        return 0
    if char.isupper():
        return 1
    return 2 if char.isdigit() else 3


def _mostly_runs(value: str) -> bool:
    """Whether most neighbours are the same character or the next or previous one (`aaaa`,
    `abcd`, `4321`): what a person types when asked for something long."""
    steps = sum(abs(ord(a) - ord(b)) <= 1 for a, b in zip(value, value[1:], strict=False))
    return steps * 2 > len(value) - 1


def check_custom_value(
    value: str, instead: str = "leave out --value to get a generated key"
) -> None:
    """Refuse an owner-chosen key value that is not a usable key: blanks, control characters,
    fewer than 16 characters, an absurd length, or a value trivially guessed (fewer than 8
    different characters, one kind of character only, mostly runs such as `aaaa` or `1234`).
    The hint ends with `instead`: what else the owner may do where they typed it."""
    hint = f"choose {CUSTOM_VALUE_RULE}; or {instead}"
    if not isinstance(value, str):
        raise SpaceDevError("the key value must be text", hint)
    if len(value) < MIN_CUSTOM_LENGTH:
        raise SpaceDevError(
            f"the key value is too short ({len(value)} characters, at least "
            f"{MIN_CUSTOM_LENGTH} are needed)",
            hint,
        )
    if len(value) > MAX_CUSTOM_LENGTH:
        raise SpaceDevError(
            f"the key value is too long ({len(value)} characters, at most {MAX_CUSTOM_LENGTH})",
            hint,
        )
    bad = _bad_char(value)
    if bad is not None:
        raise SpaceDevError(f"the key value holds {bad}", hint)
    distinct = len(set(value))
    if distinct < MIN_CUSTOM_DISTINCT:
        raise SpaceDevError(
            f"the key value is too easy to guess: only {distinct} different "
            f"character{'s' if distinct != 1 else ''} (at least {MIN_CUSTOM_DISTINCT} are needed)",
            hint,
        )
    kinds = sorted({_kind(char) for char in value})
    if len(kinds) < MIN_CUSTOM_KINDS:
        raise SpaceDevError(
            f"the key value is too easy to guess: it holds {_KIND_NAMES[kinds[0]]} only (mix "
            f"at least {MIN_CUSTOM_KINDS} kinds of characters)",
            hint,
        )
    if _mostly_runs(value):
        raise SpaceDevError(
            "the key value is too easy to guess: it is mostly runs of repeated or consecutive "
            "characters (such as aaaa, abcd or 1234)",
            hint,
        )


def hashes_equal(a: str, b: str) -> bool:
    """Compare two key hashes in constant time."""
    return hmac.compare_digest(_key_bytes(a), _key_bytes(b))


# The time as keys show it, `2021-04-22T11:50:08Z`: one format for the whole data dir.
utc_now_text = utc_text


# --- a new key's record ----------------------------------------------------------------------

KEY_NAME_MAX = 64
LABEL_MAX = 500  # descriptions and client types: labels, not documents
_NAME_HINT = "use letters, digits and - _ . (at most 64 characters), e.g. ci-deploy"
# Exactly what the hint says (the page's form and the API say the same).
KEY_NAME_PATTERN = "[A-Za-z0-9._-]+"
_NAME_OUTSIDE = re.compile(r"[^A-Za-z0-9._-]")


def check_key_fields(name: str, description: str = "", client_type: str = "") -> None:
    """A key's name and labels appear in tables, URLs (`/__space/api/keys/{name}`) and shell
    commands: the name holds only ASCII letters, digits and - _ . (as the hint says); the
    labels are one printable line each."""
    if not name.strip():
        raise SpaceDevError("a key needs a name", _NAME_HINT)
    if len(name) > KEY_NAME_MAX:
        raise SpaceDevError(f"key name is too long ({len(name)} characters)", _NAME_HINT)
    bad = sorted(set(_NAME_OUTSIDE.findall(name)))
    if bad:
        shown = ", ".join("a space" if c == " " else repr(c) for c in bad)
        raise SpaceDevError(
            f"key name {name!r} holds {shown}: only letters, digits and - _ . may be used",
            _NAME_HINT,
        )
    for what, value in (("description", description), ("client type", client_type)):
        hint = f"write the {what} on one line, in at most {LABEL_MAX} characters"
        if not value.isprintable():
            raise SpaceDevError(f"the {what} holds a line break or a control character", hint)
        if len(value) > LABEL_MAX:
            raise SpaceDevError(f"the {what} is too long ({len(value)} characters)", hint)


def new_key(
    app: str, name: str, description: str = "", client_type: str = "", value: str | None = None
) -> tuple[ApiKey, str]:
    """A checked record for a new key (holding only its hash) and the key itself, to show once.

    `value` is the owner's own key (Mia-Platform style); None makes one.
    """
    check_key_fields(name, description, client_type)
    if value is not None:
        check_custom_value(value)
    key = value if value is not None else generate_key()
    record = ApiKey(
        app=app,
        name=name,
        key_hash=hash_key(key),
        prefix=key_prefix(key),
        description=description,
        client_type=client_type,
        created=utc_now_text(),
    )
    return record, key
