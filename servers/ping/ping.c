/* ping: measures IPC with pong in time-stamp-counter cycles (guest instructions when QEMU runs
 * with -icount shift=0): a 64-byte and a 4096-byte call+reply, a call passing a handle, a
 * signal+wait between the two servers, and a bare thread switch, all in one run. Each figure
 * is measured in BATCHES batches of ROUNDS after a warm-up, and reported as the median and the
 * minimum of the batches: a timer tick lands in some batches, not in others.
 * Grants: KWAST_GRANT(0) call right of the "pong" endpoint. */
#include <kwast.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PONG KWAST_GRANT(0)
#define BATCHES 21
#define ROUNDS 100

static char message[KWAST_MAX_MESSAGE], answer[KWAST_MAX_MESSAGE];
static kwast_handle passed;                 /* a notification whose copies go with calls */
static kwast_handle to_pong, from_pong;     /* the notifications of the signal+wait figure */

static int32_t call(const void *request, uint32_t length, const kwast_handle *transfer, uint32_t count) {
    return kwast_call(PONG, request, length, answer, sizeof answer, transfer, count, KWAST_FOREVER);
}

static int failed(const char *what, int64_t result) {
    printf("%s failed: %s\n", what, kwast_error_name((int32_t)result));
    exit(1);
}

/* Each operation of a batch; `ops` of them per round. */
typedef void (*operation)(void);

static void call_64(void) {
    int32_t r = call(message, 64, 0, 0);
    if (r != 64)
        failed("64-byte call", r);
}

static void call_4096(void) {
    int32_t r = call(message, KWAST_MAX_MESSAGE, 0, 0);
    if (r != KWAST_MAX_MESSAGE)
        failed("4096-byte call", r);
}

static void call_with_handle(void) {
    int32_t r = call(message, 64, &passed, 1);
    if (r != 64)
        failed("call passing a handle", r);
}

static void signal_wait(void) {
    int64_t r = kwast_signal_wait(to_pong, 1, from_pong, KWAST_FOREVER);
    if (r < 0)
        failed("signal+wait", r);
}

static void yield(void) {
    sched_yield();
}

static int by_value(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Runs BATCHES batches of ROUNDS `op`s after ROUNDS to warm up; prints the median and minimum
 * cycles per `per_op`-th of an op (a signal+wait round is two one-way trips). Returns the median. */
static uint64_t measure(const char *what, operation op, uint64_t per_op) {
    uint64_t batches[BATCHES];
    for (int i = 0; i < ROUNDS; i++)
        op();
    for (int b = 0; b < BATCHES; b++) {
        uint64_t start = kwast_cycles();
        for (int i = 0; i < ROUNDS; i++)
            op();
        batches[b] = (kwast_cycles() - start) / (ROUNDS * per_op);
    }
    qsort(batches, BATCHES, sizeof batches[0], by_value);
    printf("%s: median %llu, min %llu cycles\n", what, (unsigned long long)batches[BATCHES / 2],
           (unsigned long long)batches[0]);
    return batches[BATCHES / 2];
}

/* Asks pong to do `what` `times` times alongside us (it answers first). */
static void alongside(const char *what, int times, const kwast_handle *transfer, uint32_t count) {
    char request[48];
    int length = snprintf(request, sizeof request, "%s %d", what, times);
    int32_t r = call(request, (uint32_t)length, transfer, count);
    if (r < 0)
        failed(what, r);
}

int main(void) {
    int32_t created = kwast_notification_create();
    if (created < 0)
        failed("notification_create", created);
    passed = (kwast_handle)created;

    uint64_t per_call = measure("64-byte call+reply", call_64, 1);
    measure("4096-byte call+reply", call_4096, 1);
    measure("call+reply passing a handle", call_with_handle, 1);

    /* Two notifications pong keeps: it waits on one and signals the other, a round per ours. */
    kwast_handle pair[2];
    for (int i = 0; i < 2; i++) {
        created = kwast_notification_create();
        if (created < 0)
            failed("notification_create", created);
        pair[i] = (kwast_handle)created;
    }
    to_pong = pair[0], from_pong = pair[1];
    alongside("notify", ROUNDS * (BATCHES + 1), pair, 2);
    measure("signal+wait", signal_wait, 2);

    /* Each of our yields runs pong's once: two switches a round. */
    alongside("yield", ROUNDS * (BATCHES + 1), 0, 0);
    uint64_t per_switch = measure("thread switch", yield, 2);

    printf("call+reply / switch: %.1f\n", (double)per_call / (double)per_switch);
    /* A 4 KiB echo checked byte for byte, after the figures (before, it would move the window
     * `kwast-bench profile` counts): every byte tells where it belongs, the first is 0 (no
     * command of pong's). */
    for (size_t i = 0; i < sizeof message; i++)
        message[i] = (char)(i * 7 + i / 251);
    memset(answer, 0, sizeof answer);
    int32_t echoed = call(message, KWAST_MAX_MESSAGE, 0, 0);
    if (echoed != KWAST_MAX_MESSAGE || memcmp(answer, message, KWAST_MAX_MESSAGE) != 0) {
        printf("4096-byte echo differs from the message\n");
        exit(1);
    }
    call("quit", 4, 0, 0);
    return 0;
}
