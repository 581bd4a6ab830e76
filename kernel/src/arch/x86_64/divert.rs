//! Diverting an interrupted thread: it goes on in a function on its own stack, with interrupts
//! as they were, instead of where it was interrupted, and that function may send it back there
//! (`trap::resume`). For work that must happen on the thread and not on the interrupt's IST
//! stack with interrupts off: wasmtime unwinding a wasm trap (exception.rs) or a stop (trap.rs).

use super::trap::TrapFrame;

/// Where a diverted thread goes on: the interrupted state, and a word from whoever diverted it.
pub type Diverted = extern "C" fn(saved: &TrapFrame, arg: u64) -> !;

/// When `frame` returns, its thread calls `to(saved, arg)`. `saved`, a copy of `frame`, goes
/// below the thread's red zone (the prebuilt `core` uses one) on its own stack.
pub fn divert(frame: &mut TrapFrame, to: Diverted, arg: u64) {
    let copy = ((frame.rsp - 128 - core::mem::size_of::<TrapFrame>() as u64) & !15) as *mut TrapFrame;
    // As a call leaves it: the return address slot (none) at rsp, rsp + 8 16-byte aligned.
    let return_slot = copy as u64 - 8;
    unsafe {
        copy.write(*frame);
        (return_slot as *mut u64).write(0);
    }
    frame.rdi = copy as u64;
    frame.rsi = arg;
    frame.rsp = return_slot;
    frame.rip = to as *const () as u64;
}
