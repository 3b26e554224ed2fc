//! Java's `DateTimeFormatter` patterns (`yyyy-MM-dd'T'HH:mm:ss.SSSX`), which ksqlDB's date and
//! time functions take, and Java's time-zone IDs: formatting a date, a time or an instant in a
//! zone, and parsing text as ksqlDB parses it (case-insensitively, absent fields defaulting to
//! 1970-01-01T00:00, a day-of-month past the month's end moved back to its last day).
//!
//! Supported letters: `G u y D M L d E a h K k H m s S A n N V z X x Z`, quoted literals
//! (`''` for a quote) and optional sections (`[…]`). Zone names (`z`) are known for UTC, GMT
//! and fixed offsets only.

use std::str::FromStr;

use arrow::array::temporal_conversions::as_datetime_with_timezone;
use arrow::array::timezone::Tz;
use arrow::datatypes::TimestampMillisecondType;

const MILLIS_PER_DAY: i64 = 86_400_000;
const NANOS_PER_MILLI: i64 = 1_000_000;
const NANOS_PER_SECOND: i64 = 1_000_000_000;
const NANOS_PER_DAY: i64 = MILLIS_PER_DAY * NANOS_PER_MILLI;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a count of days since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A time zone as Java's `ZoneId.of` reads it: `Z`, an offset (`+02`, `+0200`, `+02:00`),
/// `UTC`/`GMT`/`UT` optionally followed by an offset, or a region (`Europe/London`).
#[derive(Debug, Clone)]
pub(crate) struct Zone {
    id: String,
    rules: Rules,
    /// Whether the ID is an offset (`+02:00`, `Z`), which Java also writes as its name.
    offset_id: bool,
}

#[derive(Debug, Clone)]
enum Rules {
    /// Seconds east of UTC, always.
    Fixed(i32),
    /// A region's rules, from the tz database that arrow carries.
    Region(Tz),
}

impl Zone {
    /// UTC, the zone of timestamps given without one.
    pub(crate) fn utc() -> Zone {
        Zone {
            id: "UTC".to_string(),
            rules: Rules::Fixed(0),
            offset_id: false,
        }
    }

    /// The zone with Java's ID `id`.
    pub(crate) fn of(id: &str) -> Result<Zone, String> {
        let unknown = || format!("Unknown time-zone ID: {id}");
        if id == "Z" || id.starts_with(['+', '-']) {
            let secs = if id == "Z" {
                0
            } else {
                parse_offset_id(id).ok_or_else(unknown)?
            };
            return Ok(Zone {
                id: offset_text(secs),
                rules: Rules::Fixed(secs),
                offset_id: true,
            });
        }
        for prefix in ["UTC", "GMT", "UT"] {
            if let Some(rest) = id.strip_prefix(prefix) {
                let secs = match rest {
                    "" => 0,
                    _ if rest.starts_with(['+', '-']) => {
                        parse_offset_id(rest).ok_or_else(unknown)?
                    }
                    _ => continue,
                };
                let id = match secs {
                    0 => prefix.to_string(),
                    _ => format!("{prefix}{}", offset_text(secs)),
                };
                return Ok(Zone {
                    id,
                    rules: Rules::Fixed(secs),
                    offset_id: false,
                });
            }
        }
        // Region IDs are letters, digits and `/_+-`; arrow would also read an offset here.
        if !id.starts_with(|c: char| c.is_ascii_alphabetic())
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
        {
            return Err(unknown());
        }
        match Tz::from_str(id) {
            Ok(tz) => Ok(Zone {
                id: id.to_string(),
                rules: Rules::Region(tz),
                offset_id: false,
            }),
            Err(_) => Err(unknown()),
        }
    }

    /// The zone's offset from UTC, in seconds, at the instant `utc_millis`.
    pub(crate) fn offset_at(&self, utc_millis: i64) -> Result<i32, String> {
        let tz = match &self.rules {
            Rules::Fixed(secs) => return Ok(*secs),
            Rules::Region(tz) => *tz,
        };
        let at = as_datetime_with_timezone::<TimestampMillisecondType>(utc_millis, tz)
            .ok_or_else(|| format!("timestamp {utc_millis} is out of range"))?;
        let secs = (at.naive_local() - at.naive_utc()).num_seconds();
        i32::try_from(secs).map_err(|_| format!("offset {secs} is out of range"))
    }

