//! A kernel test the profiler is checked against (`tests/test_profile.py`): a function that
//! runs a known number of instructions, 2n + 2 (`mov`, n times `dec`+`jnz`, `ret`), between two
//! console lines, the second giving the time stamp counter's delta around it, which under
//! `-icount shift=0` is the instructions run meanwhile, interrupts included.

core::arch::global_asm!(
    r#"
.section .text
.global kwast_profile_known_work
.type kwast_profile_known_work, @function
kwast_profile_known_work:
    mov rax, rdi
1:  dec rax
    jnz 1b
    ret
.size kwast_profile_known_work, . - kwast_profile_known_work
"#
);

extern "C" {
    fn kwast_profile_known_work(n: u64);
}

/// The loop's iterations: 2,000,002 instructions.
const ITERATIONS: u64 = 1_000_000;

crate::kernel_test!(profile_known_work, {
    crate::kprintln!("ktest profile_known_work: start");
    let before = crate::arch::cpu::rdtsc();
    unsafe { kwast_profile_known_work(ITERATIONS) };
    let after = crate::arch::cpu::rdtsc();
    crate::kprintln!("ktest profile_known_work: {} iterations in {} instructions", ITERATIONS, after - before);
});
