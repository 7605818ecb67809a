//! Redaction of token-like strings, applied to everything warroom attaches anywhere.
//!
//! People paste credentials into incident channels under pressure. Before a transcript leaves
//! warroom (ticket attachment, read API), [`redact`] replaces what looks like a secret with
//! `[redacted]`:
//!
//! - Slack tokens (`xoxb-…`, `xoxp-…`, `xoxa-…`, `xoxo-…`, `xoxs-…`, `xoxr-…`, `xoxe-…`) and app tokens (`xapp-…`);
//! - AWS access key ids (`AKIA…`/`ASIA…` plus 16 upper-case letters or digits);
//! - the value of `password=`, `passwd=`, `pwd=`, `secret=`, `token=`, `api_key=`,
//!   `aws_secret_access_key=` (any case, with a prefix such as `DB_PASSWORD=` or
//!   `client_secret=`, and the JSON form `"password": "…"`), up to whitespace or a quote;
//! - `Authorization: Bearer …` / `Basic …` / `Token …` header values;
//! - GitHub tokens (`ghp_…`, `gho_…`, `ghu_…`, `ghs_…`, `ghr_…`, `github_pat_…`);
//! - private key blocks (`-----BEGIN … PRIVATE KEY-----` to the matching end line, or to the end
//!   of the text when the end line is missing);
//! - the password of a URL with credentials (`postgres://app:[redacted]@db:5432/app`).
//!
//! Names of keys stay visible (`password=[redacted]`), so a reader still sees *that* a secret
//! was shared and can ask for it to be rotated. Ordinary words stay as they are: "xoxo hugs",
//! "password reset ticket" and "the token expired" are not secrets.
//!
//! Redaction is a safety net, not a guarantee: a secret with no recognisable shape (a bare
//! password on its own line) cannot be told from prose.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// What every redacted secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Replaces token-like strings in `text` with `[redacted]`.
///
/// Borrows `text` unchanged when nothing matched, so the common case allocates nothing.
#[must_use]
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for rule in RULES.iter() {
        let replaced = match rule.pattern.replace_all(&out, rule.replacement) {
            Cow::Owned(changed) => Some(changed),
            Cow::Borrowed(_) => None,
        };
        if let Some(changed) = replaced {
            out = Cow::Owned(changed);
        }
    }
    out
}

/// One pattern and what its matches become (`${1}` keeps a key or scheme visible).
struct Rule {
    pattern: Regex,
    replacement: &'static str,
}

