/* bench: runs each compute kernel (kernels.h) once to warm up, then once counted, and prints
 * its guest instructions (time-stamp-counter cycles under -icount shift=0) and checksum. The
 * kernel prints the same for the same C compiled natively (`bench=native`). */
#include <kwast.h>
#include <stdio.h>
#include "kernels.h"

int main(void) {
    for (uint32_t i = 0; i < bench_kernel_count; i++) {
        const struct bench_kernel *k = &bench_kernels[i];
        k->run(k->size);
        uint64_t start = kwast_cycles();
        uint32_t checksum = k->run(k->size);
        uint64_t spent = kwast_cycles() - start;
        printf("%s: %llu instructions, checksum %08x\n", k->name, (unsigned long long)spent, checksum);
    }
    return 0;
}
