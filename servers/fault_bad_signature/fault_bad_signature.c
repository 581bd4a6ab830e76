/* Calls a function through a pointer of the wrong type: "indirect call type mismatch". */
#include <stdio.h>

__attribute__((noinline)) static int add(int a, int b) { return a + b; }

int main(void) {
    void (*volatile wrong)(void) = (void (*)(void))add;
    printf("calling add(int, int) as void(void)\n");
    wrong();
    printf("survived\n");
    return 0;
}
