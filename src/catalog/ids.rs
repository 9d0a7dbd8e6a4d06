//! The SQL side of `model`'s id newtypes: each binds and reads as the TEXT column it is
//! stored in, so catalog rows carry typed ids and a query takes the id it means (a channel
//! id where a channel id belongs). Here and not in `model`, which imports nothing (no
//! rusqlite there). May import: `model` only.

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::model::{ChannelId, EmojiId, FileId, PostId, TeamId, UserId};

macro_rules! sql_text {
    ($($id:ty),*) => {$(
        impl ToSql for $id {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $id {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                String::column_result(value).map(<$id>::from)
            }
        }
    )*};
}

sql_text!(TeamId, ChannelId, PostId, FileId, UserId, EmojiId);
