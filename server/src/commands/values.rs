//! Whole values copied out of a key and written whole into another: RENAME and the STORE
//! variants of set and sorted-set commands replace a destination key with a value of any type.

use super::{CmdError, CmdResult, Ctx};
use meridian_crdt::{format_score, Anchor, Body, Change, Collection, KeyState, Kind, ListEdit, TtlWrite};

/// A key's value as a reader sees it, owned.
pub enum Value {
    /// A string's bytes.
    String(Vec<u8>),
    /// A set's members.
    Set(Vec<Vec<u8>>),
    /// A hash's fields and values.
    Hash(Pairs),
    /// A sorted set's members and scores.
    Zset(Scored),
    /// A list's values, left to right.
    List(Vec<Vec<u8>>),
}

/// Sorted-set members with their scores, owned.
pub type Scored = Vec<(Vec<u8>, f64)>;

/// One member's change, borrowing the member and value.
type MemberChange<'a> = (&'a [u8], Change<&'a [u8]>);

/// A hash's fields and values, owned.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

impl Value {
    /// The value a reader of `state` sees, if any.
    pub fn of(state: &KeyState) -> Option<Value> {
        Some(match state.kind()? {
            Kind::String => Value::String(state.string().get()?.into_owned()),
            Kind::Set => Value::Set(state.set()?.iter().map(|(m, _)| m.to_vec()).collect()),
            Kind::Hash => Value::Hash(state.hash()?.iter().filter_map(|(f, v)| Some((f.to_vec(), v.get()?.into_owned()))).collect()),
            Kind::Zset => Value::Zset(state.zset()?.ordered().map(|(s, m)| (m.to_vec(), s)).collect()),
            Kind::List => Value::List(state.list()?.iter().map(|(_, v)| v.to_vec()).collect()),
        })
    }
}

/// Replaces `key` with `value` (removing all the key held, of any type) and gives it the TTL
/// `expire_at`. An empty collection deletes the key, as Redis does.
pub fn replace(ctx: &mut Ctx, key: &[u8], value: &Value, expire_at: Option<u64>) -> CmdResult {
    let seen = ctx.seen(key, false);
    if let Value::String(bytes) = value {
        ctx.write(key, Body::Set { seen, value: bytes, expire_at });
        return Ok(());
    }
    if !seen.is_empty() {
        ctx.write(key, Body::Del { seen });
    }
    if write_collection(ctx, key, value)? {
        if let Some(at) = expire_at {
            let seen = ctx.seen_ttl(key);
            ctx.write(key, Body::Expire { seen, at });
        }
    }
    Ok(())
}

/// Writes the elements of collection `value` into the emptied `key`; false if it has none
/// (a string is not a collection: false).
fn write_collection(ctx: &mut Ctx, key: &[u8], value: &Value) -> Result<bool, CmdError> {
    // A score travels as text, printed so that it parses back to the same double.
    let score_texts: Vec<String> = match value {
        Value::Zset(members) => members.iter().map(|(_, s)| format_score(*s)).collect(),
        _ => Vec::new(),
    };
    let (collection, changes): (Collection, Vec<MemberChange>) = match value {
        Value::String(_) => return Ok(false),
        Value::List(values) => {
            let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            let any = !values.is_empty();
            ctx.list_edit(key, |_| (if any { vec![ListEdit::Insert { anchor: Anchor::Tail, values }] } else { Vec::new() }, ()))?;
            return Ok(any);
        }
        Value::Set(members) => (Collection::Set, members.iter().map(|m| (&m[..], Change::Add)).collect()),
        Value::Hash(fields) => (Collection::Hash, fields.iter().map(|(f, v)| (&f[..], Change::Write(&v[..]))).collect()),
        Value::Zset(members) => (Collection::Zset, members.iter().zip(&score_texts).map(|((m, _), s)| (&m[..], Change::Write(s.as_bytes()))).collect()),
    };
    if changes.is_empty() {
        return Ok(false);
    }
    ctx.edit(key, collection, changes)?;
    Ok(true)
}

/// The TTL a write of `ttl` leaves, for [`replace`].
pub fn expiry_of(ttl: TtlWrite) -> Option<u64> {
    match ttl {
        TtlWrite::At(at) => Some(at),
        TtlWrite::Keep | TtlWrite::Clear => None,
    }
}
