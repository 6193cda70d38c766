"""Scrubbing what monitor keeps and shows: secrets redacted before anything is stored, terminal
control characters escaped before stored text is printed, and the metadata-only capture mode.

Secrets are found by the table SECRETS below (docs/security.md lists it with examples): the
shapes of well-known keys and tokens, and values assigned to secret-looking names. A match is
replaced by ``[REDACTED:kind]``. A detector library (detect-secrets) was measured and left out:
its import alone takes ~250 ms, while the hook must start in a few tens of milliseconds.

Imports stay cheap (os, re, json): `python -m monitor.hooks` redacts every payload.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable

CAPTURE_ENV_VAR = "MONITOR_CAPTURE"
#: The capture modes: everything (redacted), or only names, times, status and sizes.
FULL, METADATA = "full", "metadata"
MARK = "[REDACTED:{}]"

#: The words a secret's name ends with (GITHUB_TOKEN, db_password, aws_secret_access_key, "apiKey"),
#: matched without regard to case; input_tokens, token_count or PASSWORD_FILE do not end with one.
_SECRET_WORD = (r"(?:passw(?:or)?d|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|"
                r"auth[_-]?key|credentials?|session[_-]?key|signing[_-]?key|encryption[_-]?key)")
#: A value that is not a secret itself: a reference to one ($VAR, ${VAR}, <placeholder>), a
#: redaction already made, a call or an index in code (token = get_token()), or nothing at all.
_NOT_A_VALUE = r"(?![\"']?(?:\$|<|\[REDACTED|\*{3})|[A-Za-z_][\w.]*[(\[]|(?:None|null|true|false|\"\"|'')(?!\w))"

#: (kind, hints, pattern), applied in this order. A pattern is tried only on text that contains
#: one of its hints (lowercased): most text contains none, and is scanned for none. A pattern's
#: group "secret", when it has one, is the part replaced: the rest (a name, a URL's user) stays.
SECRETS: list[tuple[str, tuple[str, ...], str]] = [
    ("private_key", ("private key",), r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
                                      r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)"),
    ("aws_access_key_id", ("akia", "asia", "abia", "acca", "a3t"),
     r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b"),
    ("anthropic_api_key", ("sk-ant-",), r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    ("openai_api_key", ("sk-",), r"\bsk-(?:proj-|svcacct-|admin-)?(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Z])"
                                 r"[A-Za-z0-9_-]{32,}"),
    ("github_token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
     r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"),
    ("gitlab_token", ("glpat-",), r"\bglpat-[A-Za-z0-9_-]{20,}"),
    ("slack_token", ("xox",), r"\bxox[abeprs]-(?=[A-Za-z0-9-]*\d)[A-Za-z0-9-]{10,}"),
    ("slack_webhook", ("hooks.slack.com",), r"https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}"),
    ("stripe_key", ("k_live_", "k_test_"), r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("google_api_key", ("aiza",), r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
    ("npm_token", ("npm_",), r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("huggingface_token", ("hf_",), r"\bhf_[A-Za-z0-9]{30,}\b"),
    ("jwt", ("eyj",), r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ("bearer_token", ("bearer", "authorization"), r"(?i:\b(?:bearer|authorization:\s*(?:basic|token)))\s+"
                                                  r"(?P<secret>(?=[A-Za-z0-9._~+/-]*\d)[A-Za-z0-9._~+/-]{16,}=*)"),
    ("url_password", ("://",),
     r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/?#@\[\]]+:(?!\[REDACTED)(?P<secret>[^\s/?#@]+)@"),
    ("secret_assignment", ("pass", "pwd", "secret", "token", "key", "credential"),
     r"(?i:" + _SECRET_WORD + r"[\"']?[ \t]*[=:][ \t]*)" + _NOT_A_VALUE
     + r"(?P<secret>\"[^\"\n]+\"|'[^'\n]+'|[^\s\"'`,;&|)}\]]+)"),
]
_SECRET_KEY = re.compile(r".*" + _SECRET_WORD + r"\Z", re.IGNORECASE | re.DOTALL)


def _replacer(kind: str) -> Callable[[re.Match[str]], str]:
    mark = MARK.format(kind)

    def replace(match: re.Match[str]) -> str:
        if "secret" not in match.re.groupindex:
            return mark
        start, end = match.span("secret")
        secret = match.group("secret")
        if len(secret) > 1 and secret[0] == secret[-1] and secret[0] in "\"'":
            start, end = start + 1, end - 1  # a quoted value keeps its quotes
        text, at = match.group(0), match.start()
        return text[: start - at] + mark + text[end - at:]

    return replace


_Rule = tuple[tuple[str, ...], "re.Pattern[str]", Callable[["re.Match[str]"], str]]
_RULES: tuple[_Rule, ...] = ()


def _rules() -> tuple[_Rule, ...]:
    """SECRETS compiled, on first use: a report that only prints stored text never pays for it.

    The rules are published whole, once all are compiled: `monitor run` redacts in two threads at
    once (its recorder writes the start while the main thread reads the command's last lines), and
    a list filled in place let the other thread scan with only its first rules, the secret
    assignments (the last ones) left unredacted. Two threads may both compile them: the same rules."""
    global _RULES
    rules = _RULES
    if not rules:
        rules = tuple((hints, re.compile(pattern), _replacer(kind)) for kind, hints, pattern in SECRETS)
        _RULES = rules
    return rules


#: How far past the part of a text that is kept redact_head() looks: a secret that starts in the
#: kept part is matched whole (the longest token shapes are well under this), then cut.
HEAD_MARGIN = 1024


def redact_head(text: str, limit: int) -> str:
    """The redacted start of text, at most limit + HEAD_MARGIN characters: for text that is cut to
    limit afterwards (cutting first could leave half a secret that no pattern knows)."""
    return redact(text[: limit + HEAD_MARGIN])


def redact(text: str) -> str:
    """text with every known secret shape replaced by [REDACTED:kind]."""
    lowered = text.lower()
    for hints, pattern, replace in _rules():
        if any(hint in lowered for hint in hints):
            text = pattern.sub(replace, text)
    return text


def redact_value(value: object) -> object:
    """A JSON-like value with its strings redacted, and the value of every key that names a secret
    ({"password": ...}, {"GITHUB_TOKEN": ...}) replaced whole. A value nested deeper than Python's
    stack allows becomes its JSON text, redacted."""
    try:
        return _redact_value(value)
    except RecursionError:
        return redact(json.dumps(value, ensure_ascii=False, default=str))


def _redact_value(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: MARK.format("secret_field") if _secret_key(k, v) else _redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(v) for v in value]
    return value


def _secret_key(key: object, value: object) -> bool:
    return (isinstance(key, str) and isinstance(value, (str, int, float)) and not isinstance(value, bool)
            and value != "" and bool(_SECRET_KEY.match(key)))


#: Files whose content is a secret as a whole: .env files, private keys and certificates' keys,
#: credential stores. A tool that reads or writes one is recorded without its input and output.
_SECRET_FILE = re.compile(r"(?:\.env(?:\..*)?|.*\.(?:pem|key|p12|pfx|jks|keystore|kdbx|tfvars)|id_(?:rsa|dsa|ecdsa|ed25519)"
                          r"|\.netrc|\.npmrc|\.pypirc|\.pgpass|\.git-credentials|credentials(?:\.json)?"
                          r"|secrets?\.(?:json|ya?ml|toml))\Z", re.IGNORECASE)


def secret_file(path: str | None) -> bool:
    """Whether the file at path (by its name) holds secrets: .env, .env.local, server.key, id_rsa..."""
    return bool(path) and bool(_SECRET_FILE.match(os.path.basename(path or "")))


# -- the capture mode ----------------------------------------------------------------------------

def metadata_only() -> bool:
    """Whether $MONITOR_CAPTURE asks to keep no tool inputs or outputs (any value other than
    'full' or empty does: a mistyped setting errs on the side of keeping less)."""
    return os.environ.get(CAPTURE_ENV_VAR, "").strip().lower() not in ("", FULL)


def size_of(value: object) -> int:
    """How many bytes value takes as text (JSON for anything but a string)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return len(text.encode("utf-8", "surrogatepass"))


# -- printing stored text ------------------------------------------------------------------------

#: C0 and C1 control characters, DEL, and the bidirectional overrides that reorder what a
#: terminal shows ("Trojan source"); a tab and a line break (\n, \r\n) are kept.
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]|\r(?!\n)")


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    if char == "\r":
        return "\\r"
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def escape_controls(text: str) -> str:
    """text safe to print on a terminal: every control character (ESC, BEL, a lone \\r, ...)
    shown as an escape (\\x1b, \\x07, \\r) instead of acting on the terminal."""
    return _UNSAFE.sub(_escape, text)
