//! Threads and the scheduler: priorities with round-robin inside a priority, preemption by the
//! timer, blocking and waking, sleeping, exit and reaping.
//!
//! Every switch happens in an interrupt (the timer, `int 0x81` for a thread giving up the CPU,
//! `int 0x82` for one that blocks): the trap entry has saved the thread's registers in a
//! `TrapFrame` (an interrupt's, all of them and the SSE state; a thread's own trap, the
//! callee-saved ones), and switching is replacing that frame with the next thread's saved one.
//!
//! A thread's `RunState` is the scheduler's own; the debug-state block shows it in a row the
//! thread holds (`debug::Slot`), freed with the thread.

mod scheduler;
mod smp_tests;
mod tests;
mod thread;
mod wait;

pub use thread::{Name, Priority, RunState, ThreadId, Wait, WaitKind};
pub use wait::WaitQueue;

use crate::arch::cpu::InterruptGuard;
use crate::arch::percpu::this_cpu;
use crate::arch::trap::{TrapFrame, BLOCK_VECTOR, YIELD_VECTOR};
use crate::process::{Process, ProcessId};
use alloc::sync::Arc;
use crate::sync::IrqMutex;
use alloc::boxed::Box;
use scheduler::Scheduler;

pub const DEFAULT_STACK: u64 = 64 << 10;

static SCHEDULER: IrqMutex<Option<Scheduler>> = IrqMutex::new(None);
/// Woken whenever a thread exits: `join` waits here.
static EXITED: WaitQueue = WaitQueue::new();

fn with<R>(f: impl FnOnce(&mut Scheduler) -> R) -> R {
    f(SCHEDULER.lock().as_mut().expect("scheduler not started"))
}

/// `with` for a caller whose guard `irq` has interrupts off already.
fn with_under<R>(irq: &InterruptGuard, f: impl FnOnce(&mut Scheduler) -> R) -> R {
    f(SCHEDULER.lock_under(irq).as_mut().expect("scheduler not started"))
}

/// Makes the running boot code the thread "kmain" and creates the idle thread.
pub fn init() {
    let scheduler = Scheduler::new(idle_thread_stack(), idle_loop);
    *SCHEDULER.lock() = Some(scheduler);
}

/// Another CPU, the caller, joins the scheduler: the code running on it becomes its idle
/// thread, which the caller goes on to be.
pub fn join_cpu(index: usize) {
    with(|s| s.join(index));
}

fn idle_thread_stack() -> crate::mm::stacks::Stack {
    crate::mm::stacks::allocate(DEFAULT_STACK).expect("no stack for the idle thread")
}

extern "C" fn idle_loop(_: usize) -> ! {
    loop {
        crate::arch::cpu::wait_for_interrupt();
    }
}

