/* abi_fuzz: calls every kernel entry point (the `kwast` module and the WASI subset) with
 * random arguments: forged, stale and wrong-kind handles, pointers outside linear memory or
 * straddling its end, oversized lengths, bad counts. The kernel must answer each with a result
 * or an error code, never panic, and never kill this server for it.
 *
 * Arguments: [ITERATIONS [SEED]]. Its grants, if init gives them (scenarios/abi-fuzz.yaml):
 * KWAST_GRANT(0) an I/O-port range, KWAST_GRANT(1) an IRQ, KWAST_GRANT(2) its notification,
 * KWAST_GRANT(3) a call right to servers/pong, which echoes: half the calls go there, so
 * messages, replies and passed handles really travel (pong closes the handles it gets).
 * At the end it asks pong to quit.
 * It prints how often each result came back, then "done", and exits 0.
 *
 * Buffers the kernel may write into are either inside `arena` or outside linear memory, so
 * the fuzzer can not corrupt itself: what it checks is the kernel, not its own survival. */
#include <kwast.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

#define ARENA 8192
/* A private copy of the call right to pong, which random closes leave alone: they may hit
 * KWAST_GRANT(3) itself. */
static kwast_handle pong;
#define POOL 64

static _Alignas(16) unsigned char arena[ARENA];
static kwast_handle pool[POOL];
static int pool_count;
static uint64_t state;
static long counts[32];       /* kwast results by -code; counts[0] is success */
static long wasi_counts[80];  /* WASI results by errno; 0 is success */
static long calls, unexpected, echoed;

static uint64_t next(void) {  /* xorshift64* */
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 2685821657736338717ull;
}

static uint32_t below(uint32_t n) { return (uint32_t)(next() % n); }

static uint32_t memory_end(void) { return (uint32_t)__builtin_wasm_memory_size(0) * 65536u; }

/* A buffer of `length` bytes the kernel may write: inside the arena, or not in memory at all. */
static uintptr_t buffer(uint32_t length) {
    uint32_t end = memory_end();
    switch (below(6)) {
    case 0: return 0xfffffff0u;                   /* wraps past 4 GiB */
    case 1: return end - (length > 0 ? length / 2 + 1 : 0);  /* straddles the end */
    case 2: return end + below(1u << 20);          /* beyond the end */
    default:
        if (length > ARENA)
            return end;
        return (uintptr_t)arena + below(ARENA - length + 1);
    }
}

static uint32_t length(void) {
    static const uint32_t edges[] = {0, 1, 7, 48, KWAST_MAX_MESSAGE, KWAST_MAX_MESSAGE + 1, ARENA, 0x7fffffffu, 0xffffffffu};
    return below(2) ? below(256) : edges[below(sizeof edges / sizeof edges[0])];
}

static kwast_handle handle(void) {
    switch (below(5)) {
    case 0: return (kwast_handle)next();                            /* forged */
    case 1: return KWAST_GRANT(below(8));                           /* guessed grants */
    case 2: return (kwast_handle)((next() & 0xffff0000u) | below(16)); /* stale generations */
    default: return pool_count ? pool[below(pool_count)] : 0;       /* real ones, any kind */
    }
}

static uint64_t timeout(void) { return below(4) == 0 ? 1 : 0; }  /* never block for long */

static void keep(int32_t result) {
    if (result >= 0 && pool_count < POOL)
        pool[pool_count++] = (kwast_handle)result;
}

/* A negative result must be one of the ABI's error codes. */
static void count(const char *call, int64_t result) {
    calls++;
    int64_t slot = result >= 0 ? 0 : -result;
    counts[slot < 32 ? slot : 31]++;
    if (result < KWAST_EKILLED && unexpected++ < 10)
        printf("unexpected result %lld from %s\n", (long long)result, call);
}

static void count_wasi(__wasi_errno_t errno_) {
    calls++;
    wasi_counts[errno_ < 80 ? errno_ : 79]++;
}

static void fill_arena(void) {
    for (int i = 0; i < ARENA; i++)
        arena[i] = (unsigned char)next();
    /* Transfer lists point into the arena: let some of them name real handles. */
    for (int i = 0; i + 4 <= 64; i += 4)
        memcpy(arena + i, &(kwast_handle){handle()}, 4);
}

