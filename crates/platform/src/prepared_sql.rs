//! Hand-written SQL that Postgres parses and plans once per connection.
//!
//! `diesel::sql_query` marks every query "unsafe to cache", so each call is a fresh
//! Parse/Bind/Execute: Postgres re-parses, re-analyses and re-plans the statement every time,
//! which for the read endpoints' view queries costs more than running them. [`PreparedSql`]
//! is the same untyped, `QueryableByName` query, but safe to cache: diesel keeps it in the
//! connection's statement cache keyed by its text and bind types, so the second call on a
//! connection only binds and executes.
//!
//! Placeholders are written `$1`, `$2`, … as in Postgres and may repeat; each occurrence is
//! pushed as its own bind of the same value (diesel numbers binds itself). The SQL must not
//! contain a `$` followed by a digit anywhere else (no dollar-quoted bodies or such literals).

use std::marker::PhantomData;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::QueryResult;

/// A piece of the statement text: verbatim SQL, or the 1-based bind it references.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(std::ops::Range<usize>),
    Param(usize),
}

/// Raw SQL with `$n` binds that is prepared once per connection; see the module docs.
#[must_use = "Queries are only executed when calling `load`, `get_result` or similar."]
pub struct PreparedSql<'a> {
    sql: String,
    pieces: Vec<Piece>,
    binds: Vec<Box<dyn QueryFragment<Pg> + Send + 'a>>,
}

/// Starts a [`PreparedSql`] query.
pub fn prepared_sql<'a>(sql: impl Into<String>) -> PreparedSql<'a> {
    let sql = sql.into();
    let pieces = split(&sql);
    PreparedSql {
        sql,
        pieces,
        binds: Vec::new(),
    }
}

impl<'a> PreparedSql<'a> {
    /// Binds the next placeholder (`$1` first) to `value` as SQL type `ST`.
    pub fn bind<ST, U>(mut self, value: U) -> Self
    where
        Pg: HasSqlType<ST>,
        U: ToSql<ST, Pg> + Send + 'a,
        ST: Send + 'a,
    {
        self.binds.push(Box::new(Bind::<ST, U> {
            value,
            sql_type: PhantomData,
        }));
        self
    }
}

/// Splits `sql` at its `$n` placeholders.
fn split(sql: &str) -> Vec<Piece> {
    let bytes = sql.as_bytes();
    let mut pieces = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let digits = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if start < i {
                pieces.push(Piece::Text(start..i));
            }
            // At most a few dozen binds: the digits always fit.
            let n = sql[i + 1..i + 1 + digits].parse().unwrap_or(usize::MAX);
            pieces.push(Piece::Param(n));
            i += 1 + digits;
            start = i;
        } else {
            i += 1;
        }
    }
    if start < bytes.len() {
        pieces.push(Piece::Text(start..bytes.len()));
    }
    pieces
}

struct Bind<ST, U> {
    value: U,
    sql_type: PhantomData<ST>,
}

impl<ST, U> QueryFragment<Pg> for Bind<ST, U>
where
    Pg: HasSqlType<ST>,
    U: ToSql<ST, Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<ST, U>(&self.value)
    }
}

impl QueryFragment<Pg> for PreparedSql<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        for piece in &self.pieces {
            match piece {
                Piece::Text(range) => out.push_sql(&self.sql[range.clone()]),
                Piece::Param(n) => {
                    let bind = n
                        .checked_sub(1)
                        .and_then(|i| self.binds.get(i))
                        .ok_or_else(|| {
                            diesel::result::Error::QueryBuilderError(
                                format!("${n} has no bind ({} bound)", self.binds.len()).into(),
                            )
                        })?;
                    bind.walk_ast(out.reborrow())?;
                }
            }
        }
        Ok(())
    }
}

impl QueryId for PreparedSql<'_> {
    type QueryId = ();
    // Not static: diesel then keys the cached statement by its SQL text and bind types.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for PreparedSql<'_> {
    type SqlType = Untyped;
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::debug_query;
    use diesel::sql_types::{Integer, Text};

    #[test]
    fn placeholders_split_the_text_and_may_repeat() {
        let sql = "SELECT a FROM t WHERE x = $1 AND y = $12 OR x = $1::text";
        let shown: Vec<String> = split(sql)
            .into_iter()
            .map(|piece| match piece {
                Piece::Text(range) => sql[range].to_owned(),
                Piece::Param(n) => format!("<{n}>"),
            })
            .collect();
        assert_eq!(
            shown,
            [
                "SELECT a FROM t WHERE x = ",
                "<1>",
                " AND y = ",
                "<12>",
                " OR x = ",
                "<1>",
                "::text"
            ]
        );
        assert_eq!(split("$1"), vec![Piece::Param(1)]);
        assert_eq!(split("a $ b $x"), vec![Piece::Text(0..8)]);
        assert_eq!(split(""), vec![]);
    }

    #[test]
    fn repeated_placeholders_become_binds_of_the_same_value() {
        let query = prepared_sql("SELECT $2 || $1 WHERE $1 <> ''")
            .bind::<Text, _>("a")
            .bind::<Integer, _>(7);
        let shown = debug_query::<Pg, _>(&query).to_string();
        assert_eq!(
            shown,
            r#"SELECT $1 || $2 WHERE $3 <> '' -- binds: [7, "a", "a"]"#
        );
    }

    #[test]
    fn a_placeholder_without_a_bind_is_an_error_not_a_panic() {
        let query = prepared_sql("SELECT $1, $2").bind::<Integer, _>(1);
        assert!(QueryFragment::<Pg>::to_sql(
            &query,
            &mut diesel::pg::PgQueryBuilder::default(),
            &Pg
        )
        .is_err());
        let zero = prepared_sql("SELECT $0");
        assert!(QueryFragment::<Pg>::to_sql(
            &zero,
            &mut diesel::pg::PgQueryBuilder::default(),
            &Pg
        )
        .is_err());
    }

    #[test]
    fn it_is_safe_to_cache() {
        let query = prepared_sql("SELECT $1").bind::<Integer, _>(1);
        assert!(QueryFragment::<Pg>::is_safe_to_cache_prepared(&query, &Pg).unwrap());
        let raw = diesel::sql_query("SELECT $1").bind::<Integer, _>(1);
        assert!(!QueryFragment::<Pg>::is_safe_to_cache_prepared(&raw, &Pg).unwrap());
    }
}