#[derive(Debug)]
pub enum SpawnError {
    Stack(#[allow(dead_code)] crate::mm::stacks::StackError), // read through Debug
}

/// Starts a thread of `process` (None: a kernel thread) running `f` on a stack of `stack_size`
/// bytes, on CPU `pinned` for good if given and online, else where the scheduler places it.
pub fn spawn_in(process: Option<&Arc<Process>>, name: &str, priority: Priority, stack_size: u64, pinned: Option<usize>,
                f: impl FnOnce() + Send + 'static) -> Result<ThreadId, SpawnError> {
    let stack = crate::mm::stacks::allocate(stack_size).map_err(SpawnError::Stack)?;
    let frame = Box::new(TrapFrame::new_thread(thread_start, 0, stack.top()));
    let id = with(|s| s.add(Name::new(name), priority, frame, Some(stack), Some(Box::new(f)), process.cloned(), pinned));
    preempt_if_outranked();
    Ok(id)
}

/// Starts a kernel thread.
pub fn spawn(name: &str, priority: Priority, f: impl FnOnce() + Send + 'static) -> Result<ThreadId, SpawnError> {
    spawn_in(None, name, priority, DEFAULT_STACK, None, f)
}

/// Starts a kernel thread that runs on CPU `cpu` only.
pub fn spawn_pinned(cpu: usize, name: &str, priority: Priority, f: impl FnOnce() + Send + 'static) -> Result<ThreadId, SpawnError> {
    spawn_in(None, name, priority, DEFAULT_STACK, Some(cpu), f)
}

extern "C" fn thread_start(_: usize) -> ! {
    let entry = with(|s| s.current_mut().entry.take());
    if let Some(entry) = entry {
        entry();
    }
    exit()
}

/// The calling thread's wasm-runtime TLS slot (0 for a slot it never set or does not have).
pub fn tls_get(slot: usize) -> usize {
    with(|s| s.current().tls.get(slot).copied().unwrap_or(0))
}

pub fn tls_set(slot: usize, value: usize) {
    with(|s| {
        if let Some(entry) = s.current_mut().tls.get_mut(slot) {
            *entry = value;
        }
    });
}

/// Timer ticks the calling thread has spent running.
pub fn current_run_ticks() -> u64 {
    with(|s| s.current().run_ticks)
}

pub fn current_id() -> ThreadId {
    this_cpu().thread.get()
}

/// The running thread's row in the debug-state block (`debug::NO_ROW` if it has none), without
/// the scheduler's lock: what `debug::reply_pending` needs of a caller.
pub fn current_row() -> u32 {
    this_cpu().thread_row.get()
}

/// The running thread's name, for fault reports: never waits long for the scheduler lock
/// (the fault may have hit while this CPU held it; another CPU holds it only briefly).
pub fn current_name() -> Name {
    (0..100_000)
        .find_map(|_| {
            let found = SCHEDULER.try_lock().map(|s| s.as_ref().map(|s| s.current().name));
            core::hint::spin_loop();
            found
        })
        .flatten()
        .unwrap_or(Name::new("<unknown>"))
}

/// The thread whose stack guard page holds `address`.
pub fn stack_overflow_victim(address: u64) -> Option<Name> {
    let slot = crate::mm::stacks::guard_slot(address)?;
    let scheduler = SCHEDULER.try_lock()?;
    scheduler.as_ref()?.thread_with_stack(slot).map(|t| t.name)
}

pub fn state_of(id: ThreadId) -> Option<RunState> {
    with(|s| s.get(id).map(|t| t.state))
}

/// Enters the scheduler through the yield trap, as sleeping and exiting do: the calling thread
/// runs again when the scheduler picks it, at once if nothing else is ready.
pub fn give_up_cpu() {
    unsafe { core::arch::asm!("int {}", const YIELD_VECTOR, clobber_abi("C")) };
}

/// What a thread that blocks hands the block trap (its address in rax): the trap blocks it and
/// switches away under one hold of the scheduler's lock, not one to block and one to switch.
struct BlockRequest {
    wait: Wait,
    deadline: Option<u64>,
    /// A thread to run in its place (`HandOff`), or 0.
    hand_off: ThreadId,
    /// The notification whose signal that is, for its `Wake` event (`HandOff::signal`).
    hand_off_signal: u32,
}

/// Blocks the calling thread until `wake` or tick `deadline`; false if the deadline woke it.
/// The caller has interrupts off (see `WaitQueue`), so a wake cannot slip in before the block.
pub(crate) fn block_current(wait: Wait, deadline: Option<u64>) -> bool {
    block(BlockRequest { wait, deadline, hand_off: 0, hand_off_signal: 0 })
}

/// `block_current`, and the thread `hand_off` names, if any, runs in the caller's place: woken
/// and switched to in the block's one hold of the scheduler's lock (`Scheduler::hand_over`).
pub(crate) fn block_handing_off(wait: Wait, deadline: Option<u64>, hand_off: Option<HandOff>) -> bool {
    let Some(hand_off) = hand_off else { return block_current(wait, deadline) };
    let (id, signal) = (hand_off.id, hand_off.signal);
    core::mem::forget(hand_off); // carried out by the block
    block(BlockRequest { wait, deadline, hand_off: id, hand_off_signal: signal })
}

#[inline(always)]
fn block(request: BlockRequest) -> bool {
    unsafe { core::arch::asm!("int {}", const BLOCK_VECTOR, in("rax") &request as *const BlockRequest, clobber_abi("C")) };
    !this_cpu().timed_out.get()
}

/// A blocked thread that IPC gave what it waited for (a request, a reply) and that is to run
/// next on this CPU: the caller carries it to its own block (`block_handing_off`), which wakes
/// it and switches to it at once. Dropped instead (the caller does not block), it is woken as
/// `wake_and_hand_off` does. Until then the thread stays blocked; a deadline or kill that wakes
/// it meanwhile finds what it was given (IPC leaves it where the woken thread looks first), and
/// the late wake is one more the thread tolerates (its next block returns at once).
#[must_use]
pub struct HandOff {
    id: ThreadId,
    /// A signal's: the notification's id, which its `Wake` event names (ids start at 1). 0: an
    /// IPC hand-off, whose call or reply event says it. Small: it rides every IPC path.
    signal: u32,
}

impl HandOff {
    pub fn new(id: ThreadId) -> HandOff {
        HandOff { id, signal: 0 }
    }

