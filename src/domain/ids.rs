//! Identifiers that arrive from outside, validated once at the edge.

use std::fmt;

/// Longest catalog id we accept: ids travel inside Redis keys and hold ids.
pub const MAX_ID_LEN: usize = 64;

/// A catalog id (movie, theatre, screen, show): `[A-Za-z0-9_-]{1,64}`.
/// The restriction matters: show ids are embedded in Redis keys and in hold
/// ids (`<showId>.<uuid>`), so they must not contain `.`, `{`, `}` or `:`.
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShowId(String);

impl ShowId {
    pub fn parse(s: &str) -> Option<Self> {
        is_valid_id(s).then(|| Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A seat label: a row of one to three upper-case letters and a seat number
/// of 1 to 999, e.g. `A1`, `AA12`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeatId {
    pub row: String,
    pub number: u16,
}

impl SeatId {
    pub fn parse(s: &str) -> Option<Self> {
        let split = s.find(|c: char| !c.is_ascii_uppercase())?;
        let (row, num) = s.split_at(split);
        if row.is_empty() || row.len() > 3 || num.is_empty() || num.len() > 3 || num.starts_with('0') {
            return None;
        }
        if !num.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self {
            row: row.to_owned(),
            number: num.parse().ok()?,
        })
    }

    pub fn new(row: &str, number: u16) -> Self {
        Self {
            row: row.to_owned(),
            number,
        }
    }
}

impl fmt::Display for SeatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.row, self.number)
    }
}

/// A hold id: `<showId>.<uuid>`. Hold ids carry their show, so a hold can be
/// found from its id alone without a cross-slot index in Redis Cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HoldId {
    show: ShowId,
    text: String,
}

impl HoldId {
    pub fn new(show: &ShowId, id: uuid::Uuid) -> Self {
        Self {
            show: show.clone(),
            text: format!("{}.{}", show.as_str(), id.simple()),
        }
    }

    /// `None` for anything we did not mint.
    pub fn parse(s: &str) -> Option<Self> {
        let (show, id) = s.rsplit_once('.')?;
        uuid::Uuid::try_parse(id).ok()?;
        Some(Self {
            show: ShowId::parse(show)?,
            text: s.to_owned(),
        })
    }

    pub fn show(&self) -> &ShowId {
        &self.show
    }

    /// Whether this hold was minted before the state named by `epoch` was
    /// built. Hold ids and epochs are time-ordered UUIDs (v7): a hold the
    /// engine does not know, minted before its show's current epoch, lived
    /// in state that was lost (Redis restarted empty or failed over) and was
    /// rebuilt without it. `false` when either is not a v7 UUID.
    pub fn minted_before(&self, epoch: &str) -> bool {
        let (_, id) = self.text.rsplit_once('.').unwrap_or_default();
        match (v7_millis(id), v7_millis(epoch)) {
            (Some(hold), Some(state)) => hold < state,
            _ => false,
        }
    }

    /// When the hold was minted (Unix ms): `None` for an id whose UUID is
    /// not a v7 (we mint only v7s).
    pub fn minted_ms(&self) -> Option<u64> {
        let (_, id) = self.text.rsplit_once('.').unwrap_or_default();
        v7_millis(id)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The Unix milliseconds of a v7 UUID.
fn v7_millis(text: &str) -> Option<u64> {
    let id = uuid::Uuid::try_parse(text).ok()?;
    if id.get_version() != Some(uuid::Version::SortRand) {
        return None;
    }
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    Some(secs * 1000 + u64::from(nanos) / 1_000_000)
}

impl fmt::Display for HoldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_id_tells_when_it_was_minted_and_only_v7_ones_do() {
        let show = ShowId::parse("s-1").unwrap();
        let at = uuid::Timestamp::from_unix(uuid::NoContext, 1_800_000_000, 123_000_000);
        let v7 = HoldId::new(&show, uuid::Uuid::new_v7(at));
        assert_eq!(v7.minted_ms(), Some(1_800_000_000_123));
        let v4 = HoldId::new(&show, uuid::Uuid::new_v4());
        assert_eq!(v4.minted_ms(), None);
    }

    #[test]
    fn seat_ids_parse_row_and_number() {
        assert_eq!(SeatId::parse("A1"), Some(SeatId::new("A", 1)));
        assert_eq!(SeatId::parse("AB120"), Some(SeatId::new("AB", 120)));
        for bad in ["", "A", "1", "a1", "A01", "A1B", "ABCD1", "A1000", "A-1", "Á1"] {
            assert_eq!(SeatId::parse(bad), None, "{bad:?} must not parse");
        }
    }

    #[test]
    fn hold_ids_round_trip_their_show() {
        let show = ShowId::parse("20261125-pvr-1-1930").unwrap();
        let id = HoldId::new(&show, uuid::Uuid::new_v4());
        let parsed = HoldId::parse(id.as_str()).unwrap();
        assert_eq!((parsed.show(), &parsed), (&show, &id));
        assert_eq!(HoldId::parse("nodot"), None);
        assert_eq!(HoldId::parse("show.not-a-uuid"), None);
        assert_eq!(HoldId::parse("bad{tag}.00000000000000000000000000000000"), None);
    }

    #[test]
    fn a_hold_minted_before_an_epoch_is_known_as_older_than_its_state() {
        let show = ShowId::parse("s1").unwrap();
        let at = |ms: u64| {
            uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                ms / 1000,
                (ms % 1000) as u32 * 1_000_000,
            ))
        };
        let hold = HoldId::new(&show, at(1_000_000));
        let epoch = |ms| at(ms).simple().to_string();
        assert!(hold.minted_before(&epoch(1_000_001)));
        assert!(!hold.minted_before(&epoch(1_000_000)));
        assert!(!hold.minted_before(&epoch(999_000)));
        // Ids and epochs of other kinds say nothing.
        assert!(!HoldId::new(&show, uuid::Uuid::new_v4()).minted_before(&epoch(2_000_000)));
        assert!(!hold.minted_before(&uuid::Uuid::new_v4().simple().to_string()));
        assert!(!hold.minted_before(""));
    }

    #[test]
    fn catalog_ids_exclude_key_syntax() {
        assert!(is_valid_id("show_1-a"));
        for bad in ["", "a.b", "a{b}", "a:b", "a b", &"x".repeat(65)] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
    }
}
