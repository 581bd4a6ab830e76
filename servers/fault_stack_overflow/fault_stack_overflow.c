/* Recurses without end on the wasm call stack: "call stack exhausted". Two recursive calls and
 * no local arrays keep the compiler from turning it into a loop and the C shadow stack (in
 * linear memory) out of it. */
#include <stdio.h>

__attribute__((noinline)) static int deeper(int depth) {
    if (depth < 0) /* never: depth only grows, but the compiler cannot know */
        return 0;
    return deeper(depth + 1) + deeper(depth + 2);
}

int main(void) {
    printf("recursing forever\n");
    printf("survived: %d\n", deeper(0));
    return 0;
}
