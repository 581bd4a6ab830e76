/* pong: answers every call with its own message (the other half of ping), the way a server
 * loops: each answer goes with the next receive, in one kernel call.
 * "yield N" is answered at once, then pong gives up the CPU N times, so ping can time thread
 * switches; "notify N", passing two notifications, is answered, then pong N times waits on the
 * first and signals the second. Grants: KWAST_GRANT(0) receive right of the "pong" endpoint. */
#include <kwast.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    static char buffer[KWAST_MAX_MESSAGE + 1];  /* room for a whole message and a 0 after it */
    kwast_handle pending = 0;  /* the call the next receive answers first (0: none) ... */
    uint32_t answer = 0;       /* ... with the first `answer` bytes of buffer: its echo */
    for (;;) {
        kwast_message info;
        if (kwast_reply_receive(pending, buffer, answer, KWAST_GRANT(0), buffer, KWAST_MAX_MESSAGE, &info,
                                KWAST_FOREVER) < 0)
            return 1;
        pending = 0;
        if (info.kind != KWAST_MESSAGE)
            continue;
        buffer[info.length] = 0;
        /* A command's first letter is tested first: an echo costs no string compares. */
        int notify = buffer[0] == 'n' && strncmp(buffer, "notify ", 7) == 0 && info.transferred_count == 2;
        if (notify) {
            kwast_reply(info.reply, "", 0);
            /* Waits on the first, signals the second: each signal but the last goes with the
             * next wait, in one kernel call. */
            long n = atol(buffer + 7);
            int64_t r = n > 0 ? kwast_wait(info.transferred[0], KWAST_FOREVER) : 0;
            for (; n > 1 && r >= 0; n--)
                r = kwast_signal_wait(info.transferred[1], 1, info.transferred[0], KWAST_FOREVER);
            if (r < 0 || (n == 1 && kwast_signal(info.transferred[1], 1) < 0))
                return 1;
        }
        for (uint32_t i = 0; i < info.transferred_count; i++)
            kwast_close(info.transferred[i]);  /* pong keeps no handles: they would fill its table */
        if (notify) {
            continue;
        } else if (buffer[0] == 'y' && strncmp(buffer, "yield ", 6) == 0) {
            kwast_reply(info.reply, "", 0);
            for (long n = atol(buffer + 6); n > 0; n--)
                sched_yield();
        } else if (buffer[0] == 'q' && strcmp(buffer, "quit") == 0) {
            kwast_reply(info.reply, "", 0);
            return 0;
        } else {
            pending = info.reply;
            answer = info.length;
        }
    }
}
