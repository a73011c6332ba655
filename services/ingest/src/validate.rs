//! The validation rules of DESIGN §2–3 and issue 3, as pure functions over the protobuf
//! event model, so that JSON, NDJSON and gRPC input are held to exactly the same rules.
//!
//! Every rule is checked for every event and every violation is kept: a client fixing a
//! rejected batch learns everything that is wrong in one round trip.

use std::time::Duration;

use nearline_proto::events::v1::{Event, Explore, Impression, Play, event};

/// One thing wrong with one event of a batch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// Position of the event in the batch, from 0.
    pub index: usize,
    /// The field, with the JSON names (`event_time`, `explore.propensity`, ...).
    pub field: String,
    /// What is wrong, for a human.
    pub reason: String,
}

impl Violation {
    /// A violation of `field` of event `index`.
    pub fn new(index: usize, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { index, field: field.into(), reason: reason.into() }
    }
}

/// The accepted event-time window, relative to the server clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    /// Earliest accepted event time, ms since the Unix epoch.
    pub earliest_ms: i64,
    /// Latest accepted event time, ms since the Unix epoch.
    pub latest_ms: i64,
}

impl TimeBounds {
    /// The window `[now - max_age, now + max_future_skew]`.
    pub fn around(now_ms: i64, max_age: Duration, max_future_skew: Duration) -> Self {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self {
            earliest_ms: now_ms.saturating_sub(ms(max_age)),
            latest_ms: now_ms.saturating_add(ms(max_future_skew)),
        }
    }

    /// The window around the system clock now.
    pub fn now(max_age: Duration, max_future_skew: Duration) -> Self {
        Self::around(chrono::Utc::now().timestamp_millis(), max_age, max_future_skew)
    }
}

/// Most characters of an id (`event_id`, `request_id`, `member_id`, `artwork_id`, ...).
pub const MAX_ID_CHARS: usize = 128;
/// Most characters of a token (`canvas`, `device`, genres).
pub const MAX_TOKEN_CHARS: usize = 32;

/// Appends every violation of `event` (at `index`) to `out`.
pub fn check_event(index: usize, event: &Event, bounds: &TimeBounds, out: &mut Vec<Violation>) {
    match &event.kind {
        Some(event::Kind::Impression(impression)) => check_impression(index, impression, bounds, out),
        Some(event::Kind::Play(play)) => check_play(index, play, bounds, out),
        None => out.push(Violation::new(index, "type", "must be \"impression\" or \"play\"")),
    }
}

/// Every violation of a batch, in event order.
pub fn check_batch(events: &[Event], bounds: &TimeBounds) -> Vec<Violation> {
    let mut out = Vec::new();
    for (index, event) in events.iter().enumerate() {
        check_event(index, event, bounds, &mut out);
    }
    out
}

fn check_impression(index: usize, i: &Impression, bounds: &TimeBounds, out: &mut Vec<Violation>) {
    let mut v = Checker { index, out };
    v.id("event_id", &i.event_id);
    v.id("request_id", &i.request_id);
    v.id("member_id", &i.member_id);
    v.video_id("video_id", i.video_id);
    // Optional: empty means the client did not say which artwork it showed.
    if !i.artwork_id.is_empty() {
        v.id("artwork_id", &i.artwork_id);
    }
    v.token("canvas", &i.canvas);
    v.country(&i.country);
    v.token("device", &i.device);
    v.id("region", &i.region);
    v.event_time(i.event_time_ms, bounds);
    if let Some(explore) = &i.explore {
        v.explore(explore);
    }
}

fn check_play(index: usize, p: &Play, bounds: &TimeBounds, out: &mut Vec<Violation>) {
    let mut v = Checker { index, out };
    v.id("event_id", &p.event_id);
    v.id("request_id", &p.request_id);
    v.id("member_id", &p.member_id);
    v.video_id("video_id", p.video_id);
    v.country(&p.country);
    v.token("device", &p.device);
    v.id("region", &p.region);
    v.event_time(p.event_time_ms, bounds);
}

struct Checker<'a> {
    index: usize,
    out: &'a mut Vec<Violation>,
}

