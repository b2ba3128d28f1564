//! Property tests over message conversion, truncation, redaction and
//! scrubbing: arbitrary strings, JSON and limits never panic, and the output
//! is valid JSON within the limit, of the schema's shape.

use proptest::prelude::*;
use serde_json::Value;

use crate::content::{fit, json_len, ContentKind, ContentPolicy};
use crate::genai::messages;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        prop::sample::select(vec![
            "user",
            "assistant",
            "tool",
            "system",
            "text",
            "tool_call",
            "parts",
            "content",
            "role"
        ])
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "role",
                    "content",
                    "parts",
                    "type",
                    "text",
                    "tool_calls",
                    "tool_call_id",
                    "function",
                    "name",
                    "arguments",
                    "id",
                    "choices",
                    "message",
                    "finish_reason",
                    "image_url",
                    "url",
                    "x",
                ])
                .prop_map(String::from),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every message is an object with a string role and an array of typed parts.
fn is_messages(v: &Value, output: bool) -> bool {
    let Some(items) = v.as_array() else {
        return false;
    };
    items.iter().all(|m| {
        m.get("role").is_some_and(Value::is_string)
            && m.get("parts")
                .and_then(Value::as_array)
                .is_some_and(|parts| {
                    parts
                        .iter()
                        .all(|p| p.get("type").is_some_and(Value::is_string))
                })
            && (!output || m.get("finish_reason").is_some_and(Value::is_string))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_string_becomes_valid_bounded_messages(text in ".{0,3000}", max in 128usize..4096) {
        let policy = ContentPolicy { max_bytes: max, ..ContentPolicy::default() };
        for kind in [ContentKind::InputMessages, ContentKind::OutputMessages] {
            let out = policy.render_text_parts(kind, &text, "stop");
            prop_assert!(out.len() <= max, "{} > {}", out.len(), max);
            let v: Value = serde_json::from_str(&out).expect("valid JSON");
            prop_assert!(is_messages(&v, kind == ContentKind::OutputMessages), "{}", out);
        }
    }

    #[test]
    fn escaping_round_trips(text in "(?s)[\\x00-\\x7f]{0,300}|.{0,300}") {
        let mut out = String::new();
        crate::content::escape_json_str(&mut out, &text);
        prop_assert_eq!(serde_json::from_str::<String>(&out).expect("valid JSON"), text);
    }

    #[test]
    fn the_vector_scan_finds_what_the_portable_one_finds(
        bytes in proptest::collection::vec(proptest::prop_oneof![
            4 => 0x20u8..0x7f,
            1 => proptest::prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20, 0x7fu8..=0xff],
        ], 0..200),
        from in 0usize..200,
    ) {
        let from = from.min(bytes.len());
        let fast = crate::content::next_special(&bytes, from);
        prop_assert_eq!(fast, crate::scan::next_portable::<crate::content::JsonSpecial>(&bytes, from));
        let expected = (from..bytes.len())
            .find(|&i| bytes[i] < 0x20 || bytes[i] == b'"' || bytes[i] == b'\\')
            .unwrap_or(bytes.len());
        prop_assert_eq!(fast, expected);
    }

    /// Long runs without a member, as in real text: the AVX2 blocks (64
    /// bytes per turn, then 32), the 16-byte ones and the portable loop each find what a plain search
    /// finds, around every block edge and the final partial block.
    #[test]
    fn every_scan_finds_sparse_members_in_long_text(
        bytes in proptest::collection::vec(proptest::prop_oneof![
            60 => 0x20u8..0x7f,
            1 => proptest::prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20, Just(b'-'), Just(b'J'), Just(b'_'), Just(b'A'), Just(b'B')],
            2 => 0x80u8..=0xff,
        ], 0..400),
        from in 0usize..400,
    ) {
        fn check<S: crate::scan::ByteSet>(bytes: &[u8], from: usize) -> Result<(), TestCaseError> {
            let expected = (from..bytes.len()).find(|&i| S::has(bytes[i])).unwrap_or(bytes.len());
            prop_assert_eq!(crate::scan::next::<S>(bytes, from), expected);
            prop_assert_eq!(crate::scan::next_portable::<S>(bytes, from), expected);
            #[cfg(target_arch = "x86_64")]
            {
                prop_assert_eq!(crate::scan::next_sse2::<S>(bytes, from), expected);
                if bytes.len() >= from + 32 && std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the processor has AVX2.
                    prop_assert_eq!(unsafe { crate::scan::next_avx2::<S>(bytes, from) }, expected);
                }
            }
            Ok(())
        }
        let from = from.min(bytes.len());
        check::<crate::content::JsonSpecial>(&bytes, from)?;
        check::<crate::scrub::Trigger>(&bytes, from)?;
    }

    /// The crate's JSON writer writes exactly what `serde_json` writes.
    #[test]
    fn the_json_writer_matches_serde_json(
        v in json_value(),
        text in "(?s)[\\x00-\\x7f]{0,150}|.{0,150}",
        n in any::<u64>(),
    ) {
        for value in [v.clone(), Value::String(text.clone()), Value::from(n), serde_json::json!({text.clone(): [v, text, n]})] {
            prop_assert_eq!(crate::content::to_json(&value), serde_json::to_string(&value).unwrap());
        }
    }

    #[test]
    fn any_json_input_converts_to_schema_shape(v in json_value()) {
        let raw = v.to_string();
        prop_assert!(is_messages(&messages::input_messages(raw.clone()), false));
        let (out, _) = messages::output_messages(raw.clone(), &[]);
        prop_assert!(is_messages(&out, true));
        let system = messages::system_instructions(raw);
        prop_assert!(system.as_array().is_some_and(|p| p.iter().all(|p| p.get("type").is_some_and(Value::is_string))));
    }

    #[test]
    fn arbitrary_text_that_looks_like_json_never_panics(text in "[\\[{].{0,200}") {
        let v = messages::input_messages(text);
        prop_assert!(is_messages(&v, false));
    }

    #[test]
    fn fit_keeps_json_valid_and_within_the_limit(v in json_value(), max in 2usize..2000) {
        let mut value = v;
        if fit(&mut value, max) {
            prop_assert!(json_len(&value) <= max);
        }
        let text = serde_json::to_string(&value).unwrap();
        prop_assert!(serde_json::from_str::<Value>(&text).is_ok());
    }

    #[test]
    fn render_with_any_redaction_is_valid_and_bounded(v in json_value(), replacement in json_value(), max in 64usize..2000) {
        let replacement = std::sync::Arc::new(replacement);
        let policy = ContentPolicy {
            max_bytes: max,
            redactor: Some(std::sync::Arc::new(move |_, value: &mut Value| *value = (*replacement).clone())),
            ..ContentPolicy::default()
        };
        for kind in [ContentKind::InputMessages, ContentKind::OutputMessages, ContentKind::ToolArguments, ContentKind::RetrievalDocuments] {
            let out = policy.render(kind, v.clone());
            prop_assert!(out.len() <= max, "{} > {}", out.len(), max);
            prop_assert!(serde_json::from_str::<Value>(&out).is_ok());
        }
    }

    #[test]
    fn the_vector_trigger_scan_finds_what_the_portable_one_finds(
        bytes in proptest::collection::vec(proptest::prop_oneof![
            6 => 0u8..=0xff,
            1 => proptest::prop_oneof![Just(b'-'), Just(b'J'), Just(b'_'), Just(b'A'), Just(b'B')],
        ], 0..200),
        from in 0usize..200,
    ) {
        let from = from.min(bytes.len());
        let fast = crate::scan::next::<crate::scrub::Trigger>(&bytes, from);
        prop_assert_eq!(fast, crate::scan::next_portable::<crate::scrub::Trigger>(&bytes, from));
        let expected = (from..bytes.len())
            .find(|&i| b"-J_AB".contains(&bytes[i]))
            .unwrap_or(bytes.len());
        prop_assert_eq!(fast, expected);
    }

    #[test]
    fn scrubbing_agrees_with_a_search_at_every_position(
        parts in prop::collection::vec(prop::sample::select(vec![
            "sk-", "xoxb-", "eyJ", "AKIA", "ASIA", "AIza", "ghp_", "github_pat_", "Bearer ",
            "A", "B", "J", "-", "_", ".", " ", "é", "x", "0123456789", "ABCDEFGHIJKLMNOP",
            "abcdefghijklmnopqrstuvwxyz", "QRSTUVWXYZ012345", "\n",
        ]), 0..40),
    ) {
        let text: String = parts.concat();
        prop_assert_eq!(
            crate::scrub::scrub_str(&text),
            crate::scrub::tests::scrub_str_reference(&text)
        );
    }

    #[test]
    fn scrubbing_is_idempotent_and_total(text in ".{0,400}", key in "sk-[A-Za-z0-9]{20,40}") {
        let with_key = format!("{text} {key} {text}");
        let once = crate::scrub::scrub_str(&with_key).expect("a key is found");
        prop_assert!(!once.contains(&key));
        prop_assert_eq!(crate::scrub::scrub_str(&once), None);
        let _ = crate::scrub::scrub_str(&text);
    }

    #[test]
    fn secret_names_match_like_a_plain_search(
        key in "[a-zA-Z_.-]{0,40}",
        extra in prop::collection::vec("[a-zA-Z_]{1,6}", 0..80),
    ) {
        // The indexed one-pass search agrees with searching every part at
        // every position, with more than 64 parts too (the rest are searched
        // the plain way).
        let naive = |parts: &[String]| {
            let k = key.as_bytes();
            let found = parts.iter().any(|p| {
                let p = p.as_bytes();
                !p.is_empty() && k.windows(p.len()).any(|w| w.eq_ignore_ascii_case(p))
            });
            found && !(key.ends_with("_tokens") || key.contains(".tokens"))
        };
        let mut parts: Vec<String> = crate::scrub::DEFAULT_SECRET_KEYS.iter().map(|s| s.to_string()).collect();
        parts.extend(extra.iter().cloned());
        let scrubber = crate::scrub::Scrubber::new(true, extra.clone());
        prop_assert_eq!(scrubber.key_is_secret(&key), naive(&parts), "key {}", key);
        prop_assert_eq!(scrubber.builtin_keys(), extra.iter().all(|e| crate::scrub::DEFAULT_SECRET_KEYS.contains(&e.to_ascii_lowercase().as_str())));
    }

    #[test]
    fn fast_content_paths_agree_with_the_general_one(text in ".{0,300}", v in json_value(), max in 16usize..400) {
        // A hook that changes nothing forces the general path (build,
        // redact, bound, serialize); without one the fast paths are taken.
        let fast = ContentPolicy { max_bytes: max, ..ContentPolicy::default() };
        let general = ContentPolicy {
            max_bytes: max,
            redactor: Some(std::sync::Arc::new(|_, _: &mut Value| {})),
            ..ContentPolicy::default()
        };
        let kind = ContentKind::RetrievalQuery;
        prop_assert_eq!(fast.render_text(kind, text.as_str().into()), general.render_text(kind, text.as_str().into()));
        for raw in [serde_json::to_string(&v).unwrap(), serde_json::to_string_pretty(&v).unwrap(), text.clone()] {
            let a = fast.render_json_text(ContentKind::ToolArguments, &raw);
            let b = general.render_json_text(ContentKind::ToolArguments, &raw);
            prop_assert_eq!(a.is_some(), b.is_some(), "{}", raw);
            if let (Some(a), Some(b)) = (a, b) {
                prop_assert!(a.len() <= max || b.len() > max, "{} > {}", a.len(), max);
                if raw.trim().len() <= max {
                    // Kept as written (the general path writes the parsed
                    // value again, which can move a float by one ulp).
                    prop_assert_eq!(a.as_str(), raw.trim());
                    prop_assert!(serde_json::from_str::<Value>(&b).is_ok());
                }
            }
        }
    }
}
