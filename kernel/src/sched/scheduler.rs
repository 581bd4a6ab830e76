//! The scheduler's state and decisions; `sched/mod.rs` is its interface to threads and traps.

use super::thread::{Name, Priority, RunState, Thread, ThreadId, Wait, WaitKind, TLS_SLOTS};
use crate::arch::trap::TrapFrame;
use crate::debug::{self, state::EventKind, Slot, NO_ROW};
use crate::mm::stacks::Stack;
use crate::process::{Process, ProcessId};
use alloc::sync::Arc;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

/// Timer ticks a thread runs before others of its priority get a turn.
const QUANTUM_TICKS: u32 = 10;
const BOOT_THREAD: ThreadId = 1;
const PUBLISH_EVERY_TICKS: u64 = 10;
const ID_CACHE: usize = 64;

pub struct Scheduler {
    /// Boxed: `running` points into one, and a frame's address must not move (the CPU saves
    /// traps into it).
    threads: BTreeMap<ThreadId, Box<Thread>>,
    /// The thread `current` names, found without a lookup: switches and kernel calls ask for it.
    running: *mut Thread,
    /// A direct-mapped cache of `threads` by id (ids are sequential, so live threads rarely
    /// share an entry): a wake or switch finds its thread in a few instructions, not a search.
    by_id: [(ThreadId, *mut Thread); ID_CACHE],
    ready: [VecDeque<ThreadId>; Priority::LEVELS],
    sleeping: Vec<ThreadId>,
    pub current: ThreadId,
    idle: ThreadId,
    /// Where the next switch should go, if still ready (see `hand_off_to`).
    hand_off: Option<ThreadId>,
    idle_ticks: u64,
    next_id: ThreadId,
}

// SAFETY: `running` points into a box the scheduler owns; it moves with the scheduler.
unsafe impl Send for Scheduler {}

impl Scheduler {
    /// The code running now becomes the boot thread "kmain"; its context is saved at its first switch.
    pub fn new(idle_stack: Stack, idle_entry: extern "C" fn(usize) -> !) -> Scheduler {
        let mut scheduler = Scheduler {
            threads: BTreeMap::new(),
            running: core::ptr::null_mut(),
            by_id: [(0, core::ptr::null_mut()); ID_CACHE],
            ready: Default::default(),
            sleeping: Vec::new(),
            current: BOOT_THREAD,
            idle: 0,
            hand_off: None,
            idle_ticks: 0,
            next_id: BOOT_THREAD,
        };
        let boot_frame = Box::new(unsafe { core::mem::zeroed() });
        let boot = scheduler.add(Name::new("kmain"), Priority::NORMAL, boot_frame, None, None, None);
        scheduler.ready[Priority::NORMAL.0 as usize].retain(|&t| t != boot);
        scheduler.running = &mut **scheduler.threads.get_mut(&boot).expect("boot thread");
        scheduler.set_state(boot, RunState::Running);
        let idle_frame = Box::new(TrapFrame::new_thread(idle_entry, 0, idle_stack.top()));
        scheduler.idle = scheduler.add(Name::new("idle"), Priority::IDLE, idle_frame, Some(idle_stack), None, None);
        scheduler.ready[Priority::IDLE.0 as usize].clear();
        debug::set_current(BOOT_THREAD);
        crate::arch::percpu::this_cpu().thread.set(BOOT_THREAD);
        scheduler
    }

    pub fn add(&mut self, name: Name, priority: Priority, context: Box<TrapFrame>, stack: Option<Stack>,
               entry: Option<Box<dyn FnOnce() + Send>>, process: Option<Arc<Process>>) -> ThreadId {
        let id = self.next_id;
        self.next_id += 1;
        let mut thread = Box::new(Thread {
            id, name, priority, state: RunState::Ready, context, stack, entry,
            wake_at: 0, timed_out: false, process, wait: Wait::NONE, quantum_left: QUANTUM_TICKS, run_ticks: 0, switches: 0, debug_row: None, tls: [0; TLS_SLOTS],
        });
        thread.debug_row = Slot::claim(thread.row());
        // Room for every thread in every queue now, so interrupt paths never allocate.
        let count = self.threads.len() + 1;
        for queue in self.ready.iter_mut() {
            queue.reserve(count.saturating_sub(queue.len()));
        }
        self.sleeping.reserve(count.saturating_sub(self.sleeping.len()));
        self.by_id[id as usize % ID_CACHE] = (id, &mut *thread);
        self.threads.insert(id, thread);
        self.ready[priority.0 as usize].push_back(id);
        debug::record(EventKind::ThreadStart, id, priority.0 as u64, 0);
        id
    }

