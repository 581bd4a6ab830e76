//! Errors the kernel returns to servers. The numbers are ABI: servers/include/kwast.h mirrors
//! them (the workbench checks both agree, through this enum's DWARF).

#[repr(i32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Error {
    /// No such handle, or a handle whose object slot was reused since (stale).
    InvalidHandle = -1,
    /// The handle names another kind of object than the operation needs.
    WrongKind = -2,
    /// The handle lacks the right the operation needs, or the port is outside the grant.
    NoRights = -3,
    /// A message longer than `MAX_MESSAGE` or than the receiver's buffer, or a reply longer
    /// than the caller's buffer.
    TooBig = -4,
    TimedOut = -5,
    /// The other side of the call died or closed the endpoint.
    PeerDied = -6,
    /// The handle table is full.
    NoSpace = -7,
    /// A guest pointer and length reach outside the server's linear memory.
    BadAddress = -8,
    InvalidArgument = -9,
    /// The IRQ is already bound to another notification.
    Busy = -10,
    /// The process has not ended yet.
    StillRunning = -11,
    /// The process was killed (its reason is reported beside this code).
    Killed = -12,
}

pub type Result<T> = core::result::Result<T, Error>;
