//! The scheduler's state and decisions; `sched/mod.rs` is its interface to threads and traps.
//!
//! Each CPU has its own run queues and running thread (`Cpu`), all under the one scheduler
//! lock. A new thread goes to the least loaded CPU; a woken one to the CPU it last ran on,
//! except that a hand-off (IPC) brings the woken thread to the waker's CPU and holds it beside
//! the queues for that CPU's next switch; a CPU with nothing to run takes the first of the
//! highest priority from another. A CPU that has work
//! placed on it while idle or outranked is interrupted (`RESCHEDULE_VECTOR`).

use super::thread::{Name, Priority, RunState, Thread, ThreadId, Wait, WaitKind, TLS_SLOTS};
use crate::arch::trap::TrapFrame;
use crate::debug::{self, state::{EventKind, MAX_CPUS}, Slot, NO_ROW};
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
    /// Boxed: a CPU's `running` points into one, and a frame's address must not move (the CPU
    /// saves traps into it).
    threads: BTreeMap<ThreadId, Box<Thread>>,
    /// A direct-mapped cache of `threads` by id (ids are sequential, so live threads rarely
    /// share an entry): a wake or switch finds its thread in a few instructions, not a search.
    by_id: [(ThreadId, *mut Thread); ID_CACHE],
    /// One per CPU the kernel may run (`MAX_CPUS`), on the heap: 64 of them are 19 KiB.
    cpus: Box<[Cpu; MAX_CPUS]>,
    /// CPUs that have joined (`cpus[..online]`).
    online: usize,
    sleeping: Vec<ThreadId>,
    next_id: ThreadId,
}

/// One CPU's part of the scheduler.
struct Cpu {
    /// The thread `current` names, found without a lookup: switches and kernel calls ask for it.
    running: *mut Thread,
    current: ThreadId,
    idle: ThreadId,
    ready: [VecDeque<ThreadId>; Priority::LEVELS],
    /// Threads in `ready`.
    queued: usize,
    /// A ready thread held out of the queues for the next switch (see `wake_and_hand_off`),
    /// or queued at the next tick if that switch has not come: until then no other CPU takes it.
    hand_off: Option<(ThreadId, Priority)>,
    ticks: u64,
    idle_ticks: u64,
}

impl Cpu {
    fn new() -> Cpu {
        Cpu {
            running: core::ptr::null_mut(), current: 0, idle: 0, ready: Default::default(), queued: 0,
            hand_off: None, ticks: 0, idle_ticks: 0,
        }
    }

    fn push(&mut self, priority: Priority, id: ThreadId) {
        self.ready[priority.0 as usize].push_back(id);
        self.queued += 1;
    }

    /// The highest priority ready here, the hand-off target's included.
    fn best_ready(&self) -> Option<Priority> {
        self.highest_ready().max(self.hand_off.map(|(_, priority)| priority))
    }

    fn highest_ready(&self) -> Option<Priority> {
        if self.queued == 0 {
            return None;
        }
        (0..Priority::LEVELS).rev().find(|&p| !self.ready[p].is_empty()).map(|p| Priority(p as u8))
    }

    fn pop(&mut self, priority: Priority) -> Option<ThreadId> {
        let id = self.ready[priority.0 as usize].pop_front()?;
        self.queued -= 1;
        Some(id)
    }

    /// Takes `id` out of its queue at `priority`, if it is there.
    #[inline]
    fn take(&mut self, priority: Priority, id: ThreadId) -> bool {
        let queue = &mut self.ready[priority.0 as usize];
        // Usually just woken: last in its queue.
        let taken = if queue.back() == Some(&id) {
            queue.pop_back().is_some()
        } else {
            queue.iter().position(|&t| t == id).and_then(|position| queue.remove(position)).is_some()
        };
        self.queued -= taken as usize;
        taken
    }

    fn is_idle(&self) -> bool {
        self.current == self.idle
    }

    /// Runnable threads on it: its load, for placing new ones.
    fn load(&self) -> usize {
        self.queued + self.hand_off.is_some() as usize + !self.is_idle() as usize
    }
}

// SAFETY: each CPU's `running` points into a box the scheduler owns; it moves with the scheduler.
unsafe impl Send for Scheduler {}

/// The calling CPU's index.
#[inline(always)]
fn me() -> usize {
    crate::arch::percpu::index() as usize
}

