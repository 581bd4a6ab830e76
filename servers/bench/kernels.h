/* The compute kernels of the wasm-vs-native benchmark. Each file here but main.c is compiled
 * twice from the same source: to wasm32 into this server, and by the kernel build (kernel/build.rs)
 * for x86-64 into the kernel, which runs them natively in ring 0 (`bench=native` on its command
 * line). Freestanding C: no libc, static buffers, a 32-bit checksum of the result. */
#ifndef BENCH_KERNELS_H
#define BENCH_KERNELS_H
#include <stdint.h>

struct bench_kernel {
    const char *name;
    uint32_t (*run)(uint32_t size);
    uint32_t size;
};

/* The one list: the wasm server, the kernel and the host check all run it. */
extern const struct bench_kernel bench_kernels[];
extern const uint32_t bench_kernel_count;

uint32_t bench_sort(uint32_t count);
uint32_t bench_sha256(uint32_t bytes);
uint32_t bench_crc32(uint32_t bytes);
uint32_t bench_matmul(uint32_t n);
uint32_t bench_nbody(uint32_t steps);
uint32_t bench_interp(uint32_t iterations);
uint32_t bench_search(uint32_t bytes);

/* A fixed pseudo-random sequence (a 32-bit LCG): the same input on every side. */
static inline uint32_t bench_next(uint32_t *state) {
    *state = *state * 1664525u + 1013904223u;
    return *state;
}
#endif
