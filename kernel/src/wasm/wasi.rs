//! WASI preview1 as wasmtime's own WASI gives it to a module run with no preopened directory,
//! no environment, an empty stdin, and stdout and stderr to the console (one line at a time,
//! prefixed with the server's name): arguments, clocks, random numbers, yielding, sleeping
//! through `poll_oneoff`, `proc_exit`, and for every other function the errno wasmtime answers
//! (tests/test_wasi_conformance.py compares the two). The only descriptors are the three
//! standard streams, which a program may close or renumber. Engine-independent: the engine glue
//! hands each call the server's linear memory.

use super::guest::{Guest, OutOfBounds};
use alloc::string::String;
use alloc::vec::Vec;

/// WASI errno values (wasi_snapshot_preview1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u16)]
pub enum Errno {
    Success = 0,
    Badf = 8,
    Fault = 21,
    Inval = 28,
    Nosys = 52,
    Notsock = 57,
    Spipe = 70,
}

impl From<OutOfBounds> for Errno {
    fn from(_: OutOfBounds) -> Errno {
        Errno::Fault
    }
}

/// How a WASI call ends: with an errno for the server, or with the server's exit.
pub enum Outcome {
    Return(Errno),
    Exit(u32),
}

impl From<Result<(), Errno>> for Outcome {
    fn from(result: Result<(), Errno>) -> Outcome {
        Outcome::Return(result.err().unwrap_or(Errno::Success))
    }
}

/// What a descriptor refers to: Kwast has no files, only the standard streams.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdin,
    Stdout,
    Stderr,
}

/// A WASI function that only needs to know what its descriptor refers to: the index of the
/// descriptor among its arguments, and what it answers for stdin and for stdout or stderr
/// (wasmtime's answers for a stream). A descriptor that is not open is EBADF.
pub struct ByDescriptor {
    pub argument: usize,
    pub stdin: Errno,
    pub output: Errno,
}

const fn rule(argument: usize, stdin: Errno, output: Errno) -> ByDescriptor {
    ByDescriptor { argument, stdin, output }
}

/// Every such function. The `path_*` functions need a directory descriptor, and with no
/// preopened directory there is none: EBADF whatever they are given.
pub fn by_descriptor(function: &str) -> Option<ByDescriptor> {
    use Errno::*;
    Some(match function {
        "fd_advise" | "fd_allocate" | "fd_datasync" | "fd_sync" | "fd_fdstat_set_flags" | "fd_fdstat_set_rights"
        | "fd_filestat_set_size" | "fd_filestat_set_times" | "fd_readdir" | "fd_prestat_get" | "fd_prestat_dir_name"
        | "path_create_directory" | "path_filestat_get" | "path_filestat_set_times" | "path_link" | "path_open"
        | "path_readlink" | "path_remove_directory" | "path_rename" | "path_symlink" | "path_unlink_file" => {
            rule(0, Badf, Badf)
        }
        "fd_pread" => rule(0, Spipe, Badf),
        "fd_pwrite" => rule(0, Badf, Spipe),
        "fd_seek" | "fd_tell" => rule(0, Spipe, Spipe),
        "sock_accept" | "sock_recv" | "sock_send" | "sock_shutdown" => rule(0, Notsock, Notsock),
        _ => return None,
    })
}

const FILETYPE_CHARACTER_DEVICE: u8 = 2;
const RIGHT_FD_READ: u64 = 1 << 1;
const RIGHT_FD_WRITE: u64 = 1 << 6;

const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;
const CLOCK_THREAD_CPUTIME: u32 = 3;
/// Kwast's clocks count microseconds.
const CLOCK_RESOLUTION_NS: u64 = 1000;

const EVENTTYPE_CLOCK: u8 = 0;
const EVENTTYPE_FD_READ: u8 = 1;
const EVENTTYPE_FD_WRITE: u8 = 2;
/// What wasmtime reports a ready stream to hold (or take): one byte.
const STREAM_READY_BYTES: u64 = 1;
const SUBCLOCKFLAG_ABSTIME: u16 = 1;
const SUBSCRIPTION_SIZE: u32 = 48;
const EVENT_SIZE: u32 = 32;