    /// The zone's short name at the instant `utc_millis` (`PDT`, `BST`), as Java's pattern
    /// letter `z` writes it, from the tz database's abbreviations. Where the database has
    /// only a numeric abbreviation (`+03`) Java's name comes from elsewhere, so that is an
    /// error rather than a different text.
    pub(crate) fn abbreviation_at(&self, utc_millis: i64) -> Result<String, String> {
        use chrono::TimeZone as _;
        use chrono_tz::OffsetName as _;
        let unknown = || format!("Eddy does not know the names of the time zone {}", self.id);
        let tz: chrono_tz::Tz = self.id.parse().map_err(|_| unknown())?;
        let at = chrono::DateTime::from_timestamp_millis(utc_millis)
            .ok_or_else(|| format!("timestamp {utc_millis} is out of range"))?;
        let offset = tz.offset_from_utc_datetime(&at.naive_utc());
        match offset.abbreviation() {
            Some(name) if name.starts_with(|c: char| c.is_ascii_alphabetic()) => {
                Ok(name.to_string())
            }
            _ => Err(unknown()),
        }
    }

    /// The instant at which the zone's clocks show `local_millis`. In a gap (clocks put
    /// forward) and in an overlap (clocks put back) the offset before the change is used, so
    /// a time in a gap moves forward by the gap's length, as in Java.
    pub(crate) fn to_utc(&self, local_millis: i64) -> Result<i64, String> {
        let before = self.offset_at(local_millis.saturating_sub(MILLIS_PER_DAY))?;
        let after = self.offset_at(local_millis.saturating_add(MILLIS_PER_DAY))?;
        let valid = |offset: i32| -> Result<bool, String> {
            Ok(self.offset_at(local_millis - i64::from(offset) * 1000)? == offset)
        };
        let offset = if before == after || valid(before)? || !valid(after)? {
            before
        } else {
            after
        };
        Ok(local_millis - i64::from(offset) * 1000)
    }
}

/// Seconds east of UTC of an offset ID: `+h`, `+hh`, `+hhmm`, `+hh:mm` (and seconds).
fn parse_offset_id(text: &str) -> Option<i32> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let body = &text[1..];
    let parts: Vec<&str> = if body.contains(':') {
        body.split(':').collect()
    } else {
        match body.len() {
            1 | 2 => vec![body],
            4 => vec![&body[..2], &body[2..]],
            6 => vec![&body[..2], &body[2..4], &body[4..]],
            _ => return None,
        }
    };
    let mut values = [0_i32; 3];
    for (i, part) in parts.iter().enumerate() {
        let width_ok = part.len() == 2 || (i == 0 && part.len() == 1 && parts.len() == 1);
        if i > 2 || !width_ok || !part.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        values[i] = part.parse().ok()?;
    }
    let [h, m, s] = values;
    if h > 18 || m > 59 || s > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60 + s))
}

/// An offset's digits: `+hh`, then `mm` unless `hour_only` and whole hours, then `ss` if
/// `seconds` and any; separated by colons if `colon`.
fn offset_digits(secs: i32, colon: bool, seconds: bool, hour_only: bool) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let abs = secs.unsigned_abs();
    let (h, m, s) = (abs / 3600, abs / 60 % 60, abs % 60);
    let sep = if colon { ":" } else { "" };
    let mut out = format!("{sign}{h:02}");
    if !(hour_only && m == 0 && s == 0) {
        out.push_str(&format!("{sep}{m:02}"));
    }
    if seconds && s != 0 {
        out.push_str(&format!("{sep}{s:02}"));
    }
    out
}

/// Java's ID of a fixed offset: `Z`, or `+hh:mm[:ss]`.
fn offset_text(secs: i32) -> String {
    match secs {
        0 => "Z".to_string(),
        _ => offset_digits(secs, true, true, false),
    }
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Literal(String),
    Field(char, usize),
    Optional(Vec<Item>),
}

/// What a value to format has: a date, a time of day, a zone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Moment {
    /// Days since 1970-01-01.
    pub(crate) date: Option<i64>,
    /// Nanoseconds since midnight.
    pub(crate) time: Option<i64>,
    /// The zone and its offset (seconds east of UTC) at this moment.
    pub(crate) zone: Option<(Zone, i32)>,
}

impl Moment {
    /// A TIMESTAMP (milliseconds since the epoch) as the zone's clocks show it.
    pub(crate) fn instant(utc_millis: i64, zone: &Zone) -> Result<Moment, String> {
        let offset = zone.offset_at(utc_millis)?;
        let local = utc_millis
            .checked_add(i64::from(offset) * 1000)
            .ok_or_else(|| format!("timestamp {utc_millis} is out of range"))?;
        Ok(Moment {
            date: Some(local.div_euclid(MILLIS_PER_DAY)),
            time: Some(local.rem_euclid(MILLIS_PER_DAY) * NANOS_PER_MILLI),
            zone: Some((zone.clone(), offset)),
        })
    }
}

