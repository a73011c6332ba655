//! The request context a policy conditions on, and the context buckets of the
//! per-bucket bandits.
//!
//! Statistics are kept per *cell*, the full context (country, device, daypart); the
//! per-bucket bandits aggregate cells over the fields their configured bucket leaves
//! out, and the linear policy uses every field as a feature. Keeping the finest level
//! means the bucket definition can change without losing what was learned.

use std::fmt;
use std::sync::Arc;

/// Part of the (local) day, from the device's hour of day; plays differ far more
/// between evening and morning than between 20:00 and 21:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Daypart {
    /// 00:00–05:59.
    Night,
    /// 06:00–11:59.
    Morning,
    /// 12:00–17:59.
    Afternoon,
    /// 18:00–23:59.
    Evening,
}

impl Daypart {
    /// Every daypart, in order.
    pub const ALL: [Daypart; 4] = [Daypart::Night, Daypart::Morning, Daypart::Afternoon, Daypart::Evening];

    /// The daypart of a local hour 0..=23 (`None` beyond).
    pub fn of_hour(hour: u32) -> Option<Self> {
        match hour {
            0..=5 => Some(Daypart::Night),
            6..=11 => Some(Daypart::Morning),
            12..=17 => Some(Daypart::Afternoon),
            18..=23 => Some(Daypart::Evening),
            _ => None,
        }
    }

    /// Stable name (API and storage).
    pub fn as_str(self) -> &'static str {
        match self {
            Daypart::Night => "night",
            Daypart::Morning => "morning",
            Daypart::Afternoon => "afternoon",
            Daypart::Evening => "evening",
        }
    }

    /// The daypart named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Daypart::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// Index 0..4.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Daypart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated request context.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Context {
    /// ISO 3166-1 alpha-2 country code.
    pub country: Arc<str>,
    /// Device type token (`tv`, `mobile`, ...).
    pub device: Arc<str>,
    /// Local hour of day on the device, 0..=23.
    pub hour_of_day: u32,
}

impl Context {
    /// The cell this context falls in.
    pub fn cell(&self) -> Cell {
        Cell {
            country: self.country.clone(),
            device: self.device.clone(),
            daypart: Daypart::of_hour(self.hour_of_day).unwrap_or(Daypart::Night),
        }
    }
}

/// The finest context level statistics are kept at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    /// Country.
    pub country: Arc<str>,
    /// Device.
    pub device: Arc<str>,
    /// Daypart.
    pub daypart: Daypart,
}

/// Which context fields make a bucket of the per-bucket bandits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BucketFields {
    /// Buckets differ by country.
    pub country: bool,
    /// Buckets differ by device.
    pub device: bool,
    /// Buckets differ by daypart.
    pub daypart: bool,
}

impl BucketFields {
    /// Every field.
    pub const ALL: BucketFields = BucketFields { country: true, device: true, daypart: true };

    /// Parses field names (`country`, `device`, `daypart`); the unknown one on failure.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut fields = BucketFields { country: false, device: false, daypart: false };
        for name in names {
            match name {
                "country" => fields.country = true,
                "device" => fields.device = true,
                "daypart" => fields.daypart = true,
                other => return Err(other.to_string()),
            }
        }
        Ok(fields)
    }

    /// The bucket of `cell`: the cell with the fields left out blanked.
    pub fn bucket(self, cell: &Cell) -> Bucket {
        Bucket {
            country: self.country.then(|| cell.country.clone()),
            device: self.device.then(|| cell.device.clone()),
            daypart: self.daypart.then_some(cell.daypart),
        }
    }
}

/// A context bucket: a cell with some fields left out (`None` = any).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bucket {
    /// Country, when buckets differ by it.
    pub country: Option<Arc<str>>,
    /// Device, when buckets differ by it.
    pub device: Option<Arc<str>>,
    /// Daypart, when buckets differ by it.
    pub daypart: Option<Daypart>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_map_to_dayparts() {
        assert_eq!(Daypart::of_hour(0), Some(Daypart::Night));
        assert_eq!(Daypart::of_hour(6), Some(Daypart::Morning));
        assert_eq!(Daypart::of_hour(17), Some(Daypart::Afternoon));
        assert_eq!(Daypart::of_hour(23), Some(Daypart::Evening));
        assert_eq!(Daypart::of_hour(24), None);
    }

    #[test]
    fn buckets_blank_left_out_fields() {
        let cell = Cell { country: "US".into(), device: "tv".into(), daypart: Daypart::Evening };
        let fields = BucketFields::parse(["country", "daypart"]).unwrap();
        let bucket = fields.bucket(&cell);
        assert_eq!(bucket.country.as_deref(), Some("US"));
        assert_eq!(bucket.device, None);
        assert_eq!(bucket.daypart, Some(Daypart::Evening));
        assert_eq!(BucketFields::parse(["city"]), Err("city".to_string()));
    }
}
