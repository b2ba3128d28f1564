//! Built-in scrubbing of credentials: values of fields named like secrets,
//! and API keys, access keys, bearer tokens and JWTs found in any string
//! value, are replaced by `[REDACTED]` before a span leaves the process.

use std::collections::HashMap;

use opentelemetry::{KeyValue, StringValue, Value};

type FxMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<crate::intern::Fx>>;

/// What to do with an attribute, as decided so far: by the address and
/// length of its key's text for static keys (a small direct-mapped table in
/// front of a map), by the text itself for keys that may be owned.
#[derive(Clone, Debug)]
pub(crate) struct KeyCache {
    recent: [(usize, usize, Treatment); 64],
    all: FxMap<(usize, usize), Treatment>,
    by_text: FxMap<Box<str>, Treatment>,
}

/// Entries each map of a [`KeyCache`] keeps; later keys are decided each time.
const KEY_CACHE_ENTRIES: usize = 4096;
/// Longer keys are decided each time, not kept.
const MAX_CACHED_KEY: usize = 128;

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            // No key's text starts at address 0: every slot starts empty.
            recent: [(0, 0, Treatment::Search); 64],
            all: HashMap::default(),
            by_text: HashMap::default(),
        }
    }
}

/// How the keys of the attributes being scrubbed are looked up.
pub(crate) enum Keys<'a> {
    /// Static strings: decided once per address.
    Static(&'a mut KeyCache),
    /// Possibly owned strings (an owned key's address can be reused by
    /// another key): decided once per text.
    Any(&'a mut KeyCache),
}

impl KeyCache {
    #[inline]
    fn get(&mut self, key: &str, decide: impl FnOnce(&str) -> Treatment) -> Treatment {
        let id = (key.as_ptr() as usize, key.len());
        let slot = ((id.0 >> 3) ^ id.1) & 63;
        let (p, l, t) = self.recent[slot];
        if (p, l) == id {
            return t;
        }
        let t = match self.all.get(&id) {
            Some(t) => *t,
            None => {
                let t = decide(key);
                if self.all.len() < KEY_CACHE_ENTRIES {
                    self.all.insert(id, t);
                }
                t
            }
        };
        self.recent[slot] = (id.0, id.1, t);
        t
    }

    #[inline]
    fn get_by_text(&mut self, key: &str, decide: impl FnOnce(&str) -> Treatment) -> Treatment {
        if let Some(t) = self.by_text.get(key) {
            return *t;
        }
        let t = decide(key);
        if key.len() <= MAX_CACHED_KEY && self.by_text.len() < KEY_CACHE_ENTRIES {
            self.by_text.insert(key.into(), t);
        }
        t
    }
}

/// How an attribute's value is scrubbed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Treatment {
    /// The key names a secret: the value is withheld.
    Withhold,
    /// Any string value is searched for credentials.
    Search,
    /// Code location and other values the crate writes itself.
    Skip,
}

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
    /// Parts of attribute names whose values are withheld.
    secret_keys: SecretNames,
    /// `secret_keys` is the built-in list.
    builtin: bool,
}

impl Default for Scrubber {
    fn default() -> Self {
        Scrubber::new(true, std::iter::empty())
    }
}

/// Parts of attribute names, indexed by first byte so that a key is
/// searched in one pass: each position of the key is looked up once, and
/// only the parts starting with its byte are compared.
#[derive(Clone)]
struct SecretNames {
    /// Lowercase, non-empty.
    parts: Vec<Box<[u8]>>,
    /// For each byte (either case), the parts among the first 64 that start with it.
    by_first: Box<[u64; 256]>,
}

impl std::fmt::Debug for SecretNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.parts.iter().map(|p| String::from_utf8_lossy(p)))
            .finish()
    }
}

