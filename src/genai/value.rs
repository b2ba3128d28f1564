//! Field values as `tracing` hands them over, and their readings as
//! counts, numbers, flags and lists.

use std::borrow::Cow;

use opentelemetry::{StringValue, Value};

use super::messages;
use crate::intern::intern;

/// A field value as `tracing` handed it over.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FieldValue<'a> {
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    /// Borrowed from `tracing` where possible: copied only if it is kept.
    Str(Cow<'a, str>),
}

impl<'a> FieldValue<'a> {
    /// The value as text, borrowed when it is a string.
    pub(super) fn into_cow(self) -> Cow<'a, str> {
        match self {
            FieldValue::Str(s) => s,
            other => Cow::Owned(other.into_string()),
        }
    }

    pub(super) fn into_string(self) -> String {
        match self {
            FieldValue::Str(s) => s.into_owned(),
            FieldValue::I64(v) => v.to_string(),
            FieldValue::U64(v) => v.to_string(),
            FieldValue::F64(v) => v.to_string(),
            FieldValue::Bool(v) => v.to_string(),
        }
    }

    /// A non-negative whole count; anything else is not a token count.
    #[inline]
    pub(super) fn count(&self) -> Option<i64> {
        match self {
            FieldValue::I64(v) if *v >= 0 => Some(*v),
            FieldValue::U64(v) => i64::try_from(*v).ok(),
            FieldValue::F64(v) if v.is_finite() && *v >= 0.0 && *v <= i64::MAX as f64 => {
                Some(v.round() as i64)
            }
            FieldValue::Str(s) => s
                .trim()
                .parse::<u64>()
                .ok()
                .and_then(|v| i64::try_from(v).ok()),
            _ => None,
        }
    }

    pub(super) fn int(&self) -> Option<i64> {
        match self {
            FieldValue::I64(v) => Some(*v),
            FieldValue::U64(v) => i64::try_from(*v).ok(),
            FieldValue::F64(v) if v.is_finite() && v.fract() == 0.0 => Some(*v as i64),
            FieldValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub(super) fn double(&self) -> Option<f64> {
        let v = match self {
            FieldValue::I64(v) => *v as f64,
            FieldValue::U64(v) => *v as f64,
            FieldValue::F64(v) => *v,
            FieldValue::Str(s) => s.trim().parse().ok()?,
            FieldValue::Bool(_) => return None,
        };
        v.is_finite().then_some(v)
    }

    pub(super) fn boolean(&self) -> Option<bool> {
        match self {
            FieldValue::Bool(b) => Some(*b),
            FieldValue::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            FieldValue::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    pub(crate) fn into_value(self) -> Value {
        match self {
            FieldValue::I64(v) => Value::I64(v),
            FieldValue::U64(v) => crate::fields::u64_value(v),
            FieldValue::F64(v) => Value::F64(v),
            FieldValue::Bool(v) => Value::Bool(v),
            FieldValue::Str(s) => Value::String(s.into_owned().into()),
        }
    }

    /// A shared copy of a short, low-cardinality value (names, models).
    #[inline]
    pub(super) fn interned(self) -> StringValue {
        match self {
            FieldValue::Str(s) => intern(&s),
            other => StringValue::from(other.into_string()),
        }
    }
}

/// A list given as a JSON array of strings or as comma-separated text.
pub(crate) fn string_list(v: FieldValue<'_>) -> Vec<String> {
    let s = v.into_string();
    if let Some(serde_json::Value::Array(items)) = messages::parse_json(&s) {
        return items
            .into_iter()
            .map(|i| match i {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .collect();
    }
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
