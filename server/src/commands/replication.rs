//! WAIT: make a write wait for peers, as Redis's WAIT waits for replicas.

use super::{flags, int_arg, CmdError, CmdResult, Ctx, Spec, NO_KEYS};
use crate::session::Block;
use std::time::{Duration, Instant};

pub const COMMANDS: &[Spec] = &[Spec {
    name: "wait",
    arity: 3,
    flags: flags::CONNECTION,
    keys: NO_KEYS,
    group: "generic",
    summary: "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.",
    run: wait,
}];

/// WAIT numpeers timeout: how many peers have applied this connection's last write, waiting
/// up to `timeout` ms (0: forever) for `numpeers` of them. Inside MULTI it answers at once.
fn wait(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let needed = int_arg(args[1])?;
    let timeout = int_arg(args[2]).map_err(|_| CmdError::from("ERR timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err("ERR timeout is negative".into());
    }
    let Some(replication) = &ctx.shared.replication else {
        ctx.out.int(0);
        return Ok(());
    };
    let (origin, seq) = (ctx.shared.node.id(), ctx.session.last_write);
    let acked = replication.acked_count(origin, seq);
    if acked as i64 >= needed || ctx.session.multi.is_some() || ctx.db.in_transaction() {
        ctx.out.int(acked as i64);
        return Ok(());
    }
    let deadline = (timeout > 0).then(|| Instant::now() + Duration::from_millis(timeout as u64));
    ctx.session.blocked = Some(Block::Wait { origin, seq, peers: needed.max(0) as usize, deadline });
    Ok(())
}