static void kwast_once(void) {
    uint32_t n = length(), m = length();
    switch (below(21)) {
    case 0: {
        kwast_handle to = below(2) ? pong : handle();
        int32_t r = kwast_call(to, (void *)buffer(n), n, (void *)buffer(m), m, (kwast_handle *)buffer(16), below(7), timeout());
        count("kwast_call", r);
        echoed += to == pong && r >= 0;
        break;
    }
    case 1: count("kwast_receive", kwast_receive(handle(), (void *)buffer(n), n, (kwast_message *)buffer(sizeof(kwast_message)), timeout())); break;
    case 2: count("kwast_reply", kwast_reply(handle(), (void *)buffer(n), n)); break;
    case 19: count("kwast_reply_receive", kwast_reply_receive(below(2) ? 0 : handle(), (void *)buffer(n), n, handle(),
                                                              (void *)buffer(m), m, (kwast_message *)buffer(sizeof(kwast_message)),
                                                              timeout())); break;
    case 3: count("kwast_signal", kwast_signal(handle(), next())); break;
    case 4: count("kwast_wait", kwast_wait(handle(), timeout())); break;
    case 20: count("kwast_signal_wait", kwast_signal_wait(handle(), next(), handle(), timeout())); break;
    case 5: count("kwast_irq_ack", kwast_irq_ack(handle())); break;
    case 6: count("kwast_port_in8", kwast_port_in8(handle(), below(2) ? 0x80 : (uint32_t)next())); break;
    case 7: count("kwast_port_out8", kwast_port_out8(handle(), below(2) ? 0x80 : (uint32_t)next(), (uint32_t)next())); break;
    case 8:
        if (pool_count > 8) {  /* closing pool handles makes them stale: keep some around */
            int i = (int)below(pool_count);
            count("kwast_close", kwast_close(pool[i]));
            pool[i] = pool[--pool_count];
        } else {
            /* Never pong: a young handle in a small slot, the guessed grants can name it. */
            kwast_handle victim = handle();
            count("kwast_close", kwast_close(victim == pong ? 0 : victim));
        }
        break;
    case 9: { int32_t r = kwast_endpoint_create(); count("kwast_endpoint_create", r); keep(r); break; }
    case 10: { int32_t r = kwast_notification_create(); count("kwast_notification_create", r); keep(r); break; }
    case 11: { int32_t r = kwast_mint(handle(), (uint32_t)next(), next()); count("kwast_mint", r); keep(r); break; }
    case 12: count("kwast_irq_bind", kwast_irq_bind(handle(), below(2) ? below(24) : (uint32_t)next(), handle(), next())); break;
    case 13: count("kwast_ports_grant", kwast_ports_grant(handle(), (uint32_t)next() & 0xffff, (uint32_t)next())); break;
    case 14: count("kwast_spawn", kwast_spawn(handle(), (char *)buffer(n), n, (char *)buffer(m), m,
                               (kwast_handle *)buffer(16), below(9), handle(), next(),
                               (struct kwast_limits *)buffer(16))); break;
    case 15: count("kwast_process_status", kwast_process_status(handle(), (char *)buffer(n), n)); break;
    case 16: {  /* the TSC never runs backwards: a result outside the codes if it did */
        uint64_t before = kwast_cycles();
        count("kwast_cycles", kwast_cycles() >= before ? 0 : INT64_MIN);
        break;
    }
    case 17: {  /* a well-formed call to pong (perhaps passing a handle): it must echo */
        unsigned char *request = arena, *reply = arena + ARENA / 2;
        uint32_t size = below(ARENA / 2);  /* up to a message less a byte */
        int32_t r = kwast_call(pong, request, size, reply, ARENA / 2, (kwast_handle *)request, below(2), 1000);
        count("kwast_call", r);
        if (r >= 0 && ((uint32_t)r != size || memcmp(request, reply, size) != 0) && unexpected++ < 10)
            printf("pong answered %d bytes that are not the %u sent\n", (int)r, size);
        echoed += r >= 0;
        break;
    }
    default: fill_arena(); break;
    }
}