/// What parsing found, before defaults.
#[derive(Debug, Clone, Default)]
struct Parsed {
    era: Option<i64>,
    year_of_era: Option<i64>,
    year: Option<i64>,
    day_of_year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    am_pm: Option<i64>,
    hour: Option<i64>,
    hour_of_am_pm: Option<i64>,
    minute: Option<i64>,
    second: Option<i64>,
    nano: Option<i64>,
    milli_of_day: Option<i64>,
    nano_of_day: Option<i64>,
    offset: Option<i32>,
    zone: Option<Zone>,
}

/// A parsed text: a local date and time, and the zone or offset it named, if any.
#[derive(Debug, Clone)]
pub(crate) struct Local {
    /// Days since 1970-01-01.
    pub(crate) date: i64,
    /// Nanoseconds since midnight.
    pub(crate) time: i64,
    offset: Option<i32>,
    zone: Option<Zone>,
}

impl Local {
    /// The instant, in milliseconds since the epoch: in the zone or offset the text named,
    /// else in `zone`.
    pub(crate) fn to_utc_millis(&self, zone: &Zone) -> Result<i64, String> {
        let local = self
            .date
            .checked_mul(MILLIS_PER_DAY)
            .and_then(|m| m.checked_add(self.time / NANOS_PER_MILLI))
            .ok_or_else(|| "the date is out of range".to_string())?;
        match (&self.offset, &self.zone) {
            (Some(offset), _) => Ok(local - i64::from(*offset) * 1000),
            (None, Some(named)) => named.to_utc(local),
            (None, None) => zone.to_utc(local),
        }
    }
}

impl FromStr for Pattern {
    type Err = String;

    /// Compiles a pattern, with Java's errors for letters it does not know.
    fn from_str(pattern: &str) -> Result<Pattern, String> {
        let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
        let chars: Vec<char> = pattern.chars().collect();
        let mut i = 0;
        let push = |stack: &mut Vec<Vec<Item>>, item: Item| {
            if let Some(items) = stack.last_mut() {
                match (items.last_mut(), item) {
                    (Some(Item::Literal(text)), Item::Literal(more)) => text.push_str(&more),
                    (_, item) => items.push(item),
                }
            }
        };
        while i < chars.len() {
            let c = chars[i];
            if c.is_ascii_alphabetic() {
                let mut count = 1;
                while chars.get(i + count) == Some(&c) {
                    count += 1;
                }
                i += count;
                check_letter(c, count)?;
                push(&mut stack, Item::Field(c, count));
                continue;
            }
            i += 1;
            match c {
                '\'' => {
                    let mut text = String::new();
                    loop {
                        match chars.get(i) {
                            None if text.is_empty() && chars.get(i - 1) == Some(&'\'') => {
                                return Err(format!(
                                    "Pattern ends with an incomplete string literal: {pattern}"
                                ));
                            }
                            None => {
                                return Err(format!(
                                    "Pattern ends with an incomplete string literal: {pattern}"
                                ));
                            }
                            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                                text.push('\'');
                                i += 2;
                            }
                            Some('\'') => {
                                i += 1;
                                break;
                            }
                            Some(other) => {
                                text.push(*other);
                                i += 1;
                            }
                        }
                    }
                    // `''` outside a literal is a quote.
                    push(
                        &mut stack,
                        Item::Literal(if text.is_empty() { "'".into() } else { text }),
                    );
                }
                '[' => stack.push(Vec::new()),
                ']' => {
                    let inner = match stack.pop() {
                        Some(inner) if !stack.is_empty() => inner,
                        _ => {
                            return Err(format!(
                                "Pattern invalid as it contains ] without previous [: {pattern}"
                            ));
                        }
                    };
                    push(&mut stack, Item::Optional(inner));
                }
                '{' | '}' | '#' => {
                    return Err(format!("Pattern includes reserved character: '{c}'"));
                }
                other => push(&mut stack, Item::Literal(other.to_string())),
            }
        }
        // Java closes optional sections left open.
        while stack.len() > 1 {
            if let Some(inner) = stack.pop() {
                push(&mut stack, Item::Optional(inner));
            }
        }
        Ok(Pattern {
            items: stack.pop().unwrap_or_default(),
        })
    }
}

/// Java's checks of a run of `count` letters `c`.
fn check_letter(c: char, count: usize) -> Result<(), String> {
    let max = match c {
        'G' | 'M' | 'L' | 'E' | 'X' | 'x' | 'Z' => 5,
        'z' => 4,
        'D' => 3,
        'd' | 'h' | 'K' | 'k' | 'H' | 'm' | 's' => 2,
        'a' => 1,
        'V' if count != 2 => return Err("Pattern letter count must be 2: V".into()),
        'V' => 2,
        'S' => 9,
        'u' | 'y' | 'A' | 'n' | 'N' => 19,
        'Q' | 'q' | 'Y' | 'w' | 'W' | 'e' | 'c' | 'F' | 'O' | 'B' | 'g' | 'p' => {
            return Err(format!("Eddy does not support the pattern letter: {c}"));
        }
        _ => return Err(format!("Unknown pattern letter: {c}")),
    };
    if count > max {
        return Err(format!("Too many pattern letters: {c}"));
    }
    Ok(())
}

