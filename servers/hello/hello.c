/* hello: the first Kwast server. Exercises what an ordinary C program expects of WASI:
 * printf, its arguments, the clocks, random numbers and sleeping. */
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static uint64_t nanoseconds(clockid_t clock) {
    struct timespec now;
    clock_gettime(clock, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

int main(int argc, char **argv) {
    printf("hello from %s\n", argv[0]);
    for (int i = 1; i < argc; i++)
        printf("arg %d: %s\n", i, argv[i]);

    uint64_t random_value = 0;
    if (getentropy(&random_value, sizeof random_value) == 0)
        printf("random: %016llx\n", (unsigned long long)random_value);

    uint64_t before = nanoseconds(CLOCK_MONOTONIC);
    usleep(10000);
    uint64_t slept = nanoseconds(CLOCK_MONOTONIC) - before;
    printf("slept %llu us (asked for 10000)\n", (unsigned long long)(slept / 1000));
    printf("realtime: %llu s since 1970\n", (unsigned long long)(nanoseconds(CLOCK_REALTIME) / 1000000000u));
    return 0;
}