    pub fn get(&self, id: ThreadId) -> Option<&Thread> {
        match self.by_id[id as usize % ID_CACHE] {
            // SAFETY: an entry is cleared when its thread is removed.
            (cached, thread) if cached == id => Some(unsafe { &*thread }),
            _ => self.threads.get(&id).map(|t| &**t),
        }
    }

    fn get_mut(&mut self, id: ThreadId) -> Option<&mut Thread> {
        match self.by_id[id as usize % ID_CACHE] {
            // SAFETY: as `get`; `&mut self` makes the borrow unique.
            (cached, thread) if cached == id => Some(unsafe { &mut *thread }),
            _ => self.threads.get_mut(&id).map(|t| &mut **t),
        }
    }

    fn remove(&mut self, id: ThreadId) -> Option<Box<Thread>> {
        if self.by_id[id as usize % ID_CACHE].0 == id {
            self.by_id[id as usize % ID_CACHE] = (0, core::ptr::null_mut());
        }
        self.threads.remove(&id)
    }

    pub fn current(&self) -> &Thread {
        // SAFETY: `running` points into the box of `current`, in `threads` while it runs.
        unsafe { &*self.running }
    }

    pub fn current_mut(&mut self) -> &mut Thread {
        // SAFETY: as `current`; `&mut self` makes the borrow unique.
        unsafe { &mut *self.running }
    }

    pub fn thread_with_stack(&self, slot: usize) -> Option<&Thread> {
        self.threads.values().map(|t| &**t).find(|t| t.stack.as_ref().is_some_and(|s| s.slot == slot))
    }

    fn set_state(&mut self, id: ThreadId, run_state: RunState) {
        if let Some(thread) = self.get_mut(id) {
            thread.state = run_state;
            thread.publish();
        }
    }

    pub fn set_current_state(&mut self, run_state: RunState, wait: Wait) {
        let current = self.current_mut();
        current.wait = wait;
        current.state = run_state;
        current.publish();
    }

    /// Blocks the running thread for `wait`, giving up at tick `deadline` if given.
    pub fn block_current(&mut self, wait: Wait, deadline: Option<u64>) {
        let current = self.current_mut();
        current.timed_out = false;
        if let Some(deadline) = deadline {
            current.wake_at = deadline;
            self.sleeping.push(self.current);
        }
        self.set_current_state(RunState::Blocked, wait);
    }

    pub fn sleep_current(&mut self, wake_at: u64) {
        self.current_mut().wake_at = wake_at;
        self.sleeping.push(self.current);
        self.set_current_state(RunState::Sleeping, Wait::on(WaitKind::Sleep, 0, wake_at));
    }

    pub fn wake(&mut self, id: ThreadId) {
        let Some(thread) = self.get_mut(id) else { return };
        if !matches!(thread.state, RunState::Blocked | RunState::Sleeping) {
            return;
        }
        thread.wait = Wait::NONE;
        thread.state = RunState::Ready;
        thread.publish();
        let priority = thread.priority;
        if !self.sleeping.is_empty() {
            self.sleeping.retain(|&t| t != id);
        }
        self.ready[priority.0 as usize].push_back(id);
        debug::record(EventKind::Wake, id, 0, 0);
    }

    pub fn hand_off_to(&mut self, id: ThreadId) {
        self.hand_off = Some(id);
    }

    /// The next thread to run: the hand-off target if it is ready and not outranked, else the
    /// first of the highest non-empty priority, else idle.
    fn pick_next(&mut self) -> ThreadId {
        let best = self.highest_ready();
        if let Some(target) = self.hand_off.take() {
            if let Some(priority) = self.get(target).map(|t| t.priority) {
                let queue = &mut self.ready[priority.0 as usize];
                if best.is_none_or(|p| priority >= p) {
                    // Usually just woken: last in its queue.
                    if queue.back() == Some(&target) {
                        queue.pop_back();
                        return target;
                    }
                    if let Some(position) = queue.iter().position(|&t| t == target) {
                        queue.remove(position);
                        return target;
                    }
                }
            }
        }
        best.and_then(|p| self.ready[p.0 as usize].pop_front()).unwrap_or(self.idle)
    }