/// Java's name of the field a letter reads, for "Unsupported field" errors.
fn field_name(c: char) -> &'static str {
    match c {
        'G' => "Era",
        'u' => "Year",
        'y' => "YearOfEra",
        'D' => "DayOfYear",
        'M' | 'L' => "MonthOfYear",
        'd' => "DayOfMonth",
        'E' => "DayOfWeek",
        'a' => "AmPmOfDay",
        'h' => "ClockHourOfAmPm",
        'K' => "HourOfAmPm",
        'k' => "ClockHourOfDay",
        'H' => "HourOfDay",
        'm' => "MinuteOfHour",
        's' => "SecondOfMinute",
        'S' | 'n' => "NanoOfSecond",
        'A' => "MilliOfDay",
        'N' => "NanoOfDay",
        'X' | 'x' | 'Z' => "OffsetSeconds",
        _ => "ZoneId",
    }
}

fn padded(value: i64, width: usize) -> String {
    if value < 0 {
        format!("-{:0width$}", value.unsigned_abs())
    } else {
        format!("{value:0width$}")
    }
}

fn text_of(name: &str, count: usize) -> String {
    match count {
        4 => name.to_string(),
        5 => name.chars().take(1).collect(),
        _ => name.chars().take(3).collect(),
    }
}

impl Pattern {
    /// `moment` written in this pattern; an error if the pattern needs a field the moment
    /// does not have (a time for a DATE), as Java's "Unsupported field".
    pub(crate) fn format(&self, moment: &Moment) -> Result<String, String> {
        let mut out = String::new();
        format_items(&self.items, moment, &mut out)?;
        Ok(out)
    }

    /// `text` read with this pattern. Text after what the pattern reads is ignored if
    /// `rest_ignored` (ksqlDB's `PARSE_DATE` ignores it), an error otherwise.
    pub(crate) fn parse(&self, text: &str, rest_ignored: bool) -> Result<Local, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut parsed = Parsed::default();
        let end = parse_items(&self.items, &chars, 0, &mut parsed)
            .ok_or_else(|| format!("Text '{text}' could not be parsed"))?;
        if end < chars.len() && !rest_ignored {
            return Err(format!(
                "Text '{text}' could not be parsed, unparsed text found at index {end}"
            ));
        }
        resolve(&parsed).ok_or_else(|| format!("Text '{text}' could not be parsed"))
    }
}

fn format_items(items: &[Item], moment: &Moment, out: &mut String) -> Result<(), String> {
    for item in items {
        match item {
            Item::Literal(text) => out.push_str(text),
            Item::Field(c, count) => out.push_str(&format_field(*c, *count, moment)?),
            Item::Optional(inner) => {
                // An optional section is written only if every field in it can be.
                let mut section = String::new();
                if format_items(inner, moment, &mut section).is_ok() {
                    out.push_str(&section);
                }
            }
        }
    }
    Ok(())
}

