/* wasi_memory: allocation failure is a value. Allocating past the server's memory limit gives
 * NULL (memory.grow returns -1), never a trap; the program then frees and goes on. Compared
 * with wasmtime's WASI run under the same limit by tests/test_wasi_conformance.py. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (256 << 10)

/* Where results go, so that the compiler cannot drop an allocation it sees unused. */
static void *volatile kept;

static const char *got(void *memory) {
    kept = memory;
    return memory ? "memory" : "NULL";
}

int main(void) {
    printf("pages at start: %lu\n", (unsigned long)__builtin_wasm_memory_size(0));
    printf("malloc 1 GiB: %s\n", got(malloc(1u << 30)));
    printf("calloc overflow: %s\n", got(calloc(SIZE_MAX / 2, 4)));
    printf("memory.grow 2 GiB: %ld\n", (long)__builtin_wasm_memory_grow(0, 32768));

    static void *chunks[4096];
    int count = 0;
    fflush(stdout);
    while (count < 4096 && (chunks[count] = malloc(CHUNK)) != NULL) {
        memset(chunks[count], count & 0xff, CHUNK);
        count++;
    }
    /* The first kernel call since the memory grew reads what it grew by (the kernel keeps
     * where the memory is and how long: it must see that it grew). */
    static const char line[] = "written from the last chunk\n";
    long written = -1;
    if (count > 0) {
        memcpy(chunks[count - 1], line, sizeof line - 1);
        written = (long)write(1, chunks[count - 1], sizeof line - 1);
        memset(chunks[count - 1], (count - 1) & 0xff, sizeof line - 1);
    }
    printf("write from grown memory: %ld\n", written);
    printf("256 KiB chunks before NULL: %d\n", count);
    int intact = 1;
    for (int i = 0; i < count; i++)
        intact &= ((unsigned char *)chunks[i])[CHUNK - 1] == (unsigned char)(i & 0xff);
    printf("chunks intact: %d\n", intact);
    printf("pages at the limit: %lu\n", (unsigned long)__builtin_wasm_memory_size(0));
    printf("memory.grow 1 page: %ld\n", (long)__builtin_wasm_memory_grow(0, 1));
    void *grown = realloc(chunks[0], 64 << 20);
    printf("realloc to 64 MiB: %s\n", got(grown));
    for (int i = 0; i < count; i++)
        free(chunks[i]);
    printf("malloc after free: %s\n", got(malloc(CHUNK * 4)));
    return 0;
}
