//! `simrelay migrate --from sqlite:PATH --to postgres://...`: copies every table of a relay's
//! SQLite file into an empty PostgreSQL database.
//!
//! The SQLite file is first brought to its newest schema (what the relay does when it opens
//! it), the PostgreSQL one is created or migrated to [`schema::VERSION`] and must hold no row.
//! Then, in one transaction that holds the writers' lock: each table of [`schema::TABLES`] is
//! copied (`COPY ... FROM STDIN BINARY`, the columns the PostgreSQL table has, read by name
//! from SQLite), its row count is compared with SQLite's, and its identity counter is advanced
//! past the copied ids (and past SQLite's `AUTOINCREMENT` counter, so that no cursor a client
//! holds is handed out again). Any difference rolls the whole copy back.
//!
//! Errors name tables and columns, never a value.

use std::path::Path;

use ::postgres::binary_copy::BinaryCopyInWriter;
use ::postgres::types::{ToSql, Type};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::{PgBackend, schema};
use crate::store::{Result, StoreError};

/// Rows copied, per table, in copy order.
pub type Copied = Vec<(String, u64)>;

fn fail(text: String) -> StoreError {
    StoreError::Postgres(text)
}

/// Parses `sqlite:PATH` (a bare path is taken as one too).
pub fn sqlite_path(from: &str) -> &Path {
    Path::new(from.strip_prefix("sqlite:").unwrap_or(from))
}

/// Copies the relay's SQLite file at `sqlite` into the PostgreSQL database at `url`.
pub fn sqlite_to_postgres(sqlite: &Path, url: &str) -> Result<Copied> {
    if !sqlite.is_file() {
        return Err(fail(format!("no SQLite file at {}", sqlite.display())));
    }
    let mut src = Connection::open_with_flags(
        sqlite,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(std::time::Duration::from_secs(10))?;
    crate::store::schema::migrate(&mut src)?;
    check_tables(&src)?;
    let store = PgBackend::open(url)?;
    store.connections().write(|conn| {
        let client = conn.client();
        for table in schema::TABLES {
            let any: bool = client
                .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])
                .map_err(StoreError::from_pg)?
                .get(0);
            if any {
                return Err(fail(format!(
                    "the target database is not empty (table {table} has rows): migrate copies \
                     into an empty database only"
                )));
            }
        }
        let mut copied = Vec::new();
        for table in schema::TABLES {
            if *table == "recipient_history" {
                // Copying `recipients` fired the history trigger: the copied history replaces
                // what it wrote.
                client
                    .batch_execute("DELETE FROM recipient_history")
                    .map_err(StoreError::from_pg)?;
            }
            let n = copy_table(&src, client, table)?;
            copied.push(((*table).to_string(), n));
        }
        Ok(copied)
    })
}

/// The SQLite file must hold exactly the tables the PostgreSQL schema has (and the ones kept
/// by triggers): a table of one and not the other is a schema the copier does not know.
fn check_tables(src: &Connection) -> Result<()> {
    let mut stmt = src.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name != 'message_counts' ORDER BY name",
    )?;
    let found: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut want: Vec<&str> = schema::TABLES.to_vec();
    want.sort_unstable();
    if found != want {
        return Err(fail(format!(
            "the SQLite file's tables ({}) are not the ones this relay copies ({})",
            found.join(", "),
            want.join(", ")
        )));
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Bool,
    Text,
}

