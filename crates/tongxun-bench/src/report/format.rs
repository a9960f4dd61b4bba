//! Numbers and dates as the report writes them.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::scenarios::thousands;

/// `3 runs`, `1 run`.
pub(super) fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", thousands(n))
    }
}

/// `1234567.8` with one decimal as `1,234,567.8`.
pub(super) fn fmt_num(value: f64, decimals: usize) -> String {
    if !value.is_finite() {
        return "—".to_owned();
    }
    let text = format!("{value:.decimals$}");
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text.as_str(), None),
    };
    let (sign, digits) = match int.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", int),
    };
    let grouped = match digits.parse::<usize>() {
        Ok(n) => thousands(n),
        Err(_) => digits.to_owned(),
    };
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// `YYYY-MM-DD` of a time.
pub(super) fn date(time: SystemTime) -> String {
    let days = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Days since 1970-01-01 to a civil date (proleptic Gregorian), era by era of 400 years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_numbers_and_dates() {
        assert_eq!(fmt_num(1_234_567.84, 1), "1,234,567.8");
        assert_eq!(fmt_num(999.0, 0), "999");
        assert_eq!(fmt_num(-1234.5, 1), "-1,234.5");
        assert_eq!(date(UNIX_EPOCH), "1970-01-01");
        assert_eq!(
            date(UNIX_EPOCH + Duration::from_secs(1_709_164_800)),
            "2024-02-29"
        );
    }
}
