/* Grows linear memory past the kernel's per-server limit, which traps. */
#include <stdio.h>

int main(void) {
    printf("growing memory by 64 MiB\n");
    long pages = __builtin_wasm_memory_grow(0, 1024);
    printf("survived: grow returned %ld\n", pages);
    return 0;
}