/* WASI: any descriptor but stdin/stdout/stderr for calls that could close or move them; those
 * three only with buffers outside memory, so nothing random reaches the console. */
static void wasi_once(void) {
    uint32_t n = length();
    __wasi_fd_t fd = below(2) ? below(8) : (__wasi_fd_t)next();
    __wasi_fd_t quiet = fd < 3 ? fd + 3 : fd;
    uintptr_t away = memory_end() + below(4096);
    switch (below(12)) {
    case 0: count_wasi(__wasi_fd_write(quiet, (const __wasi_ciovec_t *)buffer(8 * n), n, (__wasi_size_t *)buffer(4))); break;
    case 1: count_wasi(__wasi_fd_write(below(2) + 1, (const __wasi_ciovec_t *)away, below(4), (__wasi_size_t *)buffer(4))); break;
    case 2: count_wasi(__wasi_fd_close(quiet)); break;
    case 3: count_wasi(__wasi_fd_seek(quiet, (__wasi_filedelta_t)next(), (uint8_t)below(4), (__wasi_filesize_t *)buffer(8))); break;
    case 4: count_wasi(__wasi_fd_fdstat_get(fd, (__wasi_fdstat_t *)buffer(sizeof(__wasi_fdstat_t)))); break;
    case 5: count_wasi(__wasi_args_get((uint8_t **)buffer(64), (uint8_t *)buffer(256))); break;
    case 6: count_wasi(__wasi_args_sizes_get((__wasi_size_t *)buffer(4), (__wasi_size_t *)buffer(4))); break;
    case 7: count_wasi(__wasi_environ_get((uint8_t **)buffer(64), (uint8_t *)buffer(256))); break;
    case 8: count_wasi(__wasi_environ_sizes_get((__wasi_size_t *)buffer(4), (__wasi_size_t *)buffer(4))); break;
    case 9: count_wasi(__wasi_clock_time_get((__wasi_clockid_t)below(6), next(), (__wasi_timestamp_t *)buffer(8))); break;
    case 10: count_wasi(__wasi_random_get((uint8_t *)buffer(n), n)); break;
    /* Subscriptions from outside memory only: random ones in memory could ask for a long sleep. */
    default: count_wasi(__wasi_poll_oneoff((const __wasi_subscription_t *)away, (__wasi_event_t *)buffer(4 * sizeof(__wasi_event_t)),
                                      below(4), (__wasi_size_t *)buffer(4))); break;
    }
}

int main(int argc, char **argv) {
    long iterations = argc > 1 ? atol(argv[1]) : 5000;
    state = argc > 2 ? strtoull(argv[2], NULL, 0) : 0;
    if (state == 0 && __wasi_random_get((uint8_t *)&state, sizeof state) != 0)
        state = 1;
    state |= 1;
    printf("fuzzing %ld calls, seed %#llx\n", iterations, (unsigned long long)state);
    pong = (kwast_handle)kwast_mint(KWAST_GRANT(3), KWAST_RIGHT_CALL, 0);
    for (int i = 0; i < 4; i++)
        keep((int32_t)KWAST_GRANT(i));
    fill_arena();
    for (long i = 0; i < iterations; i++) {
        if (below(4))
            kwast_once();
        else
            wasi_once();
    }
    printf("%ld iterations, %ld calls: kwast ok %ld, wasi ok %ld, pong echoed %ld\n",
           iterations, calls, counts[0], wasi_counts[0], echoed);
    for (int i = 1; i < 32; i++)
        if (counts[i])
            printf("  kwast %s (%d): %ld\n", kwast_error_name(-i), -i, counts[i]);
    for (int i = 1; i < 80; i++)
        if (wasi_counts[i])
            printf("  wasi errno %d: %ld\n", i, wasi_counts[i]);
    if (unexpected) {
        printf("%ld results outside the ABI's error codes\n", unexpected);
        return 1;
    }
    printf("done\n");
    char quit_reply[8];
    kwast_call(pong, "quit", 4, quit_reply, sizeof quit_reply, 0, 0, 1000);
    return 0;
}
