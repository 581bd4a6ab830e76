/* Loads far outside linear memory: "out of bounds memory access". */
#include <stdio.h>

int main(void) {
    printf("loading from 0xfffffff0\n");
    volatile int *far_away = (volatile int *)0xfffffff0u;
    printf("survived: %d\n", *far_away);
    return 0;
}
