/* INT_MIN / -1 does not fit an int: "integer overflow". */
#include <limits.h>
#include <stdio.h>

int main(void) {
    volatile int minimum = INT_MIN, minus_one = -1;
    printf("dividing INT_MIN by -1\n");
    printf("survived: %d\n", minimum / minus_one);
    return 0;
}
