/* Quicksort (median of three, insertion sort for short runs) of pseudo-random words. */
#include "kernels.h"

static uint32_t items[65536];

static void insertion(uint32_t *a, int n) {
    for (int i = 1; i < n; i++) {
        uint32_t v = a[i];
        int j = i - 1;
        while (j >= 0 && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static void quicksort(uint32_t *a, int n) {
    while (n > 16) {
        uint32_t x = a[0], y = a[n / 2], z = a[n - 1];
        uint32_t pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        int i = 0, j = n - 1;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                uint32_t t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        /* Recurse into the smaller half, loop on the larger: bounded stack. */
        if (j + 1 < n - i) {
            quicksort(a, j + 1);
            a += i;
            n -= i;
        } else {
            quicksort(a + i, n - i);
            n = j + 1;
        }
    }
    insertion(a, n);
}

uint32_t bench_sort(uint32_t count) {
    if (count > sizeof items / sizeof items[0])
        count = sizeof items / sizeof items[0];
    uint32_t state = 1;
    for (uint32_t i = 0; i < count; i++)
        items[i] = bench_next(&state);
    quicksort(items, (int)count);
    uint32_t sum = 0;
    for (uint32_t i = 0; i < count; i++)
        sum = sum * 31 + items[i] + (i > 0 && items[i - 1] > items[i] ? 0x80000000u : 0);
    return sum;
}
