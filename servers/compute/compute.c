/* compute: counts the primes below N (first argument, default 1000000) by trial division,
 * making no kernel call while it computes, and says what it found and how long it took in
 * guest time. An ordinary program computing for a long time: nothing may stop it for that. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int is_prime(unsigned n) {
    if (n < 2)
        return 0;
    for (unsigned d = 2; d * d <= n; d++)
        if (n % d == 0)
            return 0;
    return 1;
}

int main(int argc, char **argv) {
    unsigned limit = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 1000000;
    printf("counting the primes below %u\n", limit);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    unsigned count = 0;
    for (unsigned n = 0; n < limit; n++)
        count += is_prime(n);
    clock_gettime(CLOCK_MONOTONIC, &end);
    printf("primes below %u: %u\n", limit, count);
    printf("computed for %lld s of guest time\n", (long long)(end.tv_sec - start.tv_sec));
    return 0;
}
