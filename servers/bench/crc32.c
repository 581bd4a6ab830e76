/* CRC-32 (IEEE 802.3, reflected, table-driven) of pseudo-random bytes. */
#include "kernels.h"

static uint8_t data[1 << 20];
static uint32_t table[256];

uint32_t bench_crc32(uint32_t bytes) {
    if (bytes > sizeof data)
        bytes = sizeof data;
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[n] = c;
    }
    uint32_t state = 3;
    for (uint32_t i = 0; i < bytes; i++)
        data[i] = (uint8_t)(bench_next(&state) >> 24);
    uint32_t crc = 0xffffffffu;
    for (uint32_t i = 0; i < bytes; i++)
        crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
    return crc ^ 0xffffffffu;
}
