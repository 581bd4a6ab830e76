//! The block's server rows: one per server name, claimed when a process of that name is made
//! and kept when it ends, so a restarted server takes its predecessor's row (and counts the
//! restart) and an ended one still shows how it ended. With every row taken, a new server
//! takes the row of the server that ended longest ago: rows of running servers are never taken.

use super::state::{copy_name, copy_text, update, ServerRow, ServerState, FREE_SERVER, REASON_LEN};

/// A process's server row. Dropping it leaves the row: ended servers stay visible.
pub struct ServerSlot {
    index: usize,
    /// The process it is the row of: once another server has taken the row, this one's
    /// updates (a late CPU-time publish, say) leave it alone.
    id: u32,
}

impl ServerSlot {
    /// The row of server `name`, now process `id`: an ended server's of that name (a restart),
    /// else a free one, else the longest-ended server's. None when every row is a running
    /// server's (counted, not shown).
    pub fn claim(id: u32, name: &str) -> Option<ServerSlot> {
        let name = copy_name(name);
        update(|s| {
            let rows = &s.servers[..s.server_count as usize];
            let ended = |r: &&ServerRow| r.id != 0 && r.state != ServerState::Running;
            let restart = rows.iter().position(|r| r.name == name && ended(&r));
            let index = restart
                .or_else(|| s.servers.iter().position(|r| r.id == 0))
                .or_else(|| rows.iter().enumerate().filter(|(_, r)| ended(r)).min_by_key(|(_, r)| r.ended_tsc).map(|(i, _)| i));
            let Some(index) = index else {
                s.servers_dropped += 1;
                return None;
            };
            let row = &mut s.servers[index];
            // A restart keeps how its predecessor ended: the last exit, until this one's.
            *row = match restart {
                None => ServerRow { id, name, ..FREE_SERVER },
                Some(_) => ServerRow { id, name, restarts: row.restarts + 1, exit_code: row.exit_code, reason: row.reason, ..FREE_SERVER },
            };
            s.server_count = s.server_count.max(index as u32 + 1);
            Some(ServerSlot { index, id })
        })
    }

    pub fn update(&self, f: impl FnOnce(&mut ServerRow)) {
        update(|s| {
            if let Some(row) = s.servers.get_mut(self.index).filter(|r| r.id == self.id) {
                f(row);
            }
        });
    }

    /// It ended: with `code`, or killed for `reason`.
    pub fn ended(&self, code: Option<u32>, reason: &str) {
        let reason = copy_text(reason);
        let tsc = crate::arch::cpu::rdtsc();
        self.update(|r| {
            r.ended_tsc = tsc;
            match code {
                Some(code) => {
                    r.state = ServerState::Exited;
                    r.exit_code = code;
                    r.reason = [0; REASON_LEN];
                }
                None => {
                    r.state = ServerState::Killed;
                    r.reason = reason;
                }
            }
        });
    }
}
