/* Dense matrix multiply in double, n x n (n <= 64). */
#include "kernels.h"

#define MAX 64
static double a[MAX][MAX], b[MAX][MAX], c[MAX][MAX];

uint32_t bench_matmul(uint32_t n) {
    if (n > MAX)
        n = MAX;
    uint32_t state = 4;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++) {
            a[i][j] = (double)(bench_next(&state) >> 16) / 65536.0 - 0.5;
            b[i][j] = (double)(bench_next(&state) >> 16) / 65536.0 - 0.5;
        }
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++) {
            double sum = 0;
            for (uint32_t k = 0; k < n; k++)
                sum += a[i][k] * b[k][j];
            c[i][j] = sum;
        }
    double trace = 0;
    for (uint32_t i = 0; i < n; i++)
        trace += c[i][i] + c[i][n - 1 - i];
    return (uint32_t)(int64_t)(trace * 1e6);
}
