/* wasi_abort: calls abort() after a line of output, from a named function, so that the trap
 * names where it happened. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static void give_up(const char *why) {
    printf("giving up: %s\n", why);
    fflush(stdout);
    abort();
}

int main(void) {
    give_up("on purpose");
}