fn copy_table(src: &Connection, client: &mut ::postgres::Client, table: &str) -> Result<u64> {
    let cols: Vec<(String, Kind, bool)> = client
        .query(
            "SELECT column_name::text, data_type::text, is_identity::text = 'YES' \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .map_err(StoreError::from_pg)?
        .into_iter()
        .filter(|r| {
            let name: &str = r.get(0);
            !schema::PG_ONLY_COLUMNS.contains(&(table, name))
        })
        .map(|r| {
            let name: String = r.get(0);
            let kind = match r.get::<_, String>(1).as_str() {
                "bigint" => Ok(Kind::Int),
                "boolean" => Ok(Kind::Bool),
                "text" => Ok(Kind::Text),
                other => Err(fail(format!("{table}.{name}: no copy for type {other}"))),
            }?;
            Ok((name, kind, r.get(2)))
        })
        .collect::<Result<_>>()?;
    let names: Vec<&str> = cols.iter().map(|(n, _, _)| n.as_str()).collect();
    let types: Vec<Type> = cols
        .iter()
        .map(|(_, k, _)| match k {
            Kind::Int => Type::INT8,
            Kind::Bool => Type::BOOL,
            Kind::Text => Type::TEXT,
        })
        .collect();
    // Unquoted: SQLite reads an unknown double-quoted name as a string literal. The names are
    // the schema's own plain identifiers.
    let list = names.join(", ");
    let mut read = src
        .prepare(&format!("SELECT {list} FROM {table}"))
        .map_err(|_| {
            fail(format!(
                "the SQLite table {table} lacks a column of ({list})"
            ))
        })?;
    let sink = client
        .copy_in(&format!("COPY {table} ({list}) FROM STDIN BINARY"))
        .map_err(StoreError::from_pg)?;
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    let mut rows = read.query([])?;
    let mut read_n: u64 = 0;
    while let Some(row) = rows.next()? {
        let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(cols.len());
        for (i, (name, kind, _)) in cols.iter().enumerate() {
            values.push(convert(row.get_ref(i)?, *kind).ok_or_else(|| {
                fail(format!("{table}.{name}: a value of a type it cannot hold"))
            })?);
        }
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(AsRef::as_ref).collect();
        writer.write(&refs).map_err(StoreError::from_pg)?;
        read_n += 1;
    }
    let written = writer.finish().map_err(StoreError::from_pg)?;
    let stored: i64 = client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .map_err(StoreError::from_pg)?
        .get(0);
    let in_sqlite: i64 =
        src.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
    if written != read_n || u64::try_from(stored).ok() != Some(read_n) || stored != in_sqlite {
        return Err(fail(format!(
            "{table}: {in_sqlite} rows in SQLite, {read_n} read, {stored} in PostgreSQL"
        )));
    }
    for (name, _, identity) in &cols {
        if *identity {
            advance_identity(src, client, table, name)?;
        }
    }
    Ok(read_n)
}

/// Moves the identity counter of `table.col` past its highest copied id and past SQLite's
/// `AUTOINCREMENT` counter for the table.
fn advance_identity(
    src: &Connection,
    client: &mut ::postgres::Client,
    table: &str,
    col: &str,
) -> Result<()> {
    let max_id: Option<i64> = client
        .query_one(&format!("SELECT max({col}) FROM {table}"), &[])
        .map_err(StoreError::from_pg)?
        .get(0);
    let counter: Option<i64> = src
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = ?1",
            [table],
            |r| r.get(0),
        )
        .ok();
    let last = max_id.unwrap_or(0).max(counter.unwrap_or(0));
    if last > 0 {
        client
            .execute(
                "SELECT setval(pg_get_serial_sequence($1, $2), $3, true)",
                &[&table, &col, &last],
            )
            .map_err(StoreError::from_pg)?;
    }
    Ok(())
}

/// A SQLite value as the PostgreSQL column's type; `None` for one it cannot be.
fn convert(v: ValueRef<'_>, kind: Kind) -> Option<Box<dyn ToSql + Sync>> {
    Some(match (v, kind) {
        (ValueRef::Null, Kind::Int) => Box::new(None::<i64>),
        (ValueRef::Null, Kind::Bool) => Box::new(None::<bool>),
        (ValueRef::Null, Kind::Text) => Box::new(None::<String>),
        (ValueRef::Integer(i), Kind::Int) => Box::new(i),
        (ValueRef::Integer(i), Kind::Bool) => Box::new(i != 0),
        (ValueRef::Integer(i), Kind::Text) => Box::new(i.to_string()),
        (ValueRef::Text(t), Kind::Text) => Box::new(std::str::from_utf8(t).ok()?.to_string()),
        (ValueRef::Text(t), Kind::Int) => {
            Box::new(std::str::from_utf8(t).ok()?.parse::<i64>().ok()?)
        }
        _ => return None,
    })
}
