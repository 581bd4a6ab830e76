"""Exit statuses of `kwast-bench`, beside 0 for success (a clean kernel shutdown for `boot`)."""

EXIT_KERNEL_FAILED = 1  # the kernel reported a failure, reset, or QEMU ended otherwise
EXIT_USAGE = 2          # a bad config, setting or argument: the message says what to fix
EXIT_BUILD_FAILED = 3   # a build step failed: its output is above the message
EXIT_TIMEOUT = 124      # the guest was still running when the time was up (as timeout(1))
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
