//! SQL of a cluster of relay nodes on one PostgreSQL (`crate::cluster`): the nodes and their
//! heartbeats, each phone's links per node, the per-account routing leases, and the triggers
//! that wake other nodes through `NOTIFY` (`super::notify`).
//!
//! Every time in these tables is PostgreSQL's clock ([`NOW_MS`]), never a node's, so nodes
//! with skewed clocks still agree on which heartbeat is fresh and which lease has run out.
//!
//! [`ClusterDb`] holds a connection of its own (outside the writer's lock: heartbeats and
//! leases are single-row statements that must not wait behind a group commit); the presence
//! rows that must change with a phone's state (link up and down, the offline decision) are
//! written through [`PgTx`] in the store's transactions.

use std::sync::Mutex;

use ::postgres::Config;

use super::conn::{self, Conn};
use super::{PgTx, get};
use crate::store::tx::LinkPresence;
use crate::store::{Result, StoreError};

/// The schema step that adds the cluster's tables and wake-up triggers.
pub const CLUSTER_STEP: &str = r#"
CREATE TABLE cluster_nodes (
    node_id         TEXT PRIMARY KEY,
    url             TEXT,
    heartbeat_at    BIGINT NOT NULL
);
CREATE TABLE phone_links (
    phone_id    TEXT NOT NULL,
    node_id     TEXT NOT NULL,
    link_id     BIGINT NOT NULL,
    since       BIGINT NOT NULL,
    down_at     BIGINT,
    PRIMARY KEY (phone_id, node_id)
);
CREATE TABLE route_leases (
    account_id  TEXT PRIMARY KEY,
    node_id     TEXT NOT NULL,
    until_ms    BIGINT NOT NULL
);
CREATE FUNCTION cluster_frames_notify() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
DECLARE p TEXT;
BEGIN
    FOR p IN SELECT DISTINCT phone_id FROM new_rows LOOP
        PERFORM pg_notify('simrelay_wake', current_schema() || ' f ' || p);
    END LOOP;
    RETURN NULL;
END $$;
CREATE FUNCTION cluster_route_notify() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_notify('simrelay_wake', current_schema() || ' r');
    RETURN NULL;
END $$;
CREATE TRIGGER cluster_frames_notify AFTER INSERT ON frames
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cluster_frames_notify();
CREATE TRIGGER cluster_messages_notify AFTER INSERT ON messages
    FOR EACH STATEMENT EXECUTE FUNCTION cluster_route_notify();
CREATE TRIGGER cluster_links_notify AFTER INSERT OR UPDATE ON phone_links
    FOR EACH STATEMENT EXECUTE FUNCTION cluster_route_notify();
"#;

/// PostgreSQL's clock in Unix milliseconds, as SQL.
macro_rules! now_ms {
    () => {
        "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
    };
}

/// `EXISTS` a live link of phone `p.id`: up, on a node whose heartbeat is younger than `$1` ms.
macro_rules! live_link {
    () => {
        concat!(
            "EXISTS (SELECT 1 FROM phone_links l JOIN cluster_nodes n USING (node_id)
               WHERE l.phone_id = p.id AND l.down_at IS NULL
                 AND n.heartbeat_at > ",
            now_ms!(),
            " - $1)"
        )
    };
}

/// PostgreSQL's clock in Unix milliseconds, as SQL.
pub const NOW_MS: &str = now_ms!();

