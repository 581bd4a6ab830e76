/* wasi_unsupported: calls WASI functions Kwast does not provide; each must answer ENOSYS (52)
 * rather than trap or bring anything down. */
#include <stdint.h>
#include <stdio.h>

__attribute__((import_module("wasi_snapshot_preview1"), import_name("sock_accept")))
int32_t sock_accept(int32_t fd, int32_t flags, int32_t result_fd);

__attribute__((import_module("wasi_snapshot_preview1"), import_name("path_open")))
int32_t path_open(int32_t fd, int32_t dirflags, int32_t path, int32_t path_len, int32_t oflags,
                  int64_t rights, int64_t inheriting, int32_t fdflags, int32_t result_fd);

int main(void) {
    int32_t result_fd = 0;
    printf("sock_accept: %d\n", sock_accept(3, 0, (int32_t)(intptr_t)&result_fd));
    printf("path_open: %d\n", path_open(3, 0, 0, 0, 0, 0, 0, 0, (int32_t)(intptr_t)&result_fd));
    return 0;
}
