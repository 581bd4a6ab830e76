/* wasi_env: arguments, environment, clocks, random numbers, sleeping and yielding as an
 * ordinary C program sees them. Values that differ from run to run are printed as the checks
 * a program would make of them. Compared with wasmtime's WASI by
 * tests/test_wasi_conformance.py. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long ns(clockid_t clock) {
    struct timespec t;
    if (clock_gettime(clock, &t) != 0)
        return -1;
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    printf("argc: %d\n", argc);
    for (int i = 0; i < argc; i++)
        printf("argv[%d]: %s\n", i, argv[i]);
    int count = 0;
    for (char **e = environ; e && *e; e++)
        count++;
    printf("environ entries: %d\n", count);
    printf("getenv PATH: %s\n", getenv("PATH") ? "set" : "NULL");
    printf("setenv: %d, getenv: %s\n", setenv("KWAST", "yes", 1), getenv("KWAST"));

    long long real = ns(CLOCK_REALTIME), mono = ns(CLOCK_MONOTONIC);
    printf("realtime after 2020: %d\n", real > 1577836800LL * 1000000000LL);
    printf("time() after 2020: %d\n", time(NULL) > 1577836800);
    long long mono2 = ns(CLOCK_MONOTONIC);
    printf("monotonic does not go back: %d\n", mono >= 0 && mono2 >= mono);
    struct timespec res;
    printf("clock_getres monotonic: %d, positive: %d\n", clock_getres(CLOCK_MONOTONIC, &res), res.tv_sec > 0 || res.tv_nsec > 0);
    printf("process cputime: %lld errno %s\n", ns(CLOCK_PROCESS_CPUTIME_ID) < 0 ? -1LL : 0LL, strerror(errno));

    struct timespec nap = {0, 20 * 1000 * 1000};
    long long before = ns(CLOCK_MONOTONIC);
    printf("nanosleep: %d\n", nanosleep(&nap, NULL));
    printf("slept at least 20 ms: %d\n", ns(CLOCK_MONOTONIC) - before >= 20000000LL);
    before = ns(CLOCK_MONOTONIC);
    printf("usleep: %d\n", usleep(5000));
    printf("slept at least 5 ms: %d\n", ns(CLOCK_MONOTONIC) - before >= 5000000LL);
    printf("sched_yield: %d\n", sched_yield());

    unsigned char a[64] = {0}, b[64] = {0};
    printf("getentropy: %d %d\n", getentropy(a, sizeof a), getentropy(b, sizeof b));
    printf("two random blocks differ: %d\n", memcmp(a, b, sizeof a) != 0);
    printf("getentropy too long: %d %s\n", getentropy(a, 257), strerror(errno));
    printf("arc4random differs: %d\n", arc4random() != arc4random() || arc4random() != arc4random());
    return 0;
}
