//! The block's server rows: one per server name, claimed when a process of that name is made
//! and kept when it ends, so a restarted server takes its predecessor's row (and counts the
//! restart) and an ended one still shows how it ended.

use super::state::{copy_name, copy_text, update, ServerRow, ServerState, FREE_SERVER, REASON_LEN};

/// A process's server row. Dropping it leaves the row: ended servers stay visible.
pub struct ServerSlot {
    index: usize,
}

impl ServerSlot {
    /// The row of server `name`, now process `id`: an ended server's of that name (a restart),
    /// else a free one. None when the table is full (counted, not shown).
    pub fn claim(id: u32, name: &str) -> Option<ServerSlot> {
        let name = copy_name(name);
        update(|s| {
            let count = s.server_count as usize;
            let ended = s.servers[..count].iter().position(|r| r.name == name && r.state != ServerState::Running);
            let index = match ended.or_else(|| s.servers.iter().position(|r| r.id == 0)) {
                Some(index) => index,
                None => {
                    s.servers_dropped += 1;
                    return None;
                }
            };
            let row = &mut s.servers[index];
            // A restart keeps how its predecessor ended: the last exit, until this one's.
            *row = match row.id {
                0 => ServerRow { id, name, ..FREE_SERVER },
                _ => ServerRow { id, name, restarts: row.restarts + 1, exit_code: row.exit_code, reason: row.reason, ..FREE_SERVER },
            };
            s.server_count = s.server_count.max(index as u32 + 1);
            Some(ServerSlot { index })
        })
    }

    pub fn update(&self, f: impl FnOnce(&mut ServerRow)) {
        update(|s| f(&mut s.servers[self.index]));
    }

    /// It ended: with `code`, or killed for `reason`.
    pub fn ended(&self, code: Option<u32>, reason: &str) {
        let reason = copy_text(reason);
        self.update(|r| match code {
            Some(code) => {
                r.state = ServerState::Exited;
                r.exit_code = code;
                r.reason = [0; REASON_LEN];
            }
            None => {
                r.state = ServerState::Killed;
                r.reason = reason;
            }
        });
    }
}
