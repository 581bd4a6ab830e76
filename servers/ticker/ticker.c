/* ticker: a witness that keeps running while other servers misbehave. Prints "tick N" every
 * 100 ms, COUNT times (default 20, first argument), then exits. Given a second argument, the
 * longest gap in ms allowed between two ticks, it checks its own rhythm: it says of each tick
 * that was late, at the end how long its longest gap was, and prints only every 100th tick.
 * Printing each one would measure the host instead: COM1 output waits for the host to drain
 * it, and under -icount the kernel's wait at the UART is guest time. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

int main(int argc, char **argv) {
    int count = argc > 1 ? atoi(argv[1]) : 20;
    long long allowed_us = argc > 2 ? atoll(argv[2]) * 1000 : 0, longest_us = 0;
    long long last = now_us();
    for (int i = 1; i <= count; i++) {
        usleep(100000);
        long long at = now_us();
        if (at - last > longest_us)
            longest_us = at - last;
        if (allowed_us && at - last > allowed_us)
            printf("late tick %d: %lld us after the one before\n", i, at - last);
        last = at;
        if (!allowed_us || i % 100 == 0)
            printf("tick %d\n", i);
    }
    if (allowed_us)
        printf("longest gap between ticks: %lld us\n", longest_us);
    return 0;
}