impl Checker<'_> {
    fn fail(&mut self, field: &str, reason: impl Into<String>) {
        self.out.push(Violation::new(self.index, field, reason));
    }

    fn id(&mut self, field: &str, value: &str) {
        if let Err(reason) = id(value) {
            self.fail(field, reason);
        }
    }

    fn token(&mut self, field: &str, value: &str) {
        if let Err(reason) = token(value) {
            self.fail(field, reason);
        }
    }

    fn video_id(&mut self, field: &str, value: i64) {
        if value <= 0 {
            self.fail(field, format!("must be a positive integer, got {value}"));
        }
    }

    fn country(&mut self, value: &str) {
        if !is_country(value) {
            self.fail(
                "country",
                format!("must be an ISO 3166-1 alpha-2 code in upper case (e.g. US), got {value:?}"),
            );
        }
    }

    fn event_time(&mut self, ms: i64, bounds: &TimeBounds) {
        if ms < bounds.earliest_ms {
            self.fail(
                "event_time",
                format!(
                    "{} is older than the oldest accepted event time {}",
                    show(ms),
                    show(bounds.earliest_ms)
                ),
            );
        } else if ms > bounds.latest_ms {
            self.fail(
                "event_time",
                format!(
                    "{} is further ahead of the server clock than allowed (latest accepted: {})",
                    show(ms),
                    show(bounds.latest_ms)
                ),
            );
        }
    }

    fn explore(&mut self, explore: &Explore) {
        self.id("explore.policy", &explore.policy);
        self.id("explore.model_version", &explore.model_version);
        let p = explore.propensity;
        // Written so that NaN fails too.
        if !(p > 0.0 && p <= 1.0) {
            self.fail("explore.propensity", format!("must be in (0, 1], got {p}"));
        }
        if explore.candidates.len() > MAX_EXPLORE_CANDIDATES {
            self.fail(
                "explore.candidates",
                format!("holds {} titles; at most {MAX_EXPLORE_CANDIDATES}", explore.candidates.len()),
            );
        }
        for (i, candidate) in explore.candidates.iter().enumerate().take(MAX_EXPLORE_CANDIDATES) {
            self.video_id(&format!("explore.candidates[{i}]"), *candidate);
        }
        let artworks = &explore.candidate_artworks;
        if artworks.len() > MAX_EXPLORE_CANDIDATES {
            self.fail(
                "explore.candidate_artworks",
                format!("holds {} titles; at most {MAX_EXPLORE_CANDIDATES}", artworks.len()),
            );
        }
        // Past a bound, one message says so rather than hundreds of field errors.
        for (i, c) in artworks.iter().enumerate().take(MAX_EXPLORE_CANDIDATES) {
            let at = format!("explore.candidate_artworks[{i}]");
            self.video_id(&format!("{at}.video_id"), c.video_id);
            if c.artwork_ids.len() > MAX_ARTWORKS {
                self.fail(
                    &format!("{at}.artwork_ids"),
                    format!("holds {} artworks; at most {MAX_ARTWORKS}", c.artwork_ids.len()),
                );
            }
            for (j, a) in c.artwork_ids.iter().enumerate().take(MAX_ARTWORKS) {
                if let Err(reason) = artwork_id(a) {
                    self.fail(&format!("{at}.artwork_ids[{j}]"), reason);
                }
            }
        }
        if let Some(c) = &explore.context {
            if !is_country(&c.country) {
                self.fail(
                    "explore.context.country",
                    format!(
                        "must be an ISO 3166-1 alpha-2 code in upper case (e.g. US), got {:?}",
                        c.country
                    ),
                );
            }
            self.token("explore.context.device", &c.device);
            if c.hour_of_day > 23 {
                self.fail("explore.context.hour_of_day", format!("must be 0..=23, got {}", c.hour_of_day));
            }
        }
    }
}

/// An event time for error messages: RFC 3339 when representable, else the raw number.
fn show(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// Checks an id: 1..=128 characters, none of them a control character.
pub fn id(value: &str) -> Result<(), String> {
    let chars = value.chars().count();
    if chars == 0 {
        Err("is required and must not be empty".into())
    } else if chars > MAX_ID_CHARS {
        Err(format!("must be at most {MAX_ID_CHARS} characters, got {chars}"))
    } else {
        printable(value)
    }
}

/// Checks that text holds no control character (NUL included, which no database
/// stores): the first one is named by code point and position.
pub fn printable(value: &str) -> Result<(), String> {
    match value.chars().enumerate().find(|(_, c)| c.is_control()) {
        Some((at, c)) => {
            Err(format!("must not contain control characters, found U+{:04X} at character {at}", c as u32))
        }
        None => Ok(()),
    }
}

/// Most candidate titles an `explore` block lists.
pub const MAX_EXPLORE_CANDIDATES: usize = 256;
/// Most artworks of one title (in the catalog and in `explore.candidate_artworks`).
pub const MAX_ARTWORKS: usize = 64;

/// Checks an artwork id: `[A-Za-z0-9._-]{1,64}`.
pub fn artwork_id(value: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(format!("must match [A-Za-z0-9._-]{{1,64}}, got {value:?}")) }
}

/// Checks a token: `[a-z0-9_-]{1,32}`.
pub fn token(value: &str) -> Result<(), String> {
    let ok = (1..=MAX_TOKEN_CHARS).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok { Ok(()) } else { Err(format!("must match [a-z0-9_-]{{1,{MAX_TOKEN_CHARS}}}, got {value:?}")) }
}

/// Whether `code` is an officially assigned ISO 3166-1 alpha-2 country code.
pub fn is_country(code: &str) -> bool {
    COUNTRIES.binary_search(&code).is_ok()
}

/// The officially assigned ISO 3166-1 alpha-2 codes, sorted.
const COUNTRIES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA",
    "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV",
    "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU",
    "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES",
    "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM",
    "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID", "IE",
    "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM",
    "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY",
    "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT",
    "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU",
    "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA",
    "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM",
    "SN", "SO", "SR", "SS", "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL",
    "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE",
    "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

#[cfg(test)]
mod tests;
