//! The learner's lease: which instance of a consumer group writes the statistics.
//!
//! The statistics are read-modify-written from the learner's memory, so two instances
//! learning into one database (a red/black overlap, replicas behind an autoscaler) would
//! lose updates. One instance holds the lease row of its group and is the learner; the
//! others serve decisions from the saved statistics. The holder renews the lease in the
//! same transaction that saves a batch ([`crate::store::save`] checks it first and writes
//! nothing when it is lost), and by itself when idle; it deletes the row when it stops,
//! so a successor takes over at once. A holder killed outright loses the lease when it
//! expires. Renewal in the saving transaction is the fence: the row is locked (Postgres)
//! or the database is (SQLite) until the commit, so no one acquires in between.
//!
//! Expiry compares wall clocks of different hosts; keep `billboard.learner_lease` well
//! above the clock skew between them.

use std::time::Duration;

use nearline_storage::Database;

use crate::store::{execute, fetch_optional};

/// Extends the lease of group `$2` held by `$3` to `$1`; affects no row when it is not held.
pub(crate) const RENEW: &str =
    "UPDATE billboard_learner_lease SET expires_at_ms = $1 WHERE consumer_group = $2 AND holder = $3";

/// The lease of one consumer group, as one instance holds or wants it.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The consumer group it is the learner of.
    pub group: String,
    /// This instance: unique per process start.
    pub holder: String,
    /// How long it lasts without renewal.
    pub ttl: Duration,
}

impl Lease {
    /// A lease for `group` held (or wanted) by a new, unique holder.
    pub fn new(group: &str, ttl: Duration) -> Self {
        let holder = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        Self { group: group.to_string(), holder, ttl }
    }

    /// When a renewal at `now_ms` makes the lease expire.
    pub(crate) fn expires(&self, now_ms: i64) -> i64 {
        now_ms + self.ttl.as_millis() as i64
    }

    /// Takes the lease if no one holds it, it expired, or this instance holds it
    /// already; true when this instance holds it afterwards.
    pub async fn acquire(&self, database: &Database, now_ms: i64) -> Result<bool, sqlx::Error> {
        // One statement, so two instances racing for it cannot both win.
        const SQL: &str = "INSERT INTO billboard_learner_lease (consumer_group, holder, expires_at_ms) \
             VALUES ($1, $2, $3) \
             ON CONFLICT (consumer_group) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms \
             WHERE billboard_learner_lease.holder = excluded.holder OR billboard_learner_lease.expires_at_ms < $4 \
             RETURNING holder";
        let won: Option<(String,)> = fetch_optional!(
            database,
            (String,),
            SQL,
            &self.group,
            &self.holder,
            self.expires(now_ms),
            now_ms
        )?;
        Ok(won.is_some())
    }

    /// Takes the lease whoever holds it: only for an instance that knows it is alone.
    pub async fn take(&self, database: &Database, now_ms: i64) -> Result<(), sqlx::Error> {
        const SQL: &str = "INSERT INTO billboard_learner_lease (consumer_group, holder, expires_at_ms) \
             VALUES ($1, $2, $3) \
             ON CONFLICT (consumer_group) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms";
        execute!(database, SQL, &self.group, &self.holder, self.expires(now_ms)).map(|_| ())
    }

    /// Extends the lease by itself (when idle: saving a batch renews it too); false when
    /// this instance no longer holds it.
    pub async fn renew(&self, database: &Database, now_ms: i64) -> Result<bool, sqlx::Error> {
        let renewed = execute!(database, RENEW, self.expires(now_ms), &self.group, &self.holder)?;
        Ok(renewed == 1)
    }

    /// Gives the lease up (after the last save), so a successor need not wait for expiry.
    pub async fn release(&self, database: &Database) -> Result<(), sqlx::Error> {
        const SQL: &str = "DELETE FROM billboard_learner_lease WHERE consumer_group = $1 AND holder = $2";
        execute!(database, SQL, &self.group, &self.holder).map(|_| ())
    }
}