impl Scheduler {
    /// The code running now becomes the boot thread "kmain" of CPU 0; its context is saved at
    /// its first switch.
    pub fn new(idle_stack: Stack, idle_entry: extern "C" fn(usize) -> !) -> Scheduler {
        let mut scheduler = Scheduler {
            threads: BTreeMap::new(),
            by_id: [(0, core::ptr::null_mut()); ID_CACHE],
            // Built on the heap, not on the boot stack.
            cpus: (0..MAX_CPUS).map(|_| Cpu::new()).collect::<Vec<_>>().into_boxed_slice().try_into().ok().expect("MAX_CPUS CPUs"),
            online: 1,
            sleeping: Vec::new(),
            next_id: BOOT_THREAD,
        };
        scheduler.adopt_running_code(0, Name::new("kmain"), Priority::NORMAL);
        let idle_frame = Box::new(TrapFrame::new_thread(idle_entry, 0, idle_stack.top()));
        let idle = scheduler.add_on(0, Name::new("idle"), Priority::IDLE, idle_frame, Some(idle_stack), None, None);
        let cpu = &mut scheduler.cpus[0];
        cpu.take(Priority::IDLE, idle);
        cpu.idle = idle;
        scheduler
    }

    /// The code running on CPU `index` becomes its thread `name`, running now.
    fn adopt_running_code(&mut self, index: usize, name: Name, priority: Priority) -> ThreadId {
        let frame = Box::new(unsafe { core::mem::zeroed() });
        let id = self.add_on(index, name, priority, frame, None, None, None);
        let cpu = &mut self.cpus[index];
        cpu.take(priority, id);
        cpu.running = self.threads.get_mut(&id).map(|t| &mut **t as *mut Thread).expect("adopted thread");
        cpu.current = id;
        let thread = self.get_mut(id).expect("adopted thread");
        thread.state = RunState::Running;
        thread.on_cpu = true;
        thread.publish();
        debug::set_current(id);
        crate::arch::percpu::this_cpu().thread.set(id);
        id
    }

    /// CPU `index` (the caller) joins: the code running on it becomes its idle thread.
    pub fn join(&mut self, index: usize) {
        let name = Name::new(&alloc::format!("idle{}", index));
        let idle = self.adopt_running_code(index, name, Priority::IDLE);
        self.cpus[index].idle = idle;
        self.online = self.online.max(index + 1);
    }

    /// A new thread, on CPU `pinned` for good if given (and online), else on the least loaded CPU.
    #[allow(clippy::too_many_arguments)]
    pub fn add(&mut self, name: Name, priority: Priority, context: Box<TrapFrame>, stack: Option<Stack>,
               entry: Option<Box<dyn FnOnce() + Send>>, process: Option<Arc<Process>>, pinned: Option<usize>) -> ThreadId {
        let here = me();
        let pinned = pinned.filter(|&cpu| cpu < self.online);
        let cpu = pinned.unwrap_or_else(|| (0..self.online).min_by_key(|&c| (self.cpus[c].load(), c != here)).unwrap_or(here));
        let id = self.add_on(cpu, name, priority, context, stack, entry, process);
        if let Some(thread) = self.get_mut(id) {
            thread.pinned = pinned.is_some();
        }
        self.kick(cpu, priority);
        id
    }

