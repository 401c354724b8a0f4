//! One SQL text for both backends (SQLite and PostgreSQL, through sqlx's
//! `Any` driver). Queries are written once with `?` marks (or `?N` where a
//! value is used twice), composed from fragments where they must be;
//! `render` numbers the marks `$1…$n` at the end, which PostgreSQL requires
//! and SQLite reads as the same positions (sqlx binds SQLite's `$NNN` by
//! number). Numbering at the end, not in the fragments, keeps a fragment
//! reusable in any query.
//!
//! Where the two dialects differ in more than the marks (how a writing
//! transaction begins, the WAL, VACUUM), the code matches on `Backend`.

use std::fmt::Write as _;

use sqlx::any::{Any, AnyArguments, AnyRow};
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::{
    AnyConnection, AnyPool, Arguments, AssertSqlSafe, Connection, Encode, FromRow, Transaction,
    Type,
};

use super::StoreError;

/// Which database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub(super) fn of(conn: &AnyConnection) -> Backend {
        if conn.backend_name().eq_ignore_ascii_case("postgresql") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// The key of the one advisory lock every writing transaction on
/// PostgreSQL takes (`begin`): an arbitrary constant, "VISYNC" in ASCII.
const WRITER_LOCK: i64 = 0x56_49_53_59_4e_43;

/// `?` marks outside quoted text become `$1…$n`; a numbered `?N` keeps
/// its number (a query uses one or the other).
pub fn render(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let (mut n, mut quoted) = (0, false);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            '?' if !quoted => {
                n += 1;
                let _ = write!(out, "${n}");
            }
            _ => out.push(c),
        }
    }
    out
}

pub fn query(sql: impl AsRef<str>) -> Query<'static, Any, AnyArguments> {
    sqlx::query(AssertSqlSafe(render(sql.as_ref())))
}

pub fn query_as<T>(sql: impl AsRef<str>) -> QueryAs<'static, Any, T, AnyArguments>
where
    T: for<'r> FromRow<'r, AnyRow>,
{
    sqlx::query_as(AssertSqlSafe(render(sql.as_ref())))
}

pub fn query_scalar<T>(sql: impl AsRef<str>) -> QueryScalar<'static, Any, T, AnyArguments>
where
    (T,): for<'r> FromRow<'r, AnyRow>,
{
    sqlx::query_scalar(AssertSqlSafe(render(sql.as_ref())))
}

/// Begins a transaction that writes. SQLite: `BEGIN IMMEDIATE`, since the
/// daemon's jobs run side by side and a deferred transaction that read
/// first and writes second fails at once with "database is locked" when
/// another wrote in between; an immediate one waits its turn under the
/// busy timeout. PostgreSQL: the transaction takes one advisory lock that
/// every writer takes, so that writers take turns there too, whichever
/// instance they run in: every invariant the store keeps on SQLite (a plan
/// reads its baseline and writes its changes as one step) holds unchanged.
/// Reads, claims and the calls to the index do not take it.
pub async fn begin(conn: &mut AnyConnection) -> Result<Transaction<'_, sqlx::Any>, StoreError> {
    match Backend::of(conn) {
        Backend::Sqlite => Ok(Connection::begin_with(conn, "BEGIN IMMEDIATE").await?),
        Backend::Postgres => {
            let mut tx = Connection::begin(conn).await?;
            take_turn(&mut tx).await?;
            Ok(tx)
        }
    }
}

/// `begin` on a connection of the pool, held by the transaction.
pub async fn begin_pool(
    pool: &AnyPool,
    backend: Backend,
) -> Result<Transaction<'static, sqlx::Any>, StoreError> {
    match backend {
        Backend::Sqlite => Ok(pool.begin_with("BEGIN IMMEDIATE").await?),
        Backend::Postgres => {
            let mut tx = pool.begin().await?;
            take_turn(&mut tx).await?;
            Ok(tx)
        }
    }
}

async fn take_turn(conn: &mut AnyConnection) -> Result<(), StoreError> {
    query("SELECT pg_advisory_xact_lock(?)")
        .bind(WRITER_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

/// A query whose length depends on its input (lists of values): `?` marks
/// pushed with their values, rendered at `build`.
pub struct Builder {
    sql: String,
    args: AnyArguments,
    error: Option<sqlx::error::BoxDynError>,
}

impl Builder {
    pub fn new(sql: &str) -> Builder {
        Builder {
            sql: sql.to_string(),
            args: AnyArguments::default(),
            error: None,
        }
    }

    pub fn push(&mut self, sql: impl AsRef<str>) -> &mut Builder {
        self.sql.push_str(sql.as_ref());
        self
    }

    pub fn push_bind<'t, T: Encode<'t, Any> + Type<Any>>(&mut self, value: T) -> &mut Builder {
        if let Err(e) = self.args.add(value) {
            self.error.get_or_insert(e);
        }
        self.sql.push('?');
        self
    }

    /// `?, ?, …`, one for each value.
    pub fn push_list<'t, T: Encode<'t, Any> + Type<Any>>(
        &mut self,
        values: impl IntoIterator<Item = T>,
    ) -> &mut Builder {
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.push_bind(v);
        }
        self
    }

    /// `VALUES (…), (…)`: `row` pushes one tuple's values with `push_bind`.
    pub fn push_values<I>(
        &mut self,
        items: impl IntoIterator<Item = I>,
        mut row: impl FnMut(&mut Values<'_>, I),
    ) -> &mut Builder {
        self.sql.push_str("VALUES ");
        for (i, item) in items.into_iter().enumerate() {
            self.sql.push_str(if i > 0 { ", (" } else { "(" });
            row(&mut Values { b: self, n: 0 }, item);
            self.sql.push(')');
        }
        self
    }

    pub fn build(self) -> Query<'static, Any, AnyArguments> {
        let sql = AssertSqlSafe(render(&self.sql));
        match self.error {
            None => sqlx::query_with(sql, self.args),
            // A value that cannot be bound fails the query when it runs,
            // as `Query::bind` does.
            Some(e) => sqlx::query_with(sql, self.args).bind(Unbindable(e.to_string())),
        }
    }
}

/// Fails when bound: carries a `push_bind`'s error to the query's run.
struct Unbindable(String);

impl Type<Any> for Unbindable {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <str as Type<Any>>::type_info()
    }
}

impl Encode<'_, Any> for Unbindable {
    fn encode_by_ref(
        &self,
        _: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        Err(self.0.clone().into())
    }
}

/// One tuple of `Builder::push_values`.
pub struct Values<'b> {
    b: &'b mut Builder,
    n: usize,
}

impl Values<'_> {
    pub fn push_bind<'t, T: Encode<'t, Any> + Type<Any>>(&mut self, value: T) -> &mut Self {
        if self.n > 0 {
            self.b.sql.push_str(", ");
        }
        self.n += 1;
        self.b.push_bind(value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn marks_are_numbered_outside_quoted_text_only() {
        assert_eq!(
            render("SELECT '?', a FROM t WHERE b = ? AND c IN (?, ?) AND d = 'it''s ?'"),
            "SELECT '?', a FROM t WHERE b = $1 AND c IN ($2, $3) AND d = 'it''s ?'"
        );
        assert_eq!(render("SELECT 1"), "SELECT 1");
        assert_eq!(
            render("VALUES (?1, ?2, CASE WHEN ?2 IS NULL THEN ?1 END)"),
            "VALUES ($1, $2, CASE WHEN $2 IS NULL THEN $1 END)"
        );
    }
}