    pub fn wake_process(&mut self, process: ProcessId) {
        let threads: Vec<ThreadId> = self.threads.values()
            .filter(|t| t.process.as_ref().is_some_and(|p| p.id == process)).map(|t| t.id).collect();
        for id in threads {
            self.wake(id);
        }
    }

    fn highest_ready(&self) -> Option<Priority> {
        (0..Priority::LEVELS).rev().find(|&p| !self.ready[p].is_empty()).map(|p| Priority(p as u8))
    }

    /// A ready thread outranks the running one.
    pub fn outranked(&self) -> bool {
        self.highest_ready().is_some_and(|p| p > self.current().priority)
    }

    /// Accounts one timer tick; says whether the running thread should make way.
    pub fn tick(&mut self, now: u64) -> bool {
        let idle = self.current == self.idle;
        let current = self.current_mut();
        current.run_ticks += 1;
        if let Some(process) = &current.process {
            process.cpu_ticks.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        }
        current.quantum_left = current.quantum_left.saturating_sub(1);
        let expired = current.quantum_left == 0;
        if idle {
            self.idle_ticks += 1;
        }
        // Published at a tenth of the tick rate: a reader copying the block while the guest
        // runs then rarely meets an update in flight.
        if now % PUBLISH_EVERY_TICKS == 0 {
            debug::cpu_ticks(now, self.idle_ticks);
            let current = self.current();
            if let Some(row) = &current.debug_row {
                let run_ticks = current.run_ticks;
                row.update(|r| r.run_ticks = run_ticks);
            }
            crate::process::publish_all();
        }
        let mut i = 0;
        while i < self.sleeping.len() {
            let id = self.sleeping[i];
            if self.get(id).is_some_and(|t| t.wake_at <= now) {
                let thread = self.get_mut(id).expect("sleeping thread missing");
                thread.timed_out = thread.state == RunState::Blocked;
                self.wake(id);
            } else {
                i += 1;
            }
        }
        let competition = self.highest_ready();
        let own = self.current().priority;
        competition.is_some_and(|p| p > own || (p == own && expired) || idle)
    }

    /// Switches from the running thread, whose trap is `frame`, to the next one. Returns the
    /// frame to resume, and a thread that died and is now off the CPU, for the caller to free
    /// outside this lock.
    pub fn switch(&mut self, frame: &mut TrapFrame) -> (*mut TrapFrame, Option<Box<Thread>>) {
        let from = self.current;
        let idle = self.idle;
        let thread = self.current_mut();
        if !core::ptr::eq(&*thread.context, frame) {
            *thread.context = *frame; // the boot code's traps before its first switch
        }
        let dead = thread.state == RunState::Dead;
        let preempted = thread.state == RunState::Running;
        if preempted {
            thread.state = RunState::Ready;
            let priority = thread.priority;
            if from != idle {
                self.ready[priority.0 as usize].push_back(from);
            }
        }
        let to = self.pick_next();
        // A dead thread's row is freed with it, by the caller.
        let dead = if dead {
            debug::record(EventKind::ThreadExit, from, 0, 0);
            self.remove(from)
        } else {
            // A thread that blocked or slept published that itself.
            if preempted && to != from {
                self.current().publish();
            }
            None
        };
        let next = self.get_mut(to).expect("next thread missing");
        next.state = RunState::Running;
        next.quantum_left = QUANTUM_TICKS;
        if to != from {
            next.switches += 1;
        }
        let resume: *mut TrapFrame = &mut *next.context;
        crate::arch::trap::use_frame(resume);
        let cpu = crate::arch::percpu::this_cpu();
        cpu.thread.set(to);
        cpu.thread_row.set(next.debug_row.as_ref().map_or(NO_ROW, |row| row.index()));
        cpu.process.set(next.process.as_ref().map_or(core::ptr::null(), Arc::as_ptr));
        cpu.timed_out.set(next.timed_out);
        self.running = next;
        self.current = to;
        if to != from {
            self.current().publish();
            debug::switched(from, to);
        }
        (resume, dead)
    }
}
