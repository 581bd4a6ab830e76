/* Executes wasm's `unreachable`. */
#include <stdio.h>

int main(void) {
    printf("executing unreachable\n");
    __builtin_trap();
}
