/* Divides an integer by zero: "integer divide by zero". */
#include <stdio.h>

int main(void) {
    volatile int numerator = 1, zero = 0;
    printf("dividing by zero\n");
    printf("survived: %d\n", numerator / zero);
    return 0;
}
