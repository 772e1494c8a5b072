"""Which listed names may become a data file: object keys and file names are untrusted input.

An object store accepts any key, so ``U1/../../escape/label.json`` or ``a\\b`` can be listed next to good files.
Such a key is refused (and reported) rather than taken as a path: joined to a local folder it could name a file
outside it, and as a Synapse path it would not mean what it says.
"""

from __future__ import annotations

import unicodedata

MAX_KEY_CHARS = 1024  # S3's and GCS's own limit on a key, in bytes; longer text is no object key


def refused_name_reason(relative: str) -> str | None:
    """Why ``relative`` (a listed path below a source's root) is refused, or ``None`` when it is a usable name."""
    if _plainly_usable(relative):
        return None
    return _refusal(relative)


def _plainly_usable(relative: str) -> bool:
    """A few C-speed string tests that pass only names :func:`_refusal` accepts, and pass nearly every real one.

    A listing asks this once per object, and the full checks (a Unicode category per character) would cost more
    than parsing the object's listing entry. ``isprintable`` is false for every control character (category Cc)
    and every surrogate escape (Cs); a name whose first character or any character after a '/' is '.' (a hidden
    file, or a '.' or '..' segment) takes the full checks, as does anything else that looks odd.
    """
    return (
        relative.isprintable()
        and relative[:1] not in ("", "/", ".")
        and relative[-1] != "/"
        and "\\" not in relative
        and "//" not in relative
        and "/." not in relative
        and (len(relative) <= MAX_KEY_CHARS // 4 or len(relative.encode("utf-8")) <= MAX_KEY_CHARS)
    )


def _refusal(relative: str) -> str | None:
    """The full checks, in the order their messages take precedence."""
    if not relative:
        return "has an empty name"
    if relative.startswith("/"):
        return "is an absolute key (starts with '/'); rename the object without the leading '/'"
    if "\\" in relative:
        return "has a backslash in its name, which Windows tools read as a folder separator; rename it with '/'"
    bad = None if relative.isascii() and relative.isprintable() else next((c for c in relative if _is_control(c)), None)
    if bad is not None:
        return f"has a control character (U+{ord(bad):04X}) in its name; rename it"
    segments = relative.split("/")
    if "" in segments:
        return "has an empty folder name ('//' or a trailing '/'); rename it"
    if ".." in segments:
        return "has a '..' segment, which would point outside the source; rename it"
    if "." in segments:
        return "has a '.' segment; rename it without it"
    if len(relative.encode("utf-8", "surrogateescape")) > MAX_KEY_CHARS:
        return f"is over {MAX_KEY_CHARS} bytes long; shorten it"
    if _undecodable(relative):
        return "is not valid UTF-8; rename it"
    return None


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"


def _undecodable(text: str) -> bool:
    """A local name that is not UTF-8 arrives with surrogate escapes; Synapse and JSON cannot carry it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
