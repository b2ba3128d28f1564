//! Built-in scrubbing of credentials: values of fields named like secrets,
//! and API keys, access keys, bearer tokens and JWTs found in any string
//! value, are replaced by `[REDACTED]` before a span leaves the process.

use opentelemetry::{KeyValue, StringValue, Value};

/// What replaces a credential.
pub const REDACTED: &str = "[REDACTED]";

/// Parts of attribute names whose values are always withheld (case-insensitive).
pub const DEFAULT_SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "api_key",
    "apikey",
    "api-key",
    "token",
    "authorization",
    "credential",
    "private_key",
];

/// Credential scrubbing settings. On by default.
#[derive(Clone, Debug)]
pub(crate) struct Scrubber {
    pub(crate) enabled: bool,
    /// Lowercase parts of attribute names whose values are withheld.
    pub(crate) secret_keys: Vec<String>,
}

impl Default for Scrubber {
    fn default() -> Self {
        Scrubber {
            enabled: true,
            secret_keys: DEFAULT_SECRET_KEYS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Scrubber {
    fn key_is_secret(&self, key: &str) -> bool {
        // Token counts are numbers, not credentials.
        if key.ends_with("_tokens") || key.contains(".tokens") {
            return false;
        }
        let key = key.to_ascii_lowercase();
        self.secret_keys.iter().any(|k| key.contains(k.as_str()))
    }

    /// Scrubs attribute values in place.
    pub(crate) fn scrub_attrs(&self, attrs: &mut [KeyValue]) {
        if !self.enabled {
            return;
        }
        for kv in attrs {
            let secret = self.key_is_secret(kv.key.as_str());
            match &mut kv.value {
                Value::String(s) if secret => *s = StringValue::from(REDACTED),
                Value::String(s) => {
                    if let Some(clean) = scrub_str(s.as_str()) {
                        *s = StringValue::from(clean);
                    }
                }
                Value::I64(_) | Value::F64(_) | Value::Bool(_) | Value::Array(_) if secret => {
                    kv.value = Value::String(StringValue::from(REDACTED));
                }
                _ => {}
            }
        }
    }
}

/// Bytes that can start a credential: `s`(k-), `A`(KIA/SIA/Iza), `B`/`b`(earer),
/// `e`(yJ), `g`(hp_/ithub_pat_), `x`(ox?-).
fn may_start(b: u8) -> bool {
    matches!(b, b's' | b'A' | b'B' | b'b' | b'e' | b'g' | b'x')
}

fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Length of the run of `pred` bytes at the start of `s`.
fn run(s: &[u8], pred: impl Fn(u8) -> bool) -> usize {
    s.iter().take_while(|b| pred(**b)).count()
}

/// The length of a credential starting at `s[0]`, if one does.
fn credential_at(s: &[u8]) -> Option<usize> {
    let starts = |p: &[u8]| s.len() >= p.len() && &s[..p.len()] == p;
    // OpenAI and Anthropic keys: sk-…, sk-proj-…, sk-ant-…
    if starts(b"sk-") {
        let n = run(&s[3..], token_char);
        return (n >= 20).then_some(3 + n);
    }
    // AWS access key ids.
    if starts(b"AKIA") || starts(b"ASIA") {
        let n = run(&s[4..], |b| b.is_ascii_uppercase() || b.is_ascii_digit());
        return (n >= 16).then_some(4 + 16);
    }
    // Google API keys.
    if starts(b"AIza") {
        let n = run(&s[4..], token_char);
        return (n >= 30).then_some(4 + n);
    }
    // GitHub tokens.
    if starts(b"ghp_") || starts(b"gho_") || starts(b"ghs_") || starts(b"github_pat_") {
        let p = if starts(b"github_pat_") { 11 } else { 4 };
        let n = run(&s[p..], token_char);
        return (n >= 20).then_some(p + n);
    }
    // Slack tokens.
    if starts(b"xoxb-") || starts(b"xoxp-") || starts(b"xoxa-") || starts(b"xoxs-") {
        let n = run(&s[5..], token_char);
        return (n >= 10).then_some(5 + n);
    }
    // Bearer tokens: the scheme is kept, the token withheld.
    if starts(b"Bearer ") || starts(b"bearer ") {
        let n = run(&s[7..], |b| {
            token_char(b) || matches!(b, b'.' | b'~' | b'+' | b'/' | b'=')
        });
        return (n >= 8).then_some(7 + n);
    }
    // JWTs: three base64url segments, the first a JSON header.
    if starts(b"eyJ") {
        let a = run(s, token_char);
        if a >= 10 && s.get(a) == Some(&b'.') {
            let b = run(&s[a + 1..], token_char);
            if b >= 10 && s.get(a + 1 + b) == Some(&b'.') {
                let c = run(&s[a + 2 + b..], token_char);
                if c >= 10 {
                    return Some(a + 2 + b + c);
                }
            }
        }
    }
    None
}

/// `s` with every credential replaced, or `None` when it holds none.
pub(crate) fn scrub_str(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    if bytes.len() < 12 {
        return None;
    }
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        // A credential starts a word: not in the middle of one.
        if may_start(b) && (i == 0 || !token_char(bytes[i - 1])) {
            if let Some(len) = credential_at(&bytes[i..]) {
                let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
                // Credentials are ASCII, so both ends are character boundaries.
                o.push_str(&s[copied..i]);
                if bytes[i..].starts_with(b"Bearer ") || bytes[i..].starts_with(b"bearer ") {
                    o.push_str(&s[i..i + 7]);
                }
                o.push_str(REDACTED);
                i += len;
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    out.map(|mut o| {
        o.push_str(&s[copied..]);
        o
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_credentials() {
        let cases = [
            ("key sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345 here", "key [REDACTED] here"),
            ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "[REDACTED]"),
            ("aws AKIAIOSFODNN7EXAMPLE id", "aws [REDACTED] id"),
            ("Authorization: Bearer abc.def-ghi_jkl", "Authorization: Bearer [REDACTED]"),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
                "jwt [REDACTED] end",
            ),
            ("gh ghp_abcdefghijklmnopqrstuvwxyz0123 x", "gh [REDACTED] x"),
        ];
        for (input, expected) in cases {
            assert_eq!(scrub_str(input).as_deref(), Some(expected), "{input}");
        }
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        for text in [
            "ask-me anything about basketball",
            "task-force meeting",
            "the AKIA prefix alone",
            "Bearer of bad news",
            "short",
            "日本語のテキスト sk-short",
            "eyJ not a token",
        ] {
            assert_eq!(scrub_str(text), None, "{text}");
        }
    }

    #[test]
    fn secret_keys() {
        let s = Scrubber::default();
        assert!(s.key_is_secret("db.password"));
        assert!(s.key_is_secret("OPENAI_API_KEY"));
        assert!(s.key_is_secret("http.request.header.authorization"));
        assert!(!s.key_is_secret("gen_ai.usage.input_tokens"));
        assert!(!s.key_is_secret("llm.model"));
    }
}
