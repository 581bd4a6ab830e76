//! The WASI preview1 subset Kwast servers get, so an ordinary C program built with wasi-libc
//! runs: standard output and error to the kernel console (one line at a time, prefixed with the
//! server's name), arguments, an empty environment, clocks, random numbers, yielding, sleeping
//! through `poll_oneoff`, and `proc_exit`. Everything else is ENOSYS. Engine-independent: the
//! engine glue hands each call the server's linear memory.

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
    Notsup = 58,
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

const STDIN: u32 = 0;
const STDOUT: u32 = 1;
const STDERR: u32 = 2;

const FILETYPE_CHARACTER_DEVICE: u8 = 2;
const RIGHT_FD_WRITE: u64 = 1 << 6;

const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;

const EVENTTYPE_CLOCK: u8 = 0;
const SUBCLOCKFLAG_ABSTIME: u16 = 1;
const SUBSCRIPTION_SIZE: u32 = 48;
const EVENT_SIZE: u32 = 32;

/// One server's WASI state.
pub struct Wasi {
    name: String,
    args: Vec<String>,
    /// Output not yet ended by a newline, per stream (stdout, stderr).
    partial: [Vec<u8>; 2],
}

impl Wasi {
    /// `args[0]` is the server's name, as C programs expect of argv[0].
    pub fn new(name: &str, args: &[String]) -> Wasi {
        let mut argv = Vec::with_capacity(args.len() + 1);
        argv.push(String::from(name));
        argv.extend(args.iter().cloned());
        Wasi { name: String::from(name), args: argv, partial: [Vec::new(), Vec::new()] }
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
        let stream = match fd {
            STDOUT => 0,
            STDERR => 1,
            _ => return Err(Errno::Badf),
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

    pub fn fd_close(&mut self, fd: u32) -> Outcome {
        Outcome::Return(if fd <= STDERR { Errno::Success } else { Errno::Badf })
    }

    pub fn fd_seek(&mut self, fd: u32) -> Outcome {
        Outcome::Return(if fd <= STDERR { Errno::Spipe } else { Errno::Badf })
    }

    pub fn fd_fdstat_get(&mut self, memory: &mut [u8], fd: u32, stat: u32) -> Outcome {
        if fd > STDERR {
            return Outcome::Return(Errno::Badf);
        }
        let rights = if fd == STDIN { 0 } else { RIGHT_FD_WRITE };
        let mut record = [0u8; 24];
        record[0] = FILETYPE_CHARACTER_DEVICE;
        record[8..16].copy_from_slice(&rights.to_le_bytes());
        Guest::new(memory).write(stat, &record).map_err(Errno::from).into()
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

    fn now(clock: u32) -> Result<u64, Errno> {
        match clock {
            CLOCK_REALTIME => Ok(crate::time::realtime_ns()),
            CLOCK_MONOTONIC => Ok(crate::time::uptime_us() * 1000),
            _ => Err(Errno::Inval),
        }
    }

    pub fn clock_time_get(&mut self, memory: &mut [u8], clock: u32, time: u32) -> Outcome {
        Self::now(clock).and_then(|now| Guest::new(memory).write_u64(time, now).map_err(Errno::from)).into()
    }

    pub fn random_get(&mut self, memory: &mut [u8], buffer: u32, len: u32) -> Outcome {
        Guest::new(memory).bytes_mut(buffer, len).map(crate::random::fill).map_err(Errno::from).into()
    }

    pub fn sched_yield(&mut self) -> Outcome {
        crate::sched::yield_now();
        Outcome::Return(Errno::Success)
    }

    /// Clock subscriptions only: sleeps until the earliest one is due and reports the due ones.
    pub fn poll_oneoff(&mut self, memory: &mut [u8], subscriptions: u32, events: u32, count: u32, nevents: u32) -> Outcome {
        self.poll_inner(memory, subscriptions, events, count, nevents).into()
    }

    fn poll_inner(&mut self, memory: &mut [u8], subscriptions: u32, events: u32, count: u32, nevents: u32) -> Result<(), Errno> {
        if count == 0 {
            return Err(Errno::Inval);
        }
        // (userdata, due time in monotonic ns)
        let mut clocks = Vec::new();
        {
            let guest = Guest::new(memory);
            for i in 0..count {
                let sub = subscriptions.checked_add(i.checked_mul(SUBSCRIPTION_SIZE).ok_or(Errno::Fault)?).ok_or(Errno::Fault)?;
                let userdata = guest.read_u64(sub)?;
                if guest.bytes(sub + 8, 1)?[0] != EVENTTYPE_CLOCK {
                    return Err(Errno::Notsup);
                }
                let clock = guest.read_u32(sub + 16)?;
                let timeout = guest.read_u64(sub + 24)?;
                let flags = u16::from_le_bytes(guest.bytes(sub + 40, 2)?.try_into().unwrap());
                let now = Self::now(clock)?;
                let wait = if flags & SUBCLOCKFLAG_ABSTIME != 0 { timeout.saturating_sub(now) } else { timeout };
                clocks.push((userdata, Self::now(CLOCK_MONOTONIC)? + wait));
            }
        }
        let earliest = clocks.iter().map(|&(_, due)| due).min().unwrap_or(0);
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
        for (userdata, _) in clocks.iter().filter(|&&(_, due)| due <= now) {
            let mut event = [0u8; EVENT_SIZE as usize];
            event[..8].copy_from_slice(&userdata.to_le_bytes());
            event[10] = EVENTTYPE_CLOCK;
            guest.write(events + written * EVENT_SIZE, &event)?;
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
