//! [`Zone`]: the time zone an export writes local times in (file names of the Python layout,
//! times in Markdown and hgf): the machine's, as the Python tools' `datetime.fromtimestamp`
//! uses, or one named by `export --tz` (IANA name, looked up in jiff's time zone database,
//! the same lookup the website's `--tz` makes). It is a `chrono::TimeZone`, so the renderers
//! stay generic over the zone.
//!
//! May import: nothing of the crate (chrono and jiff only). Invariant: `Zone::Machine` is
//! exactly `chrono::Local`, so an export without `--tz` writes what it wrote before.

use std::fmt;

use chrono::{Datelike, Timelike};
use chrono::{
    FixedOffset, Local, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone,
};

/// The zone of local times in an export.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Zone {
    /// The machine's zone (`TZ`, else `/etc/localtime`), as `chrono::Local` reads it.
    #[default]
    Machine,
    /// A zone by IANA name.
    Named(jiff::tz::TimeZone),
}

/// An offset of a [`Zone`]; carries its zone so `from_offset` can give it back.
#[derive(Clone, Debug)]
pub struct ZoneOffset {
    fixed: FixedOffset,
    zone: Zone,
}

impl Zone {
    /// The zone named `name` (e.g. `Europe/Berlin`, `UTC`); `None` when the time zone
    /// database has no such zone.
    pub fn named(name: &str) -> Option<Zone> {
        jiff::tz::TimeZone::get(name).ok().map(Zone::Named)
    }

    fn offset(&self, fixed: FixedOffset) -> ZoneOffset {
        ZoneOffset {
            fixed,
            zone: self.clone(),
        }
    }
}

/// A jiff offset as chrono's; every offset jiff knows is within chrono's ±24 h.
fn fixed(offset: jiff::tz::Offset) -> FixedOffset {
    FixedOffset::east_opt(offset.seconds()).unwrap_or(FixedOffset::east_opt(0).expect("0 is valid"))
}

impl Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        self.fixed
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.fixed, f)
    }
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Zone {
        offset.zone.clone()
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<ZoneOffset> {
        self.offset_from_local_datetime(&local.and_time(NaiveTime::MIN))
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<ZoneOffset> {
        match self {
            Zone::Machine => Local
                .offset_from_local_datetime(local)
                .map(|f| self.offset(f)),
            Zone::Named(tz) => {
                let civil = jiff::civil::DateTime::new(
                    i16::try_from(local.year()).unwrap_or(i16::MAX),
                    local.month() as i8,
                    local.day() as i8,
                    local.hour() as i8,
                    local.minute() as i8,
                    local.second().min(59) as i8,
                    0,
                );
                let Ok(civil) = civil else {
                    return MappedLocalTime::None;
                };
                use jiff::tz::AmbiguousOffset;
                match tz.to_ambiguous_timestamp(civil).offset() {
                    AmbiguousOffset::Unambiguous { offset } => {
                        MappedLocalTime::Single(self.offset(fixed(offset)))
                    }
                    AmbiguousOffset::Fold { before, after } => MappedLocalTime::Ambiguous(
                        self.offset(fixed(before)),
                        self.offset(fixed(after)),
                    ),
                    AmbiguousOffset::Gap { .. } => MappedLocalTime::None,
                }
            }
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        self.offset_from_utc_datetime(&utc.and_time(NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        match self {
            Zone::Machine => self.offset(Local.offset_from_utc_datetime(utc)),
            Zone::Named(tz) => {
                let offset = jiff::Timestamp::from_second(utc.and_utc().timestamp())
                    .map(|ts| tz.to_offset(ts))
                    .unwrap_or(jiff::tz::Offset::UTC);
                self.offset(fixed(offset))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets from the IANA rules for Berlin (CET +1, CEST +2 from the last Sunday of March,
    /// 01:00 UTC, to the last Sunday of October), not from this code.
    #[test]
    fn a_named_zone_gives_its_offsets_and_the_time_on_the_wall() {
        let berlin = Zone::named("Europe/Berlin").unwrap();
        let at = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .with_timezone(&berlin)
                .format("%Y-%m-%d %H:%M:%S %:z")
                .to_string()
        };
        // 2024-01-15T12:00:00Z and 2024-07-15T12:00:00Z
        assert_eq!(at(1_705_320_000_000), "2024-01-15 13:00:00 +01:00");
        assert_eq!(at(1_721_044_800_000), "2024-07-15 14:00:00 +02:00");
        // 2024-03-31 02:30 does not exist in Berlin; 2024-10-27 02:30 happens twice.
        let gap = NaiveDate::from_ymd_opt(2024, 3, 31)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        assert!(matches!(
            berlin.offset_from_local_datetime(&gap),
            MappedLocalTime::None
        ));
        let fold = NaiveDate::from_ymd_opt(2024, 10, 27)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        match berlin.offset_from_local_datetime(&fold) {
            MappedLocalTime::Ambiguous(a, b) => {
                assert_eq!(
                    (a.fix().local_minus_utc(), b.fix().local_minus_utc()),
                    (7200, 3600)
                )
            }
            other => panic!("expected two offsets, got {other:?}"),
        }
        assert_eq!(Zone::named("Mars/Olympus_Mons"), None);
    }
}