/// A `poll_oneoff` event record: its userdata, error and type (the rest zero).
fn event(userdata: u64, error: Errno, kind: u8) -> [u8; EVENT_SIZE as usize] {
    let mut event = [0u8; EVENT_SIZE as usize];
    event[..8].copy_from_slice(&userdata.to_le_bytes());
    event[8..10].copy_from_slice(&(error as u16).to_le_bytes());
    event[10] = kind;
    event
}

/// One server's WASI state.
pub struct Wasi {
    name: String,
    args: Vec<String>,
    /// Descriptors 0, 1 and 2; None once closed.
    fds: [Option<Stream>; 3],
    /// Output not yet ended by a newline, per stream (stdout, stderr).
    partial: [Vec<u8>; 2],
}

impl Wasi {
    /// `args[0]` is the server's name, as C programs expect of argv[0].
    pub fn new(name: &str, args: &[String]) -> Wasi {
        let mut argv = Vec::with_capacity(args.len() + 1);
        argv.push(String::from(name));
        argv.extend(args.iter().cloned());
        Wasi {
            name: String::from(name),
            args: argv,
            fds: [Some(Stream::Stdin), Some(Stream::Stdout), Some(Stream::Stderr)],
            partial: [Vec::new(), Vec::new()],
        }
    }

    fn stream(&self, fd: u32) -> Result<Stream, Errno> {
        self.fds.get(fd as usize).copied().flatten().ok_or(Errno::Badf)
    }

    /// The answer of a `by_descriptor` function called with `fd`.
    pub fn answer(&self, rule: &ByDescriptor, fd: u32) -> Errno {
        match self.stream(fd) {
            Err(errno) => errno,
            Ok(Stream::Stdin) => rule.stdin,
            Ok(_) => rule.output,
        }
    }