    /// The longest waiter of notification `signal`, which that signal gave its bits.
    pub fn by_signal(id: ThreadId, signal: u32) -> HandOff {
        HandOff { id, signal }
    }
}

/// The `Wake` event a hand-off records (`Scheduler::ready_up`'s `event`).
fn hand_off_event(signal: u32) -> Option<u64> {
    (signal != 0).then_some(signal as u64)
}

impl Drop for HandOff {
    fn drop(&mut self) {
        with(|s| s.wake_and_hand_off(self.id, hand_off_event(self.signal)));
    }
}

/// Blocks the calling thread until `ready` gives a value, its process is killed, or tick
/// `deadline`: whoever makes it ready wakes the thread by id (`wake`). Returns the value, if
/// it came. `wait` says what it waits for, for the debug view. The caller keeps interrupts off
/// (`irq`) from setting up what its waker answers until this returns. It blocks before it
/// first looks: the caller has only just set up what its waker answers (a call), so the value
/// can be there already only if another CPU made it so, and then that CPU's wake, come before
/// the block, makes the block return at once.
/// `hand_off` runs in its place at its first block.
pub fn wait_for<R>(_irq: &InterruptGuard, mut ready: impl FnMut() -> Option<R>, deadline: Option<u64>, wait: Wait,
                   mut hand_off: Option<HandOff>) -> Option<R> {
    loop {
        if crate::process::current_killed() {
            return None;
        }
        if !block_handing_off(wait, deadline, hand_off.take()) {
            return ready();
        }
        if let Some(value) = ready() {
            return Some(value);
        }
    }
}

/// Never inlined: a debugger's breakpoint on it must stop every sleep, as the held kernel's
/// loop does once a second; inlined into that loop it is hit once at most.
#[inline(never)]
pub fn sleep_ms(ms: u64) {
    let _irq = InterruptGuard::new();
    let wake_at = crate::time::ticks() + crate::time::ms_to_ticks(ms);
    with(|s| s.sleep_current(wake_at));
    give_up_cpu();
}

/// Ends the calling thread; the scheduler frees its stack once it has switched away.
pub fn exit() -> ! {
    let _irq = InterruptGuard::new();
    with(|s| s.set_current_state(RunState::Dead, Wait::NONE));
    EXITED.wake_all();
    give_up_cpu();
    unreachable!("a dead thread was scheduled");
}

/// Waits until thread `id` has exited.
pub fn join(id: ThreadId) {
    EXITED.wait_until(Wait::on(WaitKind::Join, id, 0), || with(|s| s.get(id).is_none_or(|t| t.state == RunState::Dead)));
}

/// Wakes every blocked or sleeping thread of `process` (it is being killed).
pub fn wake_process(process: ProcessId) {
    with(|s| s.wake_process(process));
}

pub(crate) fn wake(id: ThreadId) {
    with(|s| s.wake(id));
}

/// `wake` by a caller that keeps interrupts off with `irq`; `signal`: the notification whose
/// signal this wake is, which its `Wake` event names (0: none).
pub(crate) fn wake_under(irq: &InterruptGuard, id: ThreadId, signal: u64) {
    with_under(irq, |s| s.wake_by(id, signal));
}

/// Wakes `id`, and the next switch away from the calling thread goes to it if no thread of
/// higher priority is ready: the IPC fast path, which holds it beside the run queue until then.
/// No `Wake` event: the call or reply that woke it is its event.
pub fn wake_and_hand_off(irq: &InterruptGuard, id: ThreadId) {
    with_under(irq, |s| s.wake_and_hand_off(id, None));
}

/// Yields if a thread of higher priority than the caller is ready (after a wake or spawn).
pub fn preempt_if_outranked() {
    if with(|s| s.outranked()) {
        give_up_cpu();
    }
}

/// Preemption off until dropped. Timer ticks still count; a switch they ask for is deferred
/// to the moment preemption is enabled again, not lost.
pub struct PreemptGuard(());

impl PreemptGuard {
    pub fn new() -> PreemptGuard {
        let cpu = this_cpu();
        cpu.preempt_disabled.set(cpu.preempt_disabled.get() + 1);
        PreemptGuard(())
    }
}

impl Drop for PreemptGuard {
    fn drop(&mut self) {
        let cpu = this_cpu();
        let depth = cpu.preempt_disabled.get() - 1;
        cpu.preempt_disabled.set(depth);
        if depth == 0 && cpu.switch_deferred.get() {
            give_up_cpu();
        }
    }
}

/// Accounts a tick of the thread whose trap is `frame`; returns the frame to resume.
pub fn on_timer_tick(frame: &mut TrapFrame, now: u64) -> *mut TrapFrame {
    preempt_if(frame, |s| s.tick(now))
}

/// Another CPU placed work here or wants this CPU's thread stopped: switch if the running
/// thread should make way. Returns the frame to resume.
pub fn on_reschedule(frame: &mut TrapFrame) -> *mut TrapFrame {
    preempt_if(frame, |s| s.outranked())
}

/// From an interrupt: switches away from the thread whose trap is `frame` if `make_way` says
/// it should, unless preemption is disabled (then the switch waits for it to be enabled).
fn preempt_if(frame: &mut TrapFrame, make_way: impl FnOnce(&mut Scheduler) -> bool) -> *mut TrapFrame {
    // SAFETY: an interrupt handler's.
    let irq = unsafe { InterruptGuard::in_trap() };
    let mut guard = SCHEDULER.lock_under(&irq);
    let Some(s) = guard.as_mut() else { return frame };
    if !make_way(s) {
        return frame;
    }
    let cpu = this_cpu();
    if cpu.preempt_disabled.get() > 0 {
        cpu.switch_deferred.set(true);
        return frame;
    }
    let (resume, dead) = s.switch(frame);
    drop(guard);
    free(dead);
    resume
}

/// Frees a thread that died, if a switch gave one: rare, so kept out of line (dropping the
/// `Option` in place cost every switch a call).
#[inline(always)]
fn free(dead: Option<Box<thread::Thread>>) {
    #[cold]
    #[inline(never)]
    fn free_thread(dead: Box<thread::Thread>) {
        drop(dead);
    }
    if let Some(dead) = dead {
        free_thread(dead);
    }
}

/// The running thread gave up the CPU (`give_up_cpu`); returns the frame to resume. Always
/// inlined into its trap's handler, its one caller (a call less for every yield).
#[inline(always)]
pub fn on_yield(frame: &mut TrapFrame) -> *mut TrapFrame {
    this_cpu().switch_deferred.set(false);
    // SAFETY: the yield trap's handler.
    let (resume, dead) = with_under(unsafe { &InterruptGuard::in_trap() }, |s| s.switch(frame));
    // Freeing a stack takes the frame and page-table locks: do it outside the scheduler's.
    free(dead);
    resume
}

/// The running thread blocks (`block_current`, rax pointing at its request); returns the frame
/// to resume: its own if a wake came first. Always inlined into its trap's handler, its one
/// caller (a call less twice a round trip).
#[inline(always)]
pub fn on_block(frame: &mut TrapFrame) -> *mut TrapFrame {
    let cpu = this_cpu();
    cpu.switch_deferred.set(false);
    // SAFETY: `block_current` put it on its stack for the length of this trap.
    let request = unsafe { &*(frame.rax as *const BlockRequest) };
    // SAFETY: the block trap's handler.
    let (resume, dead) = with_under(unsafe { &InterruptGuard::in_trap() }, |s| {
        if !s.block_current(request.wait, request.deadline) {
            // A wake came first (from another CPU): the thread goes on, not timed out; the
            // thread it was handing off to runs at its next switch.
            cpu.timed_out.set(false);
            if request.hand_off != 0 {
                s.wake_and_hand_off(request.hand_off, hand_off_event(request.hand_off_signal));
            }
            return (frame as *mut TrapFrame, None);
        }
        if request.hand_off != 0 {
            return s.hand_over(frame, request.hand_off, hand_off_event(request.hand_off_signal));
        }
        s.switch(frame)
    });
    // Freeing a stack takes the frame and page-table locks: do it outside the scheduler's.
    free(dead);
    resume
}