impl PgTx<'_> {
    /// Records this node's link `link` of the phone (replacing an older one of the node).
    pub(crate) fn cluster_link_up(&mut self, phone: &str, node: &str, link: u64) -> Result<()> {
        let link = super::big_seq(link)?;
        self.c.execute(
            concat!(
                "INSERT INTO phone_links AS l (phone_id, node_id, link_id, since, down_at)
                 VALUES ($1, $2, $3, ",
                now_ms!(),
                ", NULL)
                 ON CONFLICT (phone_id, node_id) DO UPDATE
                 SET link_id = EXCLUDED.link_id, since = EXCLUDED.since, down_at = NULL"
            ),
            &[&phone, &node, &link],
        )?;
        Ok(())
    }

    /// Marks the link down, if it is still the node's current one for the phone.
    pub(crate) fn cluster_link_down(&mut self, phone: &str, node: &str, link: u64) -> Result<()> {
        let link = super::big_seq(link)?;
        self.c.execute(
            concat!(
                "UPDATE phone_links SET down_at = ",
                now_ms!(),
                " WHERE phone_id = $1 AND node_id = $2 AND link_id = $3 AND down_at IS NULL"
            ),
            &[&phone, &node, &link],
        )?;
        Ok(())
    }

    /// The phone's links: live ones (up on a node heard within `stale_ms`) and since when the
    /// others are gone.
    pub(crate) fn cluster_link_presence(
        &mut self,
        phone: &str,
        stale_ms: i64,
    ) -> Result<LinkPresence> {
        let r = self.c.query_one(
            concat!(
                "SELECT count(*) FILTER (WHERE live),
                        t.now - max(gone) FILTER (WHERE NOT live)
                 FROM (SELECT ",
                now_ms!(),
                " AS now) t
                 LEFT JOIN LATERAL (
                    SELECT l.down_at IS NULL AND coalesce(n.heartbeat_at, 0) > t.now - $2 AS live,
                           coalesce(l.down_at, n.heartbeat_at, 0) AS gone
                    FROM phone_links l LEFT JOIN cluster_nodes n USING (node_id)
                    WHERE l.phone_id = $1) x ON true
                 GROUP BY t.now"
            ),
            &[&phone, &stale_ms],
        )?;
        let live: i64 = get(&r, 0)?;
        Ok(LinkPresence {
            live: u32::try_from(live).unwrap_or(u32::MAX),
            gone_for_ms: get(&r, 1)?,
        })
    }
}

/// An online phone of the cluster as the router reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPhone {
    pub account: String,
    pub phone: String,
    /// The phone's last status (JSON as stored), if any.
    pub status_json: Option<String>,
}

/// The cluster's own connection (heartbeats, leases, the router's view).
pub struct ClusterDb {
    config: Config,
    conn: Mutex<Option<Conn>>,
}

impl std::fmt::Debug for ClusterDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterDb")
    }
}

impl ClusterDb {
    /// Parses `url` (connections are made on first use and again after a loss).
    pub fn new(url: &str) -> Result<Self> {
        Ok(Self {
            config: conn::parse_url(url)?,
            conn: Mutex::new(None),
        })
    }