fn format_field(c: char, count: usize, moment: &Moment) -> Result<String, String> {
    let unsupported = || format!("Unsupported field: {}", field_name(c));
    let date = || moment.date.map(civil_from_days).ok_or_else(unsupported);
    let time = || moment.time.ok_or_else(unsupported);
    let zone = || moment.zone.as_ref().ok_or_else(unsupported);
    let date_days = || moment.date.ok_or_else(unsupported);
    let zone_offset = || zone().map(|z| z.1);
    Ok(match c {
        'G' => {
            let (year, _, _) = date()?;
            let ad = year > 0;
            match count {
                4 if ad => "Anno Domini".into(),
                4 => "Before Christ".into(),
                5 if ad => "A".into(),
                5 => "B".into(),
                _ if ad => "AD".into(),
                _ => "BC".into(),
            }
        }
        'y' | 'u' => {
            let (year, _, _) = date()?;
            let year = if c == 'y' && year <= 0 {
                1 - year
            } else {
                year
            };
            if count == 2 {
                padded(year.rem_euclid(100), 2)
            } else if count >= 4 && year > 0 && year.to_string().len() > count {
                format!("+{year}")
            } else {
                padded(year, count)
            }
        }
        'D' => {
            let (year, _, _) = date()?;
            let days = moment.date.ok_or_else(unsupported)?;
            padded(days - days_from_civil(year, 1, 1) + 1, count)
        }
        'M' | 'L' => {
            let (_, month, _) = date()?;
            match count {
                1 | 2 => padded(i64::from(month), count),
                _ => text_of(MONTHS[month as usize - 1], count),
            }
        }
        'd' => padded(i64::from(date()?.2), count),
        'E' => {
            let days = moment.date.ok_or_else(unsupported)?;
            text_of(DAYS[(days + 3).rem_euclid(7) as usize], count)
        }
        'a' => {
            if time()? < 12 * 3600 * NANOS_PER_SECOND {
                "AM".into()
            } else {
                "PM".into()
            }
        }
        'H' | 'k' | 'h' | 'K' => {
            let hour = time()? / (3600 * NANOS_PER_SECOND);
            let value = match c {
                'H' => hour,
                'k' if hour == 0 => 24,
                'k' => hour,
                'K' => hour % 12,
                _ if hour % 12 == 0 => 12,
                _ => hour % 12,
            };
            padded(value, count)
        }
        'm' => padded(time()? / (60 * NANOS_PER_SECOND) % 60, count),
        's' => padded(time()? / NANOS_PER_SECOND % 60, count),
        'S' => {
            let nanos = format!("{:09}", time()? % NANOS_PER_SECOND);
            nanos[..count].to_string()
        }
        'n' => padded(time()? % NANOS_PER_SECOND, count),
        'A' => padded(time()? / NANOS_PER_MILLI, count),
        'N' => padded(time()?, count),
        'V' => zone()?.0.id.clone(),
        'z' => {
            let zone = &zone()?.0;
            match (count, zone.id.as_str()) {
                _ if zone.offset_id => zone.id.clone(),
                (4, "UTC") => "Coordinated Universal Time".into(),
                (4, "GMT") => "Greenwich Mean Time".into(),
                _ if matches!(zone.rules, Rules::Fixed(_)) => zone.id.clone(),
                (1..=3, _) => {
                    let (date, time) = (date_days()?, time()?);
                    let local = date * MILLIS_PER_DAY + time / NANOS_PER_MILLI;
                    zone.abbreviation_at(local - i64::from(zone_offset()?) * 1000)?
                }
                _ => {
                    return Err(format!(
                        "Eddy does not know the names of the time zone {}",
                        zone.id
                    ));
                }
            }
        }
        'X' | 'x' => {
            let offset = zone()?.1;
            match count {
                _ if offset == 0 && c == 'X' => "Z".into(),
                1 => offset_digits(offset, false, false, true),
                2 => offset_digits(offset, false, false, false),
                3 => offset_digits(offset, true, false, false),
                4 => offset_digits(offset, false, true, false),
                _ => offset_digits(offset, true, true, false),
            }
        }
        'Z' => {
            let offset = zone()?.1;
            match count {
                4 if offset == 0 => "GMT".into(),
                4 => format!("GMT{}", offset_digits(offset, true, true, false)),
                5 if offset == 0 => "Z".into(),
                5 => offset_digits(offset, true, true, false),
                _ => offset_digits(offset, false, false, false),
            }
        }
        _ => return Err(unsupported()),
    })
}

/// The digits' widths a numeric letter reads: (least, most).
fn widths(c: char, count: usize) -> Option<(usize, usize)> {
    Some(match (c, count) {
        ('y' | 'u', 2) => (2, 2),
        ('y' | 'u' | 'A' | 'n' | 'N', n) => (n, 19),
        ('D', 1) => (1, 19),
        ('D', 2) => (2, 3),
        ('D', _) => (3, 3),
        ('M' | 'L' | 'd' | 'h' | 'K' | 'k' | 'H' | 'm' | 's', 1) => (1, 19),
        ('M' | 'L' | 'd' | 'h' | 'K' | 'k' | 'H' | 'm' | 's', 2) => (2, 2),
        ('S', n) => (n, n),
        _ => return None,
    })
}

/// Parses `items` from `pos`; the position after them, or None if the text does not match.
fn parse_items(
    items: &[Item],
    text: &[char],
    mut pos: usize,
    parsed: &mut Parsed,
) -> Option<usize> {
    for (i, item) in items.iter().enumerate() {
        pos = match item {
            Item::Literal(literal) => {
                let mut p = pos;
                for expected in literal.chars() {
                    let found = text.get(p)?;
                    if !found.to_lowercase().eq(expected.to_lowercase()) {
                        return None;
                    }
                    p += 1;
                }
                p
            }
            Item::Optional(inner) => {
                let mut attempt = parsed.clone();
                match parse_items(inner, text, pos, &mut attempt) {
                    Some(p) => {
                        *parsed = attempt;
                        p
                    }
                    None => pos,
                }
            }
            Item::Field(c, count) => {
                // Digits reserved for the fixed-width numbers that follow (`yyyyMMdd`).
                let reserved: usize = items[i + 1..]
                    .iter()
                    .map_while(|next| match next {
                        Item::Field(n, k) => widths(*n, *k).filter(|(lo, hi)| lo == hi),
                        _ => None,
                    })
                    .map(|(lo, _)| lo)
                    .sum();
                parse_field(*c, *count, text, pos, reserved, parsed)?
            }
        };
    }
    Some(pos)
}