impl SecretNames {
    fn new<'a>(parts: impl IntoIterator<Item = &'a str>) -> SecretNames {
        let mut list: Vec<Box<[u8]>> = Vec::new();
        for p in parts {
            let p = p.to_ascii_lowercase().into_bytes().into_boxed_slice();
            if !p.is_empty() && !list.contains(&p) {
                list.push(p);
            }
        }
        let mut by_first = Box::new([0u64; 256]);
        for (j, p) in list.iter().enumerate().take(64) {
            by_first[usize::from(p[0])] |= 1 << j;
            by_first[usize::from(p[0].to_ascii_uppercase())] |= 1 << j;
        }
        SecretNames {
            parts: list,
            by_first,
        }
    }

    /// Whether `key` contains one of the parts, ignoring ASCII case. Token
    /// counts (`*_tokens`, `*.tokens*`) are numbers, not credentials.
    fn matches(&self, key: &str) -> bool {
        let bytes = key.as_bytes();
        let found = bytes.iter().enumerate().any(|(i, &b)| {
            let mut m = self.by_first[usize::from(b)];
            while m != 0 {
                let p = &self.parts[m.trailing_zeros() as usize];
                m &= m - 1;
                if bytes.len() - i >= p.len() && bytes[i..i + p.len()].eq_ignore_ascii_case(p) {
                    return true;
                }
            }
            false
        }) || self.parts.iter().skip(64).any(|p| {
            bytes.len() >= p.len() && bytes.windows(p.len()).any(|w| w.eq_ignore_ascii_case(p))
        });
        found && !(key.ends_with("_tokens") || key.contains(".tokens"))
    }
}

fn builtin_names() -> &'static SecretNames {
    static NAMES: std::sync::OnceLock<SecretNames> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| SecretNames::new(DEFAULT_SECRET_KEYS.iter().copied()))
}

/// Whether `key` names a secret under the built-in list.
pub(crate) fn builtin_secret_key(key: &str) -> bool {
    builtin_names().matches(key)
}

impl Scrubber {
    /// The built-in secret names plus `extra` ones.
    pub(crate) fn new(enabled: bool, extra: impl IntoIterator<Item = String>) -> Scrubber {
        let extra: Vec<String> = extra.into_iter().collect();
        let builtin = extra.iter().all(|k| {
            let k = k.to_ascii_lowercase();
            k.is_empty() || DEFAULT_SECRET_KEYS.contains(&k.as_str())
        });
        let secret_keys = if builtin {
            builtin_names().clone()
        } else {
            SecretNames::new(
                DEFAULT_SECRET_KEYS
                    .iter()
                    .copied()
                    .chain(extra.iter().map(String::as_str)),
            )
        };
        Scrubber {
            enabled,
            secret_keys,
            builtin,
        }
    }

    pub(crate) fn key_is_secret(&self, key: &str) -> bool {
        self.secret_keys.matches(key)
    }

    /// Whether the secret-key list is the built-in one: then no convention
    /// key names a secret (checked by a test over `semconv.rs`), and a
    /// callsite's field names were judged once, in its plan.
    pub(crate) fn builtin_keys(&self) -> bool {
        self.builtin
    }

    /// How an attribute's value is scrubbed, decided from its key.
    fn treatment(&self, key: &str) -> Treatment {
        if self.key_is_secret(key) {
            Treatment::Withhold
        } else if key.starts_with(crate::semconv::CODE_PREFIX) {
            Treatment::Skip
        } else {
            Treatment::Search
        }
    }