    /// The URL's configuration (the wake-up listener connects with it).
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn with<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_none_or(Conn::is_closed) {
            let old = guard.take();
            *guard = Some(Conn::connect(&self.config)?);
            conn::close(old.into_iter().collect());
        }
        let c = guard.as_mut().expect("a connection was just made");
        let out = f(c);
        if c.is_closed() {
            conn::close(guard.take().into_iter().collect());
        }
        out
    }

    /// A node starting: its heartbeat, and no link rows left from an earlier run of the same
    /// node id.
    pub fn start(&self, node: &str, url: Option<&str>) -> Result<()> {
        self.heartbeat(node, url)?;
        self.with(|c| {
            c.execute("DELETE FROM phone_links WHERE node_id = $1", &[&node])?;
            Ok(())
        })
    }

    /// Renews the node's heartbeat.
    pub fn heartbeat(&self, node: &str, url: Option<&str>) -> Result<()> {
        self.with(|c| {
            c.execute(
                concat!(
                    "INSERT INTO cluster_nodes (node_id, url, heartbeat_at) VALUES ($1, $2, ",
                    now_ms!(),
                    ") ON CONFLICT (node_id) DO UPDATE
                     SET url = EXCLUDED.url, heartbeat_at = EXCLUDED.heartbeat_at"
                ),
                &[&node, &url],
            )?;
            Ok(())
        })
    }

    /// A node stopping: its links are down now, its leases free, its row gone.
    pub fn stop(&self, node: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                concat!(
                    "UPDATE phone_links SET down_at = ",
                    now_ms!(),
                    " WHERE node_id = $1 AND down_at IS NULL"
                ),
                &[&node],
            )?;
            c.execute("DELETE FROM route_leases WHERE node_id = $1", &[&node])?;
            c.execute("DELETE FROM cluster_nodes WHERE node_id = $1", &[&node])?;
            Ok(())
        })
    }

    /// Phones that are not removed and have a live link (see [`live_link!`]), by account.
    pub fn online_phones(&self, stale_ms: i64) -> Result<Vec<ClusterPhone>> {
        self.with(|c| {
            c.query(
                concat!(
                    "SELECT p.account_id, p.id, p.status_json FROM phones p
                     WHERE p.removed_at IS NULL AND ",
                    live_link!(),
                    " ORDER BY p.account_id COLLATE \"C\", p.id COLLATE \"C\""
                ),
                &[&stale_ms],
            )?
            .iter()
            .map(|r| {
                Ok(ClusterPhone {
                    account: get(r, 0)?,
                    phone: get(r, 1)?,
                    status_json: get(r, 2)?,
                })
            })
            .collect()
        })
    }

    /// Phones marked online without a live link anywhere (their last link's node died, or
    /// its grace was lost with it): every node gives them the grace.
    pub fn orphaned_online(&self, stale_ms: i64) -> Result<Vec<String>> {
        self.with(|c| {
            c.query(
                concat!(
                    "SELECT p.id FROM phones p WHERE p.online AND p.removed_at IS NULL AND NOT ",
                    live_link!()
                ),
                &[&stale_ms],
            )?
            .iter()
            .map(|r| get(r, 0))
            .collect()
        })
    }

    /// Takes or renews the routing lease of each of `accounts` for `lease_ms`: a lease is
    /// taken when free, run out, or the node's own. Returns the accounts the node holds.
    pub fn claim_leases(
        &self,
        node: &str,
        accounts: &[&str],
        lease_ms: i64,
    ) -> Result<Vec<String>> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        self.with(|c| {
            c.query(
                concat!(
                    "INSERT INTO route_leases AS l (account_id, node_id, until_ms)
                     SELECT a, $1, ",
                    now_ms!(),
                    " + $3 FROM unnest($2::text[]) AS a
                     ON CONFLICT (account_id) DO UPDATE
                     SET node_id = EXCLUDED.node_id, until_ms = EXCLUDED.until_ms
                     WHERE l.node_id = EXCLUDED.node_id OR l.until_ms < ",
                    now_ms!(),
                    " RETURNING account_id"
                ),
                &[&node, &accounts, &lease_ms],
            )?
            .iter()
            .map(|r| get(r, 0))
            .collect()
        })
    }

    /// Forgets link rows gone, and nodes silent, for longer than `keep_ms`.
    pub fn prune(&self, keep_ms: i64) -> Result<()> {
        self.with(|c| {
            c.execute(
                concat!(
                    "DELETE FROM phone_links l WHERE coalesce(l.down_at,
                       (SELECT n.heartbeat_at FROM cluster_nodes n WHERE n.node_id = l.node_id),
                       0) < ",
                    now_ms!(),
                    " - $1"
                ),
                &[&keep_ms],
            )?;
            c.execute(
                concat!(
                    "DELETE FROM cluster_nodes WHERE heartbeat_at < ",
                    now_ms!(),
                    " - $1"
                ),
                &[&keep_ms],
            )?;
            Ok(())
        })
    }
}

impl Drop for ClusterDb {
    fn drop(&mut self) {
        let c = self
            .conn
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        conn::close(c.into_iter().collect());
    }
}

/// A store error for a cluster misuse (a cluster needs PostgreSQL).
pub fn needs_postgres() -> StoreError {
    StoreError::Postgres("a cluster of nodes needs database_url (PostgreSQL)".into())
}