fn parse_field(
    c: char,
    count: usize,
    text: &[char],
    pos: usize,
    reserved: usize,
    parsed: &mut Parsed,
) -> Option<usize> {
    if let Some((least, most)) = widths(c, count) {
        let negative = c == 'u' && text.get(pos) == Some(&'-');
        let start = pos + usize::from(negative);
        let available = text[start.min(text.len())..]
            .iter()
            .take_while(|d| d.is_ascii_digit())
            .count();
        let take = most.min(available.saturating_sub(reserved).max(least.min(available)));
        if take < least || take == 0 {
            return None;
        }
        let digits: String = text[start..start + take].iter().collect();
        let value: i64 = digits.parse().ok()?;
        let value = if negative { -value } else { value };
        let slot = match c {
            'y' if count == 2 => {
                parsed.year_of_era = Some(2000 + value);
                return Some(start + take);
            }
            'y' => &mut parsed.year_of_era,
            'u' => &mut parsed.year,
            'D' => &mut parsed.day_of_year,
            'M' | 'L' => &mut parsed.month,
            'd' => &mut parsed.day,
            'H' => &mut parsed.hour,
            'k' => {
                parsed.hour = Some(value % 24);
                return Some(start + take);
            }
            'h' => {
                parsed.hour_of_am_pm = Some(value % 12);
                return Some(start + take);
            }
            'K' => &mut parsed.hour_of_am_pm,
            'm' => &mut parsed.minute,
            's' => &mut parsed.second,
            'S' => {
                parsed.nano = Some(value * 10_i64.pow(9 - count as u32));
                return Some(start + take);
            }
            'n' => &mut parsed.nano,
            'A' => &mut parsed.milli_of_day,
            _ => &mut parsed.nano_of_day,
        };
        *slot = Some(value);
        return Some(start + take);
    }
    let rest: String = text[pos.min(text.len())..].iter().collect();
    let lower = rest.to_lowercase();
    // The longest name that starts the text, and its index.
    let name_at = |names: &[String]| {
        names
            .iter()
            .enumerate()
            .filter(|(_, n)| lower.starts_with(&n.to_lowercase()))
            .max_by_key(|(_, n)| n.len())
            .map(|(i, n)| (i, n.chars().count()))
    };
    match c {
        'M' | 'L' => {
            let names: Vec<String> = MONTHS.iter().map(|m| text_of(m, count)).collect();
            let (i, len) = name_at(&names)?;
            parsed.month = Some(i as i64 + 1);
            Some(pos + len)
        }
        'E' => {
            let names: Vec<String> = DAYS.iter().map(|d| text_of(d, count)).collect();
            let (_, len) = name_at(&names)?;
            Some(pos + len)
        }
        'a' => {
            let (i, len) = name_at(&["AM".to_string(), "PM".to_string()])?;
            parsed.am_pm = Some(i as i64);
            Some(pos + len)
        }
        'G' => {
            let names: Vec<String> = ["Before Christ", "Anno Domini"]
                .iter()
                .map(|n| match count {
                    4 => n.to_string(),
                    5 => n.chars().take(1).collect(),
                    _ => if n.starts_with('B') { "BC" } else { "AD" }.to_string(),
                })
                .collect();
            let (i, len) = name_at(&names)?;
            parsed.era = Some(i as i64);
            Some(pos + len)
        }
        'X' | 'x' | 'Z' => {
            if (c == 'X' || (c == 'Z' && count == 5)) && lower.starts_with('z') {
                parsed.offset = Some(0);
                return Some(pos + 1);
            }
            let (skip, body) = match lower.strip_prefix("gmt") {
                Some(body) if c == 'Z' && count == 4 => (3, body),
                _ => (0, lower.as_str()),
            };
            if skip == 3 && !body.starts_with(['+', '-']) {
                parsed.offset = Some(0);
                return Some(pos + 3);
            }
            let len = body
                .char_indices()
                .take_while(|(i, ch)| {
                    (*i == 0 && (*ch == '+' || *ch == '-')) || ch.is_ascii_digit() || *ch == ':'
                })
                .count();
            parsed.offset = Some(parse_offset_id(&body[..len])?);
            Some(pos + skip + len)
        }
        'z' | 'V' => {
            let len = rest
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric() || "/_+-:".contains(*ch))
                .count();
            let id: String = rest.chars().take(len).collect();
            parsed.zone = Some(Zone::of(&id).ok()?);
            Some(pos + len)
        }
        _ => None,
    }
}

