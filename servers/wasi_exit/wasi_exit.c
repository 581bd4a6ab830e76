/* wasi_exit: ends with the exit code given as its argument (default 3), before any output:
 * the end must still be reported, with its code. */
#include <stdlib.h>

int main(int argc, char **argv) {
    exit(argc > 1 ? atoi(argv[1]) : 3);
}
