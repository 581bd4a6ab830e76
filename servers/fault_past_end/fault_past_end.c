/* Loads just past the end of linear memory, plus the byte offset given as first argument (e.g.
 * 0, or 4096: one kernel page further): "out of bounds memory access". With guard pages
 * (engine/config) these are page faults the kernel hands to wasmtime, not explicit checks. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    unsigned long beyond = argc > 1 ? strtoul(argv[1], NULL, 0) : 0;
    unsigned long end = __builtin_wasm_memory_size(0) * 65536ul;
    printf("loading %lu bytes past the end of memory (%lu bytes)\n", beyond, end);
    volatile unsigned char *past = (volatile unsigned char *)(end + beyond);
    printf("survived: %d\n", *past);
    return 0;
}