/// The date and time `parsed` names, absent fields defaulted to 1970-01-01T00:00.
fn resolve(parsed: &Parsed) -> Option<Local> {
    let year = match (parsed.year, parsed.year_of_era) {
        (Some(year), _) => year,
        (None, Some(yoe)) if parsed.era == Some(0) => 1 - yoe,
        (None, Some(yoe)) => yoe,
        (None, None) => 1970,
    };
    // Java's range of years, which also keeps the day counts below from overflowing.
    if !(-999_999_999..=999_999_999).contains(&year) {
        return None;
    }
    let date = match parsed.day_of_year {
        Some(doy) if parsed.month.is_none() && parsed.day.is_none() => {
            let length = if is_leap(year) { 366 } else { 365 };
            if !(1..=length).contains(&doy) {
                return None;
            }
            days_from_civil(year, 1, 1) + doy - 1
        }
        _ => {
            let month = u32::try_from(parsed.month.unwrap_or(1)).ok()?;
            let day = u32::try_from(parsed.day.unwrap_or(1)).ok()?;
            if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
                return None;
            }
            days_from_civil(year, month, day.min(days_in_month(year, month)))
        }
    };
    let time = if let Some(nanos) = parsed.nano_of_day {
        nanos
    } else if let Some(millis) = parsed.milli_of_day {
        millis.checked_mul(NANOS_PER_MILLI)?
    } else {
        let hour = match (parsed.hour, parsed.hour_of_am_pm) {
            (Some(hour), _) => hour,
            (None, Some(h)) => h + 12 * parsed.am_pm.unwrap_or(0),
            (None, None) => 0,
        };
        let (minute, second) = (parsed.minute.unwrap_or(0), parsed.second.unwrap_or(0));
        let nano = parsed.nano.unwrap_or(0);
        if hour > 23 || minute > 59 || second > 59 || nano >= NANOS_PER_SECOND {
            return None;
        }
        ((hour * 60 + minute) * 60 + second) * NANOS_PER_SECOND + nano
    };
    if !(0..NANOS_PER_DAY).contains(&time) {
        return None;
    }
    Some(Local {
        date,
        time,
        offset: parsed.offset,
        zone: parsed.zone.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(p: &str) -> Pattern {
        p.parse().unwrap()
    }

    fn date(days: i64) -> Moment {
        Moment {
            date: Some(days),
            ..Moment::default()
        }
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(17662), (2018, 5, 11));
        assert_eq!(days_from_civil(2000, 2, 29), 11016);
        for days in [-800_000, -1, 0, 59, 60, 11016, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn formats_dates_as_ksqldb_does() {
        // ksqlDB's format-date cases.
        assert_eq!(
            pattern("yyyy-MM-dd").format(&date(17662)).unwrap(),
            "2018-05-11"
        );
        assert_eq!(
            pattern("dd-MMM-yyyy").format(&date(18993)).unwrap(),
            "01-Jan-2022"
        );
        assert_eq!(
            pattern("dd-MM-yyyy'Sophia'").format(&date(-1)).unwrap(),
            "31-12-1969Sophia"
        );
        assert_eq!(
            pattern("EEEE d MMMM yy").format(&date(0)).unwrap(),
            "Thursday 1 January 70"
        );
        assert_eq!(pattern("''yyyy''").format(&date(0)).unwrap(), "'1970'");
        assert_eq!(
            pattern("yyyy HH").format(&date(0)),
            Err("Unsupported field: HourOfDay".to_string())
        );
    }

    #[test]
    fn formats_times_and_zones() {
        let time = Moment {
            time: Some(1_234_567 * NANOS_PER_MILLI),
            ..Moment::default()
        };
        assert_eq!(
            pattern("HHmmss'AAAAA'").format(&time).unwrap(),
            "002034AAAAA"
        );
        assert_eq!(
            pattern("hh:mm:ss.SSS a").format(&time).unwrap(),
            "12:20:34.567 AM"
        );
        let la = Zone::of("America/Los_Angeles").unwrap();
        let summer = Moment::instant(1_526_075_913_000, &la).unwrap();
        assert_eq!(
            pattern("yyyy-MM-dd HH:mm:ss XXX").format(&summer).unwrap(),
            "2018-05-11 14:58:33 -07:00"
        );
        assert_eq!(
            pattern("Z VV").format(&summer).unwrap(),
            "-0700 America/Los_Angeles"
        );
        assert_eq!(pattern("zzz").format(&summer).unwrap(), "PDT");
        let winter = Moment::instant(1_515_000_000_000, &la).unwrap();
        assert_eq!(pattern("z").format(&winter).unwrap(), "PST");
        assert!(pattern("zzzz").format(&summer).is_err());
        let london = Zone::of("Europe/London").unwrap();
        let summer = Moment::instant(1_526_075_913_000, &london).unwrap();
        assert_eq!(pattern("zzz").format(&summer).unwrap(), "BST");
        // The tz database names Istanbul's zone only by its offset; Java by a name.
        let istanbul = Zone::of("Europe/Istanbul").unwrap();
        let now = Moment::instant(1_526_075_913_000, &istanbul).unwrap();
        assert!(pattern("z").format(&now).is_err());
        let utc = Moment::instant(0, &Zone::utc()).unwrap();
        assert_eq!(pattern("X x z").format(&utc).unwrap(), "Z +00 UTC");
        let plus_two = Moment::instant(0, &Zone::of("+0200").unwrap()).unwrap();
        assert_eq!(
            pattern("HH:mm z").format(&plus_two).unwrap(),
            "02:00 +02:00"
        );
    }

    #[test]
    fn parses_as_ksqldb_parses() {
        let parse = |p: &str, text: &str| pattern(p).parse(text, false).map(|l| l.date);
        // ksqlDB's parse-date cases.
        assert_eq!(parse("yyyy-MM-dd'Lit'", "2018-05-11Lit"), Ok(17662));
        assert_eq!(parse("dd/MM/yyyy", "11/05/2019"), Ok(18027));
        assert_eq!(parse("dd-MMM-yyyy", "01-JAN-2022"), Ok(18993));
        assert_eq!(parse("MMM-yyyy", "Jan-2022"), Ok(18993));
        assert_eq!(parse("yyyyMMdd", "20180511"), Ok(17662));
        assert!(parse("yyyyMMdd", "foo").is_err());
        assert!(parse("yyyy-MM-dd", "2004").is_err());
        assert!(parse("yyyy", "2004x").is_err());
        assert!(parse("yyyy", "999999999999999999").is_err());
        let start = pattern("yyyy-MM-dd").parse("2003-12-24-01-01", true);
        assert_eq!(start.map(|l| l.date), Ok(12410));
        // Past the month's end: its last day.
        assert_eq!(
            parse("yyyy-MM-dd", "2019-02-31"),
            parse("yyyy-MM-dd", "2019-02-28")
        );
        let utc = Zone::utc();
        let millis = |p: &str, text: &str| pattern(p).parse(text, false)?.to_utc_millis(&utc);
        assert_eq!(
            millis("yyyy-MM-dd'T'HH:mm:ss.SSSX", "2018-05-11T21:58:33.123Z"),
            Ok(1_526_075_913_123)
        );
        assert_eq!(
            millis(
                "yyyy-MM-dd HH:mm:ss VV",
                "2018-05-11 14:58:33 America/Los_Angeles"
            ),
            Ok(1_526_075_913_000)
        );
        assert_eq!(
            millis("hh:mm a xxx", "01:30 pm +01:00"),
            Ok(12 * 3_600_000 + 1_800_000)
        );
    }

    #[test]
    fn zones_change_offsets_as_java_does() {
        let la = Zone::of("America/Los_Angeles").unwrap();
        assert_eq!(la.offset_at(100), Ok(-8 * 3600));
        assert_eq!(la.offset_at(1_589_234_313_000), Ok(-7 * 3600));
        // 2021-03-14T02:30 does not exist in Los Angeles: it is read as 03:30 PDT.
        let gap = days_from_civil(2021, 3, 14) * MILLIS_PER_DAY + 150 * 60_000;
        assert_eq!(la.to_utc(gap), Ok(gap + 8 * 3_600_000));
        // 2021-11-07T01:30 happens twice: the earlier, PDT, is taken.
        let overlap = days_from_civil(2021, 11, 7) * MILLIS_PER_DAY + 90 * 60_000;
        assert_eq!(la.to_utc(overlap), Ok(overlap + 7 * 3_600_000));
        assert!(Zone::of("Mars/Olympus").is_err());
        assert_eq!(Zone::of("GMT+2").map(|z| z.offset_at(0)), Ok(Ok(7200)));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!("yyyy-bb".parse::<Pattern>().is_err());
        assert!("ddd".parse::<Pattern>().is_err());
        assert!("'open".parse::<Pattern>().is_err());
        assert!("yyyy]".parse::<Pattern>().is_err());
    }
}
