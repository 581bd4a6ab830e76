//! In-kernel tests, run one per boot with `test=NAME` on the kernel command line.
//!
//! Each test is a `KernelTest` in the `.kernel_tests` section under the symbol `kwast_test_NAME`,
//! so the workbench lists them from the ELF's symbol table. A test passes by returning; a test
//! that must end in a fault declares the text its report must contain, and the runner prints
//! that expectation before running it so the host can check the report.

use crate::arch::qemu_exit::{exit, ExitCode};

#[repr(C)]
pub struct KernelTest {
    pub name: &'static str,
    pub expect_fault: Option<&'static str>,
    pub run: fn(),
}

#[macro_export]
macro_rules! kernel_test {
    ($name:ident, $body:block) => {
        $crate::kernel_test!(@define $name, None, $body);
    };
    ($name:ident, expect_fault = $text:literal, $body:block) => {
        $crate::kernel_test!(@define $name, Some($text), $body);
    };
    (@define $name:ident, $expect:expr, $body:block) => {
        #[used]
        #[allow(non_upper_case_globals)]
        #[link_section = ".kernel_tests"]
        #[export_name = concat!("kwast_test_", stringify!($name))]
        static $name: $crate::ktest::KernelTest = $crate::ktest::KernelTest {
            name: stringify!($name),
            expect_fault: $expect,
            run: || $body,
        };
    };
}

fn all() -> &'static [KernelTest] {
    extern "C" {
        static __kernel_tests_start: u8;
        static __kernel_tests_end: u8;
    }
    unsafe {
        let start = &raw const __kernel_tests_start as *const KernelTest;
        let end = &raw const __kernel_tests_end as *const KernelTest;
        core::slice::from_raw_parts(start, end.offset_from(start) as usize)
    }
}

/// Runs the named test and ends the machine with its result.
pub fn run(name: &str) -> ! {
    let Some(test) = all().iter().find(|t| t.name == name) else {
        crate::kprintln!("ktest {}: no such test", name);
        exit(ExitCode::Failure);
    };
    if let Some(text) = test.expect_fault {
        crate::kprintln!("ktest {}: expecting fault: {}", name, text);
    }
    (test.run)();
    crate::kprintln!("ktest {}: ok", name);
    exit(ExitCode::Success)
}

crate::kernel_test!(fault_panic, expect_fault = "deliberate panic from a kernel test", {
    panic!("deliberate panic from a kernel test");
});