    #[allow(clippy::too_many_arguments)]
    fn add_on(&mut self, cpu: usize, name: Name, priority: Priority, context: Box<TrapFrame>, stack: Option<Stack>,
              entry: Option<Box<dyn FnOnce() + Send>>, process: Option<Arc<Process>>) -> ThreadId {
        let id = self.next_id;
        self.next_id += 1;
        let mut thread = Box::new(Thread {
            id, name, priority, state: RunState::Ready, context, stack, entry, cpu: cpu as u32, pinned: false, on_cpu: false,
            wake_pending: false, wake_at: 0, timed_out: false, process, wait: Wait::NONE, quantum_left: QUANTUM_TICKS,
            run_ticks: 0, switches: 0, debug_row: None, tls: [0; TLS_SLOTS],
        });
        thread.debug_row = Slot::claim(thread.row());
        // Room for every thread in every queue now, so interrupt paths never allocate.
        let count = self.threads.len() + 1;
        for queue in self.cpus.iter_mut().take(self.online.max(cpu + 1)).flat_map(|c| c.ready.iter_mut()) {
            queue.reserve(count.saturating_sub(queue.len()));
        }
        self.sleeping.reserve(count.saturating_sub(self.sleeping.len()));
        self.by_id[id as usize % ID_CACHE] = (id, &mut *thread);
        self.threads.insert(id, thread);
        self.cpus[cpu].push(priority, id);
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

    /// The calling CPU's running thread.
    pub fn current(&self) -> &Thread {
        // SAFETY: `running` points into the box of `current`, in `threads` while it runs.
        unsafe { &*self.cpus[me()].running }
    }

    pub fn current_mut(&mut self) -> &mut Thread {
        // SAFETY: as `current`; `&mut self` makes the borrow unique.
        unsafe { &mut *self.cpus[me()].running }
    }

    pub fn thread_with_stack(&self, slot: usize) -> Option<&Thread> {
        self.threads.values().map(|t| &**t).find(|t| t.stack.as_ref().is_some_and(|s| s.slot == slot))
    }

    pub fn set_current_state(&mut self, run_state: RunState, wait: Wait) {
        let current = self.current_mut();
        current.wait = wait;
        current.state = run_state;
        current.publish();
    }

    /// Blocks the running thread for `wait`, giving up at tick `deadline` if given. False if a
    /// wake came first (from another CPU, since the caller decided to block): it does not block.
    #[inline(always)]
    pub fn block_current(&mut self, wait: Wait, deadline: Option<u64>) -> bool {
        let current = self.current_mut();
        if core::mem::take(&mut current.wake_pending) {
            return false;
        }
        current.timed_out = false;
        current.wait = wait;
        current.state = RunState::Blocked;
        // Published by the switch that follows, with the next thread's row.
        if let Some(deadline) = deadline {
            current.wake_at = deadline;
            let id = current.id;
            self.sleeping.push(id);
        }
        true
    }

    pub fn sleep_current(&mut self, wake_at: u64) {
        let current = self.current_mut();
        current.wake_at = wake_at;
        let id = current.id;
        self.sleeping.push(id);
        self.set_current_state(RunState::Sleeping, Wait::on(WaitKind::Sleep, 0, wake_at));
    }

    pub fn wake(&mut self, id: ThreadId) {
        self.wake_by(id, 0);
    }

    /// `wake` by the signal of notification `signal` (0: not a signal), which its event names.
    pub fn wake_by(&mut self, id: ThreadId, signal: u64) {
        if let Some((priority, cpu)) = self.ready_up(id, None, Some(signal)) {
            self.enqueue(cpu, priority, id);
        }
    }

    /// Makes `id` ready on its own CPU, or on `cpu_given` if it is not running anywhere. Returns
    /// its priority and CPU if the caller is to queue it: not if it was not waiting, nor if it
    /// is still on its CPU (between blocking and switching away: that switch queues it).
    /// `event`: record the wake, naming the notification whose signal it is (0: none); None for
    /// an IPC hand-off, whose call or reply event and the switch that follows say it.
    /// A hand-off to this CPU (`cpu_given`, landing here) leaves the row to the switch that
    /// runs it, which shows it Running: one write of the row, not two. If that switch does not
    /// come, whatever moves it to a queue publishes it (`unhand`).
    #[inline(always)]
    fn ready_up(&mut self, id: ThreadId, cpu_given: Option<usize>, event: Option<u64>) -> Option<(Priority, usize)> {
        let thread = self.get_mut(id)?;
        match thread.state {
            RunState::Blocked | RunState::Sleeping => {}
            // About to block, on another CPU: its block finds the wake and does not.
            RunState::Running | RunState::Ready => {
                thread.wake_pending = true;
                return None;
            }
            RunState::Dead => return None,
        }
        thread.wait = Wait::NONE;
        thread.state = RunState::Ready;
        let on_cpu = thread.on_cpu;
        if let (Some(cpu), false, false) = (cpu_given, on_cpu, thread.pinned) {
            thread.cpu = cpu as u32;
        }
        let (priority, cpu) = (thread.priority, thread.cpu as usize);
        if on_cpu || cpu_given != Some(cpu) {
            thread.publish();
        }
        if !self.sleeping.is_empty() {
            self.sleeping.retain(|&t| t != id);
        }
        if let Some(signal) = event {
            debug::record_interrupts_off(EventKind::Wake, id, signal, 0);
        }
        (!on_cpu).then_some((priority, cpu))
    }

    fn enqueue(&mut self, cpu: usize, priority: Priority, id: ThreadId) {
        self.cpus[cpu].push(priority, id);
        if self.online > 1 {
            self.kick(cpu, priority);
        }
    }

    /// The hand-off target CPU `cpu` holds, if any, goes to its queue like any woken thread,
    /// where an idle CPU may take it.
    fn queue_hand_off(&mut self, cpu: usize) {
        if let Some((id, priority)) = self.cpus[cpu].hand_off.take() {
            self.unhand(id);
            self.enqueue(cpu, priority, id);
        }
    }

    /// A hand-off target goes to a queue instead of running next: its row, which the wake
    /// left to the switch, shows it Ready now.
    #[cold]
    fn unhand(&self, id: ThreadId) {
        if let Some(thread) = self.get(id) {
            thread.publish();
        }
    }

    /// Work of `priority` was queued on `cpu`: interrupt it if it should run it now, or else an
    /// idle CPU, which takes it.
    fn kick(&self, cpu: usize, priority: Priority) {
        let here = me();
        // SAFETY: as `current`.
        let wants = |c: &Cpu| c.is_idle() || priority > unsafe { (*c.running).priority };
        let target = if wants(&self.cpus[cpu]) {
            Some(cpu)
        } else {
            (0..self.online).find(|&c| c != cpu && self.cpus[c].is_idle())
        };
        if let Some(target) = target.filter(|&t| t != here) {
            crate::arch::smp::reschedule(target);
        }
    }

    /// `id`, just woken, runs next on this CPU when the caller gives it up, if no thread of
    /// higher priority is ready here: it moves to the caller's CPU (IPC stays on one CPU).
    /// Held beside the queues rather than queued: the switch takes it without a queue's push
    /// and search. A second hand-off before that switch queues the first. `event` as `ready_up`.
    #[inline(always)]
    pub fn wake_and_hand_off(&mut self, id: ThreadId, event: Option<u64>) {
        let here = me();
        match self.ready_up(id, Some(here), event) {
            Some((priority, cpu)) if cpu == here => {
                self.queue_hand_off(here);
                self.cpus[here].hand_off = Some((id, priority));
            }
            Some((priority, cpu)) => self.enqueue(cpu, priority, id), // pinned to another CPU
            None => {}
        }
    }

    /// The running thread, just blocked (trap `frame`), makes way for `id`, which IPC has just
    /// given what it waited for: if `id` is blocked, may run here and is not outranked here, it
    /// is switched to straight from blocked (no queue, no hand-off slot, its row written once,
    /// Running); otherwise it is woken as `wake_and_hand_off` does and the switch picks.
    /// `event` as `ready_up`'s. Always inlined into its one caller, the block trap: outlined,
    /// it cost 36 instructions more.
    #[inline(always)]
    pub fn hand_over(&mut self, frame: &mut TrapFrame, id: ThreadId, event: Option<u64>) -> (*mut TrapFrame, Option<Box<Thread>>) {
        let here = me();
        let cpu = &self.cpus[here];
        // Usually nothing else is ready here: no priorities to compare.
        let best = if cpu.queued == 0 && cpu.hand_off.is_none() { None } else { cpu.best_ready() };
        let Some(thread) = self.get_mut(id) else { return self.switch(frame) };
        let direct = thread.state == RunState::Blocked && !thread.on_cpu && (!thread.pinned || thread.cpu as usize == here)
            && best.is_none_or(|p| p <= thread.priority);
        if !direct {
            // Not blocked (about to block on another CPU, whose block this wake makes return;
            // or woken meanwhile), pinned elsewhere, or outranked here: a hand-off as any.
            self.wake_and_hand_off(id, event);
            return self.switch(frame);
        }
        if let Some(signal) = event {
            debug::record_interrupts_off(EventKind::Wake, id, signal, 0);
        }
        thread.wait = Wait::NONE;
        thread.cpu = here as u32;
        let thread: *mut Thread = thread;
        if !self.sleeping.is_empty() {
            self.sleeping.retain(|&t| t != id);
        }
        // The running thread has just blocked: not to be queued, not dead. So not `switch`,
        // whose checks for those cost each IPC switch about 20 instructions and its call 15.
        let from = self.cpus[here].current;
        let left: *const Thread = self.leave(here, frame);
        self.offer_queued(here);
        // SAFETY: `thread` is `id`'s box in `threads`; `left` the running thread's.
        (unsafe { self.enter(here, from, left, thread) }, None)
    }

    /// The next thread for CPU `index`: the hand-off target if it is ready here and not
    /// outranked, else the first of the highest non-empty priority, else one taken from
    /// another CPU, else idle.
    fn pick_next(&mut self, index: usize) -> ThreadId {
        let cpu = &mut self.cpus[index];
        if let Some((target, priority)) = cpu.hand_off.take() {
            if cpu.highest_ready().is_none_or(|p| p <= priority) {
                return target;
            }
            cpu.push(priority, target); // outranked: it waits its turn
            self.unhand(target);
        }
        let cpu = &mut self.cpus[index];
        if let Some(id) = cpu.highest_ready().and_then(|p| cpu.pop(p)) {
            return id;
        }
        self.steal(index).unwrap_or(self.cpus[index].idle)
    }

    /// The first thread not pinned to its CPU, of the highest priority queued on another CPU,
    /// now CPU `index`'s.
    fn steal(&mut self, index: usize) -> Option<ThreadId> {
        let mut found = None;
        for priority in (0..Priority::LEVELS).rev() {
            for cpu in (0..self.online).filter(|&c| c != index) {
                let queue = &self.cpus[cpu].ready[priority];
                let position = queue.iter().position(|&id| self.get(id).is_some_and(|t| !t.pinned));
                if let Some(position) = position {
                    found = Some((cpu, priority, position));
                    break;
                }
            }
            if found.is_some() {
                break;
            }
        }
        let (cpu, priority, position) = found?;
        let id = self.cpus[cpu].ready[priority].remove(position)?;
        self.cpus[cpu].queued -= 1;
        if let Some(thread) = self.get_mut(id) {
            thread.cpu = index as u32;
        }
        Some(id)
    }

    /// Another CPU may take a thread queued on CPU `cpu`: one not pinned there.
    fn movable_on(&self, cpu: usize) -> bool {
        self.cpus[cpu].queued > 0 && self.cpus[cpu].ready.iter().flatten().any(|&id| self.get(id).is_some_and(|t| !t.pinned))
    }

    /// Another CPU has a thread CPU `index` may take (`steal`).
    fn stealable(&self, index: usize) -> bool {
        (0..self.online).any(|c| c != index && self.movable_on(c))
    }

    pub fn wake_process(&mut self, process: ProcessId) {
        let threads: Vec<(ThreadId, bool, usize)> = self.threads.values()
            .filter(|t| t.process.as_ref().is_some_and(|p| p.id == process)).map(|t| (t.id, t.on_cpu, t.cpu as usize)).collect();
        for (id, on_cpu, cpu) in threads {
            self.wake(id);
            // Running elsewhere: that CPU stops it now, not at its next tick.
            if on_cpu && cpu != me() {
                crate::arch::smp::reschedule(cpu);
            }
        }
    }

    /// A ready thread on this CPU outranks the running one, or this CPU idles while another
    /// has threads waiting.
    pub fn outranked(&self) -> bool {
        let cpu = &self.cpus[me()];
        // SAFETY: as `current`.
        cpu.best_ready().is_some_and(|p| p > unsafe { (*cpu.running).priority }) || (cpu.is_idle() && self.stealable(me()))
    }

    /// Accounts one timer tick of this CPU; says whether the running thread should make way.
    pub fn tick(&mut self, now: u64) -> bool {
        let index = me();
        // A hand-off its CPU has not switched to by now (the waker ran on) waits like any other.
        self.queue_hand_off(index);
        let cpu = &mut self.cpus[index];
        cpu.ticks += 1;
        let idle = cpu.is_idle();
        if idle {
            cpu.idle_ticks += 1;
        }
        let (ticks, idle_ticks) = (cpu.ticks, cpu.idle_ticks);
        let current = self.current_mut();
        current.run_ticks += 1;
        if let Some(process) = &current.process {
            process.cpu_ticks.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        }
        current.quantum_left = current.quantum_left.saturating_sub(1);
        let expired = current.quantum_left == 0;
        // Published at a tenth of the tick rate: a reader copying the block while the guest
        // runs then rarely meets an update in flight.
        if ticks % PUBLISH_EVERY_TICKS == 0 {
            debug::cpu_ticks(ticks, idle_ticks);
            let current = self.current();
            if let Some(row) = &current.debug_row {
                let run_ticks = current.run_ticks;
                row.update(|r| r.run_ticks = run_ticks);
            }
            if index == 0 {
                crate::process::publish_all();
            }
        }
        // The boot CPU keeps time, so it wakes sleepers (onto their own CPUs).
        if index == 0 {
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
        }
        let competition = self.cpus[index].highest_ready();
        let own = self.current().priority;
        competition.is_some_and(|p| p > own || (p == own && expired) || idle) || (idle && self.stealable(index))
    }

    /// Switches this CPU from its running thread, whose trap is `frame`, to the thread
    /// `pick_next` picks. Returns the frame to resume, and a thread that died and is now off the
    /// CPU, for the caller to free outside this lock. Never inlined: one copy serves the yield,
    /// timer and block traps (inlined into them, call+reply +72).
    #[inline(never)]
    pub fn switch(&mut self, frame: &mut TrapFrame) -> (*mut TrapFrame, Option<Box<Thread>>) {
        let index = me();
        let (from, idle) = (self.cpus[index].current, self.cpus[index].idle);
        let thread = self.leave(index, frame);
        let dead = thread.state == RunState::Dead;
        // Running: preempted; Ready: woken on another CPU as it blocked.
        if matches!(thread.state, RunState::Running | RunState::Ready) {
            thread.state = RunState::Ready;
            let priority = thread.priority;
            if from != idle {
                self.cpus[index].push(priority, from);
            }
        }
        let picked = self.pick_next(index);
        let next: *mut Thread = self.get_mut(picked).expect("next thread missing");
        self.offer_queued(index);
        // A dead thread's row is freed with it, by the caller; a live one's is published with
        // the switch.
        let (dead, left): (_, *const Thread) = if dead {
            debug::record(EventKind::ThreadExit, from, 0, 0);
            (self.remove(from), core::ptr::null())
        } else {
            (None, self.cpus[index].running)
        };
        // SAFETY: a thread's box in `threads`, which `pick_next` picked: not the one that died (a
        // dead thread is not queued), whose removal moved no box.
        (unsafe { self.enter(index, from, left, next) }, dead)
    }

    /// The running thread of CPU `index`, whose trap is `frame`, is off the CPU: its context
    /// holds the trap (the boot code's traps before its first switch are copied there).
    #[inline(always)]
    fn leave(&mut self, index: usize, frame: &mut TrapFrame) -> &mut Thread {
        // SAFETY: as `current`.
        let thread = unsafe { &mut *self.cpus[index].running };
        if !core::ptr::eq(&*thread.context, frame) {
            *thread.context = *frame;
        }
        thread.on_cpu = false;
        thread
    }

    /// Threads another CPU may take still wait here: an idle CPU takes one now rather than at
    /// its next tick.
    #[inline(always)]
    fn offer_queued(&self, index: usize) {
        if self.online > 1 && self.movable_on(index) {
            if let Some(idle) = (0..self.online).find(|&c| c != index && self.cpus[c].is_idle()) {
                crate::arch::smp::reschedule(idle);
            }
        }
    }

    /// CPU `index` runs `next`, after `from` (`left`, null if it died): the frame to resume.
    /// # Safety
    /// `next` is a thread's box in `threads`, and `left` one or null.
    #[inline(always)]
    unsafe fn enter(&mut self, index: usize, from: ThreadId, left: *const Thread, next: *mut Thread) -> *mut TrapFrame {
        // SAFETY: the caller's promise; nothing else holds it.
        let next = unsafe { &mut *next };
        let to = next.id;
        next.state = RunState::Running;
        next.on_cpu = true;
        next.quantum_left = QUANTUM_TICKS;
        let moved = next.cpu as usize != index;
        next.cpu = index as u32;
        if to != from {
            next.switches += 1;
        }
        let resume: *mut TrapFrame = &mut *next.context;
        crate::arch::trap::use_frame(resume);
        let percpu = crate::arch::percpu::this_cpu();
        percpu.thread.set(to);
        percpu.thread_row.set(next.debug_row.as_ref().map_or(NO_ROW, |row| row.index()));
        percpu.process.set(next.process.as_ref().map_or(core::ptr::null(), Arc::as_ptr));
        percpu.timed_out.set(next.timed_out);
        if to == from && moved {
            next.publish();
        }
        let next: *mut Thread = next;
        let cpu = &mut self.cpus[index];
        cpu.running = next;
        cpu.current = to;
        if to != from {
            debug::switched(from, to, #[inline(always)] |s| {
                // SAFETY: `left` is in `threads` or null; `next` is (the caller's promise).
                if let Some(left) = unsafe { left.as_ref() } {
                    left.publish_left_in(s);
                }
                unsafe { (*next).publish_entered_in(s) };
            });
        }
        resume
    }
}
