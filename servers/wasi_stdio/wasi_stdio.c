/* wasi_stdio: what an ordinary C program does with stdio, files and directories when it has
 * no preopened directory and an empty stdin. Compared line by line with wasmtime's WASI by
 * tests/test_wasi_conformance.py. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void report(const char *what, int failed) {
    printf("%s: %s\n", what, failed ? strerror(errno) : "ok");
}

int main(void) {
    printf("formatted: %d %5.2f %s %c %x %lld\n", -42, 3.14159, "text", 'c', 0xbeef, 1LL << 40);
    puts("puts line");
    fwrite("fwrite line\n", 1, 12, stdout);
    printf("partial ");
    printf("line joined\n");

    errno = 0;
    report("fopen /etc/hostname r", fopen("/etc/hostname", "r") == NULL);
    report("fopen out.txt w", fopen("out.txt", "w") == NULL);
    report("fopen ./x a", fopen("./x", "a") == NULL);
    report("open /tmp/new O_CREAT", open("/tmp/new", O_CREAT | O_WRONLY, 0644) < 0);
    report("opendir /", opendir("/") == NULL);
    report("opendir .", opendir(".") == NULL);
    report("mkdir d", mkdir("d", 0755) != 0);
    report("remove x", remove("x") != 0);
    report("rename a b", rename("a", "b") != 0);
    struct stat st;
    report("stat /", stat("/", &st) != 0);
    report("access . R_OK", access(".", R_OK) != 0);
    report("chdir /", chdir("/") != 0);
    char cwd[64];
    report("getcwd", getcwd(cwd, sizeof cwd) == NULL);
    printf("cwd: %s\n", cwd);

    /* Empty stdin: end of file at once, for every way of reading it. */
    printf("getchar: %d\n", getchar());
    printf("feof(stdin): %d\n", feof(stdin) != 0);
    char line[32];
    printf("fgets: %s\n", fgets(line, sizeof line, stdin) ? "data" : "NULL");
    printf("read(0): %zd\n", read(0, line, sizeof line));
    printf("fstat(0): %d\n", fstat(0, &st));
    printf("lseek(1): %lld %s\n", (long long)lseek(1, 0, SEEK_CUR), strerror(errno));
    printf("write(5): %zd %s\n", write(5, "x", 1), strerror(errno));
    printf("close(7): %d %s\n", close(7), strerror(errno));

    fflush(stdout);
    fprintf(stderr, "to stderr\n");
    fputs("stderr without newline", stderr);
    return 0;
}
