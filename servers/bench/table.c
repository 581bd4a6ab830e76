#include "kernels.h"

const struct bench_kernel bench_kernels[] = {
    {"sort", bench_sort, 20000},
    {"sha256", bench_sha256, 64 * 1024},
    {"crc32", bench_crc32, 256 * 1024},
    {"matmul", bench_matmul, 48},
    {"nbody", bench_nbody, 4000},
    {"interp", bench_interp, 3000},
    {"search", bench_search, 64 * 1024},
};
const uint32_t bench_kernel_count = sizeof bench_kernels / sizeof bench_kernels[0];
