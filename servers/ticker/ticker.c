/* ticker: a witness that keeps running while other servers misbehave. Prints "tick N" every
 * 100 ms, COUNT times (default 20, first argument), then exits. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int count = argc > 1 ? atoi(argv[1]) : 20;
    for (int i = 1; i <= count; i++) {
        usleep(100000);
        printf("tick %d\n", i);
    }
    return 0;
}
