/* ping: measures a 64-byte call+reply to pong and a bare thread switch, in the same run, in
 * time-stamp-counter cycles (guest instructions when QEMU runs with -icount shift=0).
 * Grants: KWAST_GRANT(0) call right of the "pong" endpoint. */
#include <kwast.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#define PONG KWAST_GRANT(0)
#define ROUNDS 2000

static int call(const char *message, uint32_t length) {
    char reply[64];
    return kwast_call(PONG, message, length, reply, sizeof reply, 0, 0, KWAST_FOREVER);
}

int main(void) {
    char message[64];
    memset(message, 'p', sizeof message);
    for (int i = 0; i < 100; i++)  /* warm up: both sides reach their steady loop */
        call(message, sizeof message);

    uint64_t start = kwast_cycles();
    for (int i = 0; i < ROUNDS; i++) {
        int32_t result = call(message, sizeof message);
        if (result != 64) {
            printf("call failed: %s\n", kwast_error_name(result));
            return 1;
        }
    }
    uint64_t per_call = (kwast_cycles() - start) / ROUNDS;

    /* pong answers, then yields ROUNDS times while we do: each of our yields runs pong once. */
    char request[32];
    int length = snprintf(request, sizeof request, "yield %d", ROUNDS);
    call(request, (uint32_t)length);
    start = kwast_cycles();
    for (int i = 0; i < ROUNDS; i++)
        sched_yield();
    uint64_t per_switch = (kwast_cycles() - start) / (2 * ROUNDS);

    printf("64-byte call+reply: %llu cycles\n", (unsigned long long)per_call);
    printf("thread switch: %llu cycles\n", (unsigned long long)per_switch);
    printf("call+reply / switch: %.1f\n", (double)per_call / (double)per_switch);
    call("quit", 4);
    return 0;
}
