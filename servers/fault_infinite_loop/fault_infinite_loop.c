/* Computes forever without calling the kernel: the watchdog interrupts it. */
#include <stdio.h>

int main(void) {
    printf("looping forever\n");
    volatile unsigned long spins = 0;
    for (;;)
        spins++;
}
