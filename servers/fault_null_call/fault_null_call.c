/* Calls through a null function pointer: table element 0 is never initialised. */
#include <stdio.h>

int main(void) {
    void (*volatile nothing)(void) = 0;
    printf("calling a null function pointer\n");
    nothing();
    printf("survived\n");
    return 0;
}