/// The rules, compiled once. Order matters: whole blocks and structured forms (keys, headers,
/// URLs) go first so that a token inside them is replaced together with its key's value.
static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    [
        // A private key block; an unterminated one (a truncated paste) runs to the end of the text.
        (
            r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*)",
            "[redacted]",
        ),
        // scheme://user:password@host — the password part only. No `/` in it, so `host:8080/x@y` stays.
        (r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:@/<>|'\x22]+:)[^\s@/<>|'\x22]+@", "${1}[redacted]@"),
        // Authorization header values.
        (r"(?i)\b(authorization\s*:\s*(?:bearer|basic|token)\s+)[^\s'\x22<>]+", "${1}[redacted]"),
        // key=value (and "key": "value") for the usual secret names, with an optional prefix.
        (
            r#"(?i)\b((?:[a-z0-9]+[_.-])*(?:aws_secret_access_key|password|passwd|pwd|secret|token|api[_-]?key)(?:\s*=\s*|"\s*:\s*)["']?)[^\s"'<>]+"#,
            "${1}[redacted]",
        ),
        // Slack bot/user/app-level tokens and app tokens.
        (r"\bxox[abposre]-[0-9A-Za-z-]{10,}", "[redacted]"),
        (r"\bxapp-[0-9A-Za-z-]{10,}", "[redacted]"),
        // AWS access key ids.
        (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "[redacted]"),
        // GitHub tokens.
        (r"\bgh[pousr]_[0-9A-Za-z]{20,}", "[redacted]"),
        (r"\bgithub_pat_[0-9A-Za-z_]{20,}", "[redacted]"),
    ]
    .into_iter()
    .map(|(pattern, replacement)| Rule {
        pattern: Regex::new(pattern).unwrap_or_else(|error| panic!("redaction pattern {pattern:?} is invalid: {error}")),
        replacement,
    })
    .collect()
});

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds test secrets from pieces at runtime, so no token-looking literal sits in the source.
    fn slack_token(kind: &str) -> String {
        format!("xox{kind}-{}-{}-{}", "1234567890", "0987654321", "AbCdEfGhIjKlMnOp")
    }

    fn aws_key_id() -> String {
        format!("{}{}", "AKIA", "IOSFODNN7EXAMPL0")
    }

    #[test]
    fn token_like_strings_are_replaced_and_their_keys_stay_visible() {
        let pem_body = "MIIEowIBAAKCAQEA1234\nabcdEFGH5678";
        let table: Vec<(String, String, &str)> = vec![
            (format!("bot token {}", slack_token("b")), "bot token [redacted]".to_owned(), "Slack bot token"),
            (format!("user {} done", slack_token("p")), "user [redacted] done".to_owned(), "Slack user token"),
            (slack_token("e"), "[redacted]".to_owned(), "Slack refresh token"),
            (
                format!("app token: {}-{}-{}", "xapp", "1-A0123456789", "1234567890-abcdef0123"),
                "app token: [redacted]".to_owned(),
                "Slack app-level token",
            ),
            (format!("key {} here", aws_key_id()), "key [redacted] here".to_owned(), "AWS access key id"),
            (format!("{}{}", "ASIA", "ABCDEFGHIJKLMNOP"), "[redacted]".to_owned(), "AWS temporary access key id"),
            (
                format!("aws_secret_access_key={}", "wJalrXUtnFEMI/K7MDENG/bPxRfiCY"),
                "aws_secret_access_key=[redacted]".to_owned(),
                "AWS secret key",
            ),
            (format!("password={} ok", "hunter2"), "password=[redacted] ok".to_owned(), "password"),
            (format!("PASSWD = {}", "hunter2"), "PASSWD = [redacted]".to_owned(), "upper-case key, spaces"),
            (format!("pwd='{}'", "hunter2"), "pwd='[redacted]'".to_owned(), "quoted value"),
            (format!("DB_PASSWORD={}", "s3cr3t!"), "DB_PASSWORD=[redacted]".to_owned(), "prefixed key"),
            (format!("client_secret={}", "abc"), "client_secret=[redacted]".to_owned(), "client secret"),
            (format!("?token={}&x=1", "abc"), "?token=[redacted]".to_owned(), "query string, rest of URL too"),
            (format!("api_key={}", "k-123"), "api_key=[redacted]".to_owned(), "API key"),
            (format!(r#"{{"password": "{}"}}"#, "hunter2"), r#"{"password": "[redacted]"}"#.to_owned(), "JSON"),
            (
                format!("curl -H 'Authorization: Bearer {}'", "eyJhbGciOi.abc.def"),
                "curl -H 'Authorization: Bearer [redacted]'".to_owned(),
                "bearer header",
            ),
            (
                format!("authorization: basic {}", "dXNlcjpwYXNz"),
                "authorization: basic [redacted]".to_owned(),
                "basic header, lower case",
            ),
            (format!("{}_{}", "ghp", "abcdefghijklmnopqrstuvwxyz0123"), "[redacted]".to_owned(), "GitHub token"),
            (
                format!("{}_{}", "github_pat", "11ABCDEFG0123456789_abcdefghijklmnop"),
                "[redacted]".to_owned(),
                "GitHub fine-grained token",
            ),
            (
                format!("key:\n-----BEGIN RSA {k}-----\n{pem_body}\n-----END RSA {k}-----\nthanks", k = "PRIVATE KEY"),
                "key:\n[redacted]\nthanks".to_owned(),
                "private key block",
            ),
            (
                format!("-----BEGIN {}-----\n{pem_body}", "PRIVATE KEY"),
                "[redacted]".to_owned(),
                "unterminated private key block",
            ),
            (
                format!("postgres://app:{}@db.internal:5432/app", "hunter2"),
                "postgres://app:[redacted]@db.internal:5432/app".to_owned(),
                "URL with credentials",
            ),
        ];
        for (input, expected, what) in table {
            assert_eq!(redact(&input), expected, "{what}");
        }
    }

    #[test]
    fn ordinary_words_and_urls_are_left_alone() {
        let table = [
            ("xoxo hugs", "a greeting"),
            ("password reset ticket", "talking about passwords"),
            ("the token expired, rotate it", "talking about tokens"),
            ("secret sauce", "a secret without a value"),
            ("pwd shows /var/log", "the pwd command"),
            ("AKIA is the prefix of long-term keys", "a key prefix alone"),
            ("Authorization: pending approval", "an authorization header without a scheme"),
            ("Bearer of bad news", "the word bearer"),
            ("https://grafana.example.com:3000/d/abc?orgId=1", "a URL with a port"),
            ("https://example.com/@team/board", "an @ in a path"),
            ("see ghp_ in the docs", "a GitHub prefix alone"),
            ("ssh into db-1, then run `sudo systemctl restart pg`", "a command"),
            ("", "nothing"),
        ];
        for (input, what) in table {
            let out = redact(input);
            assert!(matches!(out, Cow::Borrowed(_)), "{what}: {input:?} became {out:?}");
        }
    }

    #[test]
    fn redacting_twice_changes_nothing_more() {
        let input = format!("password={} and {}", "hunter2", slack_token("b"));
        let once = redact(&input).into_owned();
        assert_eq!(redact(&once), once);
    }
}
