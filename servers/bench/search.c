/* String search: every occurrence of a set of patterns in pseudo-random text over a small
 * alphabet, by Boyer-Moore-Horspool; the checksum mixes the match positions. */
#include "kernels.h"

static char text[1 << 20];

static uint32_t horspool(const char *hay, uint32_t n, const char *needle, uint32_t m) {
    uint32_t shift[256], found = 0;
    for (int i = 0; i < 256; i++)
        shift[i] = m;
    for (uint32_t i = 0; i + 1 < m; i++)
        shift[(uint8_t)needle[i]] = m - 1 - i;
    for (uint32_t at = 0; at + m <= n; at += shift[(uint8_t)hay[at + m - 1]]) {
        uint32_t i = m;
        while (i > 0 && hay[at + i - 1] == needle[i - 1])
            i--;
        if (i == 0)
            found = found * 33 + at;
    }
    return found;
}

uint32_t bench_search(uint32_t bytes) {
    static const char *const patterns[] = {"acgt", "ggatcc", "tttaaaccc", "gattaca", "cgcgcgcg", "aacgttgcaacgtt"};
    if (bytes > sizeof text)
        bytes = sizeof text;
    uint32_t state = 5;
    for (uint32_t i = 0; i < bytes; i++)
        text[i] = "acgt"[bench_next(&state) >> 30];
    uint32_t sum = 0;
    for (unsigned p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
        uint32_t m = 0;
        while (patterns[p][m])
            m++;
        sum = sum * 7 + horspool(text, bytes, patterns[p], m);
    }
    return sum;
}