    fn emit(&mut self, stream: usize, data: &[u8]) {
        self.partial[stream].extend_from_slice(data);
        while let Some(end) = self.partial[stream].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial[stream].drain(..=end).collect();
            crate::kprint!("[{}] {}", self.name, String::from_utf8_lossy(&line));
        }
    }

    /// Output left without a final newline, printed when the server ends.
    pub fn flush(&mut self) {
        for stream in 0..2 {
            if !self.partial[stream].is_empty() {
                let rest = core::mem::take(&mut self.partial[stream]);
                crate::kprintln!("[{}] {}", self.name, String::from_utf8_lossy(&rest));
            }
        }
    }

    pub fn fd_write(&mut self, memory: &mut [u8], fd: u32, iovs: u32, iovs_len: u32, nwritten: u32) -> Outcome {
        self.fd_write_inner(Guest::new(memory), fd, iovs, iovs_len, nwritten).into()
    }

    fn fd_write_inner(&mut self, mut guest: Guest, fd: u32, iovs: u32, iovs_len: u32, nwritten: u32) -> Result<(), Errno> {
        let stream = match self.stream(fd)? {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
            Stream::Stdin => return Err(Errno::Badf),
        };
        let mut total = 0u32;
        for i in 0..iovs_len {
            let iov = iovs.checked_add(i.checked_mul(8).ok_or(Errno::Fault)?).ok_or(Errno::Fault)?;
            let (ptr, len) = (guest.read_u32(iov)?, guest.read_u32(iov + 4)?);
            let data = guest.bytes(ptr, len)?.to_vec();
            self.emit(stream, &data);
            total = total.saturating_add(len);
        }
        guest.write_u32(nwritten, total)?;
        Ok(())
    }

    /// Stdin is empty: every read is at its end.
    pub fn fd_read(&mut self, memory: &mut [u8], fd: u32, iovs: u32, iovs_len: u32, nread: u32) -> Outcome {
        let mut guest = Guest::new(memory);
        (|| {
            if self.stream(fd)? != Stream::Stdin {
                return Err(Errno::Badf);
            }
            guest.bytes(iovs, iovs_len.checked_mul(8).ok_or(Errno::Fault)?)?;
            guest.write_u32(nread, 0).map_err(Errno::from)
        })()
        .into()
    }

    pub fn fd_close(&mut self, fd: u32) -> Outcome {
        self.stream(fd).map(|_| self.fds[fd as usize] = None).into()
    }

    /// `to` becomes what `from` was, and `from` is closed; both must be open.
    pub fn fd_renumber(&mut self, from: u32, to: u32) -> Outcome {
        (|| {
            let stream = self.stream(from)?;
            self.stream(to)?;
            self.fds[from as usize] = None;
            self.fds[to as usize] = Some(stream);
            Ok(())
        })()
        .into()
    }

    pub fn fd_fdstat_get(&mut self, memory: &mut [u8], fd: u32, stat: u32) -> Outcome {
        (|| {
            let rights = if self.stream(fd)? == Stream::Stdin { RIGHT_FD_READ } else { RIGHT_FD_WRITE };
            let mut record = [0u8; 24];
            record[0] = FILETYPE_CHARACTER_DEVICE;
            record[8..16].copy_from_slice(&rights.to_le_bytes());
            Guest::new(memory).write(stat, &record).map_err(Errno::from)
        })()
        .into()
    }

    /// A stream has no size, times or inode: all zero but its type.
    pub fn fd_filestat_get(&mut self, memory: &mut [u8], fd: u32, stat: u32) -> Outcome {
        (|| {
            self.stream(fd)?;
            let mut record = [0u8; 64];
            record[16] = FILETYPE_CHARACTER_DEVICE;
            Guest::new(memory).write(stat, &record).map_err(Errno::from)
        })()
        .into()
    }

    fn strings_sizes(strings: &[String], memory: &mut [u8], count: u32, size: u32) -> Outcome {
        let mut guest = Guest::new(memory);
        let bytes: usize = strings.iter().map(|s| s.len() + 1).sum();
        (|| {
            guest.write_u32(count, strings.len() as u32)?;
            guest.write_u32(size, bytes as u32)
        })()
        .map_err(Errno::from)
        .into()
    }

    fn strings_get(strings: &[String], memory: &mut [u8], pointers: u32, buffer: u32) -> Outcome {
        let mut guest = Guest::new(memory);
        let mut at = buffer;
        (|| {
            for (i, s) in strings.iter().enumerate() {
                guest.write_u32(pointers + 4 * i as u32, at)?;
                guest.write(at, s.as_bytes())?;
                guest.write(at + s.len() as u32, &[0])?;
                at += s.len() as u32 + 1;
            }
            Ok::<(), OutOfBounds>(())
        })()
        .map_err(Errno::from)
        .into()
    }

    pub fn args_sizes_get(&mut self, memory: &mut [u8], count: u32, size: u32) -> Outcome {
        Self::strings_sizes(&self.args, memory, count, size)
    }

    pub fn args_get(&mut self, memory: &mut [u8], argv: u32, buffer: u32) -> Outcome {
        Self::strings_get(&self.args, memory, argv, buffer)
    }

    pub fn environ_sizes_get(&mut self, memory: &mut [u8], count: u32, size: u32) -> Outcome {
        Self::strings_sizes(&[], memory, count, size)
    }

    pub fn environ_get(&mut self, memory: &mut [u8], environ: u32, buffer: u32) -> Outcome {
        Self::strings_get(&[], memory, environ, buffer)
    }

    /// CPU-time clocks are EBADF, as in wasmtime; an unknown clock is EINVAL (wasmtime traps).
    fn now(clock: u32) -> Result<u64, Errno> {
        match clock {
            CLOCK_REALTIME => Ok(crate::time::realtime_ns()),
            CLOCK_MONOTONIC => Ok(crate::time::uptime_us() * 1000),
            clock if clock <= CLOCK_THREAD_CPUTIME => Err(Errno::Badf),
            _ => Err(Errno::Inval),
        }
    }

    pub fn clock_res_get(&mut self, memory: &mut [u8], clock: u32, resolution: u32) -> Outcome {
        Self::now(clock)
            .and_then(|_| Guest::new(memory).write_u64(resolution, CLOCK_RESOLUTION_NS).map_err(Errno::from))
            .into()
    }

    pub fn clock_time_get(&mut self, memory: &mut [u8], clock: u32, time: u32) -> Outcome {
        Self::now(clock).and_then(|now| Guest::new(memory).write_u64(time, now).map_err(Errno::from)).into()
    }

    pub fn random_get(&mut self, memory: &mut [u8], buffer: u32, len: u32) -> Outcome {
        Guest::new(memory).bytes_mut(buffer, len).map(crate::random::fill).map_err(Errno::from).into()
    }

    pub fn sched_yield(&mut self) -> Outcome {
        crate::sched::give_up_cpu();
        Outcome::Return(Errno::Success)
    }

    /// Sleeps until the earliest clock subscription is due and reports the due ones. Streams
    /// never block (stdin is at its end, output is taken at once): a subscription to one is
    /// reported at once, and then nothing sleeps.
    pub fn poll_oneoff(&mut self, memory: &mut [u8], subscriptions: u32, events: u32, count: u32, nevents: u32) -> Outcome {
        self.poll_inner(memory, subscriptions, events, count, nevents).into()
    }

    fn poll_inner(&mut self, memory: &mut [u8], subscriptions: u32, events: u32, count: u32, nevents: u32) -> Result<(), Errno> {
        if count == 0 {
            return Err(Errno::Inval);
        }
        // (userdata, due time in monotonic ns)
        let mut clocks = Vec::new();
        let mut ready: Vec<[u8; EVENT_SIZE as usize]> = Vec::new();
        {
            let guest = Guest::new(memory);
            for i in 0..count {
                let sub = subscriptions.checked_add(i.checked_mul(SUBSCRIPTION_SIZE).ok_or(Errno::Fault)?).ok_or(Errno::Fault)?;
                let userdata = guest.read_u64(sub)?;
                let kind = guest.bytes(sub + 8, 1)?[0];
                if kind == EVENTTYPE_FD_READ || kind == EVENTTYPE_FD_WRITE {
                    // As wasmtime: a stream not open, or not open that way, fails the whole call.
                    let reading = self.stream(guest.read_u32(sub + 16)?)? == Stream::Stdin;
                    if reading != (kind == EVENTTYPE_FD_READ) {
                        return Err(Errno::Badf);
                    }
                    let mut ready_event = event(userdata, Errno::Success, kind);
                    ready_event[16..24].copy_from_slice(&STREAM_READY_BYTES.to_le_bytes());
                    ready.push(ready_event);
                    continue;
                }
                if kind != EVENTTYPE_CLOCK {
                    return Err(Errno::Inval);
                }
                let clock = guest.read_u32(sub + 16)?;
                let timeout = guest.read_u64(sub + 24)?;
                let flags = u16::from_le_bytes(guest.bytes(sub + 40, 2)?.try_into().unwrap());
                let now = Self::now(clock)?;
                let wait = if flags & SUBCLOCKFLAG_ABSTIME != 0 { timeout.saturating_sub(now) } else { timeout };
                clocks.push((userdata, Self::now(CLOCK_MONOTONIC)? + wait));
            }
        }
        let earliest = if ready.is_empty() { clocks.iter().map(|&(_, due)| due).min().unwrap_or(0) } else { 0 };
        loop {
            let now = Self::now(CLOCK_MONOTONIC)?;
            if now >= earliest || crate::process::current_killed() {
                break;
            }
            crate::sched::sleep_ms((earliest - now).div_ceil(1_000_000));
        }
        let now = Self::now(CLOCK_MONOTONIC)?;
        let mut guest = Guest::new(memory);
        let mut written = 0u32;
        for event in &ready {
            guest.write(events + written * EVENT_SIZE, event)?;
            written += 1;
        }
        for &(userdata, _) in clocks.iter().filter(|&&(_, due)| due <= now) {
            guest.write(events + written * EVENT_SIZE, &event(userdata, Errno::Success, EVENTTYPE_CLOCK))?;
            written += 1;
        }
        guest.write_u32(nevents, written)?;
        Ok(())
    }

    pub fn proc_exit(&mut self, code: u32) -> Outcome {
        self.flush();
        Outcome::Exit(code)
    }
}
