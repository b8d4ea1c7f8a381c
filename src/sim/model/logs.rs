//! Time formatting for the simulator: log timestamps, Go's `myUptime` (facts §3.2) and the
//! `last_offline` minute format of `/cluster/node` (facts §3.3). All UTC, no time crate needed.

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's civil-from-days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) → days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-11-26T08:00:00.000Z`, the simulated log timestamp.
pub fn rfc3339_ms(epoch_ms: i64) -> String {
    let secs = epoch_ms.div_euclid(1000);
    let ms = epoch_ms.rem_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// `YYYY-MM-DD HH:MM` (facts §3.3 `last_offline`; the server's local time, UTC here).
pub fn minute(epoch_secs: i64) -> String {
    let (y, mo, d) = civil_from_days(epoch_secs.div_euclid(86_400));
    let s = epoch_secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02} {:02}:{:02}", s / 3600, s / 60 % 60)
}

/// Go `myUptime` (facts §3.2): `45s`, `3m12s`, `2h3m4s`, `1d2h3m4s`, `1y2d3h4m5s`.
pub fn my_uptime(total_secs: u64) -> String {
    let (mins, hrs) = (total_secs / 60, total_secs / 3600);
    let (days, yrs) = (hrs / 24, hrs / 24 / 365);
    let (s, m, h) = (total_secs % 60, mins % 60, hrs % 24);
    if yrs > 0 {
        format!("{yrs}y{}d{h}h{m}m{s}s", days % 365)
    } else if days > 0 {
        format!("{days}d{h}h{m}m{s}s")
    } else if hrs > 0 {
        format!("{hrs}h{m}m{s}s")
    } else if mins > 0 {
        format!("{mins}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_matches_go_my_uptime() {
        assert_eq!(my_uptime(45), "45s");
        assert_eq!(my_uptime(192), "3m12s");
        assert_eq!(my_uptime(2 * 3600 + 3 * 60 + 4), "2h3m4s");
        assert_eq!(my_uptime(86_400 + 2 * 3600 + 3 * 60 + 4), "1d2h3m4s");
        assert_eq!(my_uptime(0), "0s");
    }

    #[test]
    fn formats_dates() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        let d = days_from_civil(2026, 4, 22);
        assert_eq!(minute(d * 86_400 + 10 * 3600 + 15 * 60), "2026-04-22 10:15");
        assert_eq!(rfc3339_ms(1_776_816_000_123), "2026-04-22T00:00:00.123Z");
    }
}
