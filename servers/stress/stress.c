/* stress: calls two echo servers (pong) by turns, each message carrying this client's number
 * and the call's, and checks that every reply is the echo of its own request: none lost, none
 * duplicated, none meant for another caller. Many run at once, on several CPUs.
 * Grants: KWAST_GRANT(0), KWAST_GRANT(1): call rights of two endpoints pong serves.
 * Arguments: this client's number, then how many calls (default 1000). */
#include <kwast.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    long me = argc > 1 ? atol(argv[1]) : 0;
    long calls = argc > 2 ? atol(argv[2]) : 1000;
    long echoed = 0, wrong = 0, failed = 0;
    char request[64], reply[64];
    for (long n = 0; n < calls; n++) {
        int length = snprintf(request, sizeof request, "client %ld call %ld", me, n);
        int32_t r = kwast_call(KWAST_GRANT(n % 2), request, (uint32_t)length, reply, sizeof reply, 0, 0, KWAST_FOREVER);
        if (r < 0) {
            if (failed++ == 0)
                printf("%ld: call %ld failed: %s\n", me, n, kwast_error_name(r));
        } else if (r != length || memcmp(reply, request, (size_t)length) != 0) {
            if (wrong++ == 0)
                printf("%ld: call %ld answered %.*s\n", me, n, (int)r, reply);
        } else {
            echoed++;
        }
    }
    printf("%ld: %ld calls, %ld echoed, %ld wrong, %ld failed\n", me, calls, echoed, wrong, failed);
    return echoed == calls ? 0 : 1;
}
