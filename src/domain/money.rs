//! Money as integer minor units; rendered as the contract's two-place string.

/// `50000` minor units → `"500.00"`.
pub fn format_minor(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// `"500.00"`, `"500.5"` or `"500"` → minor units; `None` for anything else.
pub fn parse_minor(s: &str) -> Option<i64> {
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 2 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    whole.checked_mul(100)?.checked_add(frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_two_places() {
        assert_eq!(format_minor(50000), "500.00");
        assert_eq!(format_minor(5), "0.05");
        assert_eq!(parse_minor("500.5"), Some(50050));
        assert_eq!(parse_minor("1.234"), None);
        assert_eq!(parse_minor("-1"), None);
    }

    proptest! {
        #[test]
        fn parse_inverts_format(minor in 0i64..10_000_000_000) {
            prop_assert_eq!(parse_minor(&format_minor(minor)), Some(minor));
        }
    }
}
