/* Asks for more memory than its limit allows, ignores the NULL it gets, and writes through it
 * anyway: growing is no fault (memory.grow returns -1), the out-of-bounds write is. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    long pages = __builtin_wasm_memory_grow(0, 1024);
    printf("memory.grow by 64 MiB: %ld\n", pages);
    char *volatile buffer = malloc(64 << 20);
    printf("malloc 64 MiB: %s\n", buffer ? "memory" : "NULL");
    buffer[(64 << 20) - 1] = 1;
    printf("survived\n");
    return 0;
}
