"""Secrets are redacted before anything is stored; look-alikes stay; terminal controls are escaped.

The corpus is made of real-looking secrets in the shapes the providers issue them (none is live:
AWS's are its documentation examples, the rest are made up), each in the context it tends to
appear in: a command line, an error, a config file, an HTTP header.
"""

from __future__ import annotations

import pytest

from monitor.capture.scrub import SECRETS, escape_controls, redact, redact_value

# (text, the secret in it, the kind it is redacted as)
SECRET_CORPUS = [
    ("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY && aws s3 ls",
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "secret_assignment"),
    ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "aws_access_key_id"),
    ("botocore: credentials ASIAY34FZKBOKMUTVV7A expired", "ASIAY34FZKBOKMUTVV7A", "aws_access_key_id"),
    ("ANTHROPIC_API_KEY=sk-ant-api03-Xq7vB2mK9pL4nR8tW1yZ3cF6hJ0dS5aG-qE2uI7oP4kL9mN1bV3cX6zA8sD0fG-AbCdEfAA",
     "sk-ant-api03-Xq7vB2mK9pL4nR8tW1yZ3cF6hJ0dS5aG-qE2uI7oP4kL9mN1bV3cX6zA8sD0fG-AbCdEfAA", "anthropic_api_key"),
    ("openai.AuthenticationError: Incorrect API key provided: sk-proj-4fT9xQ2mB7vK1pL8nR3wY6zC0hJ5dS9aG2eU7",
     "sk-proj-4fT9xQ2mB7vK1pL8nR3wY6zC0hJ5dS9aG2eU7", "openai_api_key"),
    ("client = OpenAI(api_key='sk-9xQ2mB7vK1pL8nR3wY6zC0hJ5dS9aG2eU7iO4kL1')",
     "sk-9xQ2mB7vK1pL8nR3wY6zC0hJ5dS9aG2eU7iO4kL1", "openai_api_key"),
    ("git clone https://ghp_R8nK2vX7mQ4pL9wT1yZ6cB3hJ0dS5aF8gE2u@github.com/acme/app.git",
     "ghp_R8nK2vX7mQ4pL9wT1yZ6cB3hJ0dS5aF8gE2u", "github_token"),
    ("gh: token gho_16C7e42F292c6912E7710c838347Ae178B4a rejected", "gho_16C7e42F292c6912E7710c838347Ae178B4a",
     "github_token"),
    ("GH_PAT github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
     "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234", "github_token"),
    ("remote: glpat-Xy9kLm2NpQr4StUv6WxZ rejected", "glpat-Xy9kLm2NpQr4StUv6WxZ", "gitlab_token"),
    ("slack_sdk.errors: xoxb-1234567890123-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx invalid_auth",
     "xoxb-1234567890123-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack_token"),
    ("curl -X POST https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX -d @msg.json",
     "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "slack_webhook"),
    ("stripe.error.AuthenticationError: sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
     "stripe_key"),
    ("maps?key=AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY&q=x", "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
     "google_api_key"),
    ("//registry.npmjs.org/:_authToken=npm_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5", "npm_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5",
     "npm_token"),
    ("HfHubHTTPError with hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
     "huggingface_token"),
    ("session cookie eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "jwt"),
    ("curl -H 'Authorization: Bearer 7f3a9c2e1b4d8f6a0e5c3b2a1d9f8e7c' https://api.example.com",
     "7f3a9c2e1b4d8f6a0e5c3b2a1d9f8e7c", "bearer_token"),
    ("Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1lMTIz", "YWxhZGRpbjpvcGVuc2VzYW1lMTIz", "bearer_token"),
    ("psycopg.OperationalError: connection to postgres://admin:Tr0ub4dor&3@db.internal:5432/app failed",
     "Tr0ub4dor&3", "url_password"),
    ("DB_PASSWORD=correct-horse-battery-staple", "correct-horse-battery-staple", "secret_assignment"),
    ('{"api_key": "a8f5f167f44f4964e6c998dee827110c", "region": "eu"}', "a8f5f167f44f4964e6c998dee827110c",
     "secret_assignment"),
    ("spring.datasource.password: s3cr3t-Pa55", "s3cr3t-Pa55", "secret_assignment"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\nZ1BjP5CE8Wm6ewmjZlc=\n"
     "-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi", "private_key"),
    ("key: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",  # cut short
     "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ", "private_key"),
]

#: Text that looks like a secret to a careless rule and must be stored as it is.
LOOK_ALIKES = [
    "HEAD is now at 82662a7e4f0d8a3c9b1e2f7a6d5c4b3a2e1f0d9c uuid holds only an adopted row's id",
    "request 3f2504e0-4f89-11d3-9a0c-0305e82c3301 failed after 3 retries",
    "echo SGVsbG8sIHdvcmxkISBUaGlzIGlzIGp1c3QgdGV4dC4= | base64 -d",
    "the token expired, so refresh the token and retry; a secret is only as safe as its password",
    "usage: input_tokens: 1200, output_tokens: 300, max_tokens=4096, token_count = 12",
    "PASSWORD_FILE=/run/secrets/db TOKEN_URL=https://auth.example.com/token",
    "password = os.environ['DB_PASSWORD']; token = get_token(); TOKEN=$GITHUB_TOKEN; secret=${SECRET}",
    "Bearer authentication is described in RFC 6750",
    "pip install scikit-learn && python sk-learn-tutorial-notebook-v2.py --risk-assessment-framework",
    "xoxo-gossip-girl-season-one",
    "see https://github.com/acme/app/blob/main/README.md and ssh://git@github.com:acme/app.git",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    "SELECT count(*) FROM events WHERE message LIKE '%token%'",
    "claude-sonnet-4-5: 2 calls, 12,000 in, 800 out, 0 cache read, 0 cache write tokens, $0.0480",
]


@pytest.mark.parametrize("text, secret, kind", SECRET_CORPUS, ids=[f"{k}-{i}" for i, (_, _, k) in enumerate(SECRET_CORPUS)])
def test_a_secret_is_redacted_as_its_kind(text, secret, kind):
    redacted = redact(text)
    assert secret not in redacted and f"[REDACTED:{kind}]" in redacted, redacted
    assert redact(redacted) == redacted  # redacting again changes nothing


def test_what_surrounds_a_secret_stays():
    assert redact("export DB_PASSWORD=hunter22 && make deploy") == \
        "export DB_PASSWORD=[REDACTED:secret_assignment] && make deploy"
    assert redact("postgres://admin:hunter22@db:5432/app") == "postgres://admin:[REDACTED:url_password]@db:5432/app"
    assert redact('{"password": "hunter22"}') == '{"password": "[REDACTED:secret_assignment]"}'


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_a_look_alike_stays(text):
    assert redact(text) == text


def test_every_kind_in_the_table_is_in_the_corpus():
    assert {kind for kind, _, _ in SECRETS} - {kind for _, _, kind in SECRET_CORPUS} <= {"secret_field"}


def test_structured_values_are_redacted_by_key_and_by_shape():
    payload = {"tool_input": {"command": "curl -u admin:hunter22 https://x", "env": {"GITHUB_TOKEN": "abc123",
                                                                                     "DEBUG": "1"}},
               "password": 1234, "input_tokens": 1200, "note": ["AKIAIOSFODNN7EXAMPLE"], "ok": True}
    assert redact_value(payload) == {
        "tool_input": {"command": "curl -u admin:hunter22 https://x",
                       "env": {"GITHUB_TOKEN": "[REDACTED:secret_field]", "DEBUG": "1"}},
        "password": "[REDACTED:secret_field]", "input_tokens": 1200, "note": ["[REDACTED:aws_access_key_id]"],
        "ok": True}


@pytest.mark.parametrize("text, shown", [
    ("\x1b]0;pwned\x07title", "\\x1b]0;pwned\\x07title"),
    ("before\x1b[2Jafter", "before\\x1b[2Jafter"),
    ("progress 50%\rDONE", "progress 50%\\rDONE"),
    ("line one\r\nline two\n", "line one\r\nline two\n"),
    ("tab\tkept, C1 \x9b and bidi \u202e escaped", "tab\tkept, C1 \\x9b and bidi \\u202e escaped"),
])
def test_terminal_controls_are_escaped(text, shown):
    assert escape_controls(text) == shown


def test_two_threads_redacting_first_both_use_every_rule(monkeypatch):
    """`monitor run` redacts in two threads at once (its recorder writes the start while the main
    thread reads the command's last lines): a thread must never scan with the rules half compiled.
    A tiny switch interval makes the threads take turns inside the compiling; each round starts
    with none compiled (nor cached by re). Before the fix, about half the rounds kept the AWS secret."""
    import re
    import sys
    import threading

    from monitor.capture import scrub

    text = SECRET_CORPUS[0][0]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    kept = []
    try:
        for _ in range(50):
            monkeypatch.setattr(scrub, "_RULES", type(scrub._RULES)())
            re.purge()
            results: list[str] = []
            threads = [threading.Thread(target=lambda: results.append(redact(text))) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            kept += [r for r in results if "wJalr" in r]
    finally:
        sys.setswitchinterval(interval)
    assert kept == []