    /// Scrubs attribute values in place, each key decided once per address
    /// or text (see [`Keys`]). With `search` false only secret-named keys are
    /// handled: the values were scrubbed at their source (see
    /// `Record::decode`).
    pub(crate) fn scrub_attrs(&self, attrs: &mut [KeyValue], mut keys: Keys<'_>, search: bool) {
        if !self.enabled {
            return;
        }
        for kv in attrs {
            let key = kv.key.as_str();
            let treatment = match &mut keys {
                Keys::Static(cache) => cache.get(key, |k| self.treatment(k)),
                Keys::Any(cache) => cache.get_by_text(key, |k| self.treatment(k)),
            };
            if treatment == Treatment::Skip || (treatment == Treatment::Search && !search) {
                continue;
            }
            let secret = treatment == Treatment::Withhold;
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

fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Length of the run of `pred` bytes at the start of `s`.
fn run(s: &[u8], pred: impl Fn(u8) -> bool) -> usize {
    s.iter().take_while(|b| pred(**b)).count()
}

/// The length of a credential starting at `s[0]`, if one does.
fn credential_at(s: &[u8]) -> Option<usize> {
    let starts = |p: &[u8]| s.starts_with(p);
    // One test of the first byte picks the kind to check.
    match *s.first()? {
        // OpenAI and Anthropic keys: sk-…, sk-proj-…, sk-ant-…
        b's' if starts(b"sk-") => {
            let n = run(&s[3..], token_char);
            (n >= 20).then_some(3 + n)
        }
        // AWS access key ids.
        b'A' if starts(b"AKIA") || starts(b"ASIA") => {
            let n = run(&s[4..], |b| b.is_ascii_uppercase() || b.is_ascii_digit());
            (n >= 16).then_some(4 + 16)
        }
        // Google API keys.
        b'A' if starts(b"AIza") => {
            let n = run(&s[4..], token_char);
            (n >= 30).then_some(4 + n)
        }
        // GitHub tokens.
        b'g' if starts(b"ghp_") || starts(b"gho_") || starts(b"ghs_") || starts(b"github_pat_") => {
            let p = if starts(b"github_pat_") { 11 } else { 4 };
            let n = run(&s[p..], token_char);
            (n >= 20).then_some(p + n)
        }
        // Slack tokens.
        b'x' if starts(b"xoxb-") || starts(b"xoxp-") || starts(b"xoxa-") || starts(b"xoxs-") => {
            let n = run(&s[5..], token_char);
            (n >= 10).then_some(5 + n)
        }
        // Bearer tokens: the scheme is kept, the token withheld.
        b'B' if starts(b"Bearer ") => {
            let n = run(&s[7..], |b| {
                token_char(b) || matches!(b, b'.' | b'~' | b'+' | b'/' | b'=')
            });
            (n >= 8).then_some(7 + n)
        }
        // JWTs: three base64url segments, the first a JSON header.
        b'e' if starts(b"eyJ") => {
            let a = run(s, token_char);
            if a < 10 || s.get(a) != Some(&b'.') {
                return None;
            }
            let b = run(&s[a + 1..], token_char);
            if b < 10 || s.get(a + 1 + b) != Some(&b'.') {
                return None;
            }
            let c = run(&s[a + 2 + b..], token_char);
            (c >= 10).then_some(a + 2 + b + c)
        }
        _ => None,
    }
}

// Bytes that reveal a credential nearby: `-` (sk-, xoxb-), `J` (eyJ),
// `A` (AKIA, ASIA, AIza), `_` (ghp_, github_pat_), `B` (Bearer).

/// Where a credential revealed by the trigger at `i` would start.
fn candidate_start(bytes: &[u8], i: usize) -> Option<usize> {
    let at = |p: usize, prefix: &[u8]| bytes[p..].starts_with(prefix);
    let start = match bytes[i] {
        b'-' if i >= 2 && at(i - 2, b"sk") => i - 2,
        b'-' if i >= 4 && at(i - 4, b"xox") => i - 4,
        b'J' if i >= 2 && at(i - 2, b"ey") => i - 2,
        b'_' if i >= 3 && at(i - 3, b"gh") => i - 3,
        b'_' if i >= 10 && at(i - 10, b"github_pat") => i - 10,
        // Capitals are common in text: only where a key or a bearer token
        // could begin (AKIA, ASIA, AIza; Bearer).
        b'A' if matches!(bytes.get(i + 1), Some(b'K' | b'S' | b'I')) => i,
        b'B' if at(i, b"Bearer ") => i,
        _ => return None,
    };
    // A credential starts a word: not in the middle of one.
    (start == 0 || !token_char(bytes[start - 1])).then_some(start)
}

/// Appends the text before the credential at `start`, then its replacement.
fn push_redacted(out: &mut String, s: &str, copied: usize, start: usize) {
    // Credentials are ASCII, so both ends are character boundaries.
    out.push_str(&s[copied..start]);
    if s.as_bytes()[start..].starts_with(b"Bearer ") {
        out.push_str("Bearer ");
    }
    out.push_str(REDACTED);
}

/// The bytes that can reveal a credential nearby (see [`candidate_start`]).
pub(crate) struct Trigger;

impl crate::scan::ByteSet for Trigger {
    const EQUAL: &'static [u8] = b"-J_AB";
    const BELOW: u8 = 0;
}

/// The index of the first trigger byte at or after `from`, or `bytes.len()`:
/// all five triggers in one pass.
#[inline]
fn next_trigger(bytes: &[u8], from: usize) -> usize {
    crate::scan::next::<Trigger>(bytes, from)
}

/// The shortest credential recognized: a bearer token, 7 + 8 bytes.
const SHORTEST: usize = 15;

/// `s` with every credential replaced, or `None` when it holds none.
#[inline]
pub(crate) fn scrub_str(s: &str) -> Option<String> {
    // Short values (names, models, ids) are decided here, without a call.
    if s.len() < SHORTEST {
        return None;
    }
    scrub_text(s)
}

/// [`scrub_str`] for text long enough to hold a credential.
fn scrub_text(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    // Trigger bytes are found with a SIMD search, in order, with no allocation.
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut at = next_trigger(bytes, 0);
    while at < bytes.len() {
        if let Some(start) = candidate_start(bytes, at).filter(|&start| start >= copied) {
            if let Some(len) = credential_at(&bytes[start..]) {
                let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
                push_redacted(o, s, copied, start);
                copied = start + len;
            }
        }
        at = next_trigger(bytes, at + 1);
    }
    out.map(|mut o| {
        o.push_str(&s[copied..]);
        o
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scan::ByteSet;

    /// `scrub_str` written plainly: every position is tried.
    pub(crate) fn scrub_str_reference(s: &str) -> Option<String> {
        let bytes = s.as_bytes();
        if bytes.len() < SHORTEST {
            return None;
        }
        let mut out: Option<String> = None;
        let mut copied = 0;
        for at in 0..bytes.len() {
            if !Trigger::has(bytes[at]) {
                continue;
            }
            let Some(start) = candidate_start(bytes, at).filter(|&st| st >= copied) else {
                continue;
            };
            if let Some(len) = credential_at(&bytes[start..]) {
                push_redacted(out.get_or_insert_with(String::new), s, copied, start);
                copied = start + len;
            }
        }
        out.map(|mut o| {
            o.push_str(&s[copied..]);
            o
        })
    }

    /// Every string constant of `semconv.rs`: the keys the crate writes.
    fn semconv_literals() -> Vec<&'static str> {
        let src = include_str!("semconv.rs");
        let mut out = Vec::new();
        for line in src.lines().filter(|l| l.contains("pub const")) {
            if let (Some(a), Some(b)) = (line.find('"'), line.rfind('"')) {
                if b > a {
                    out.push(&line[a + 1..b]);
                }
            }
        }
        out
    }

    #[test]
    fn no_convention_key_names_a_secret() {
        // The export path skips the key check of decoded attributes when
        // the built-in list is in use: true only while this holds.
        let keys = semconv_literals();
        assert!(
            keys.len() > 100,
            "semconv.rs constants not found: {}",
            keys.len()
        );
        assert!(keys.contains(&"gen_ai.usage.input_tokens"));
        for key in keys {
            assert!(!builtin_secret_key(key), "{key} would be withheld");
        }
        // And the check itself finds secret names.
        assert!(builtin_secret_key("db.password"));
        assert!(builtin_secret_key("OPENAI_API_KEY"));
        assert!(!builtin_secret_key("gen_ai.request.max_tokens"));
    }

    #[test]
    fn finds_credentials() {
        let cases = [
            ("key sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345 here", "key [REDACTED] here"),
            ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "[REDACTED]"),
            ("aws AKIAIOSFODNN7EXAMPLE id", "aws [REDACTED] id"),
            ("Authorization: Bearer abc.def-ghi_jkl", "Authorization: Bearer [REDACTED]"),
            ("slack xoxb-1234567890-abcdef end", "slack [REDACTED] end"),
            ("g AIzaSyA1234567890abcdefghijklmnopqrstu x", "g [REDACTED] x"),
            ("two sk-aaaaaaaaaaaaaaaaaaaaaaaa and sk-bbbbbbbbbbbbbbbbbbbbbbbb", "two [REDACTED] and [REDACTED]"),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
                "jwt [REDACTED] end",
            ),
            ("gh ghp_abcdefghijklmnopqrstuvwxyz0123 x", "gh [REDACTED] x"),
            ("o gho_abcdefghijklmnopqrstuvwxyz0123", "o [REDACTED]"),
            ("s ghs_abcdefghijklmnopqrstuvwxyz0123.", "s [REDACTED]."),
            ("pat github_pat_11ABCDEFG0abcdefghijklmnopqrstuvwxyz x", "pat [REDACTED] x"),
            ("sts ASIAIOSFODNN7EXAMPLE", "sts [REDACTED]"),
            ("(xoxp-1234567890-abc)", "([REDACTED])"),
            ("xoxa-1234567890 xoxs-0987654321", "[REDACTED] [REDACTED]"),
            ("\"Bearer eyJhbGciOi.abc\"", "\"Bearer [REDACTED]\""),
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
