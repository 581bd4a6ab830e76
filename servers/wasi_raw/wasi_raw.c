/* wasi_raw: calls every WASI preview1 function directly (no libc in between) on standard
 * streams, on descriptors that were never opened and with odd arguments, and prints each
 * errno. tests/test_wasi_conformance.py runs it in Kwast and in wasmtime's own WASI: the
 * numbers must be the same. */
#include <stdio.h>
#include <string.h>
#include <wasi/api.h>

static char buffer[256];
static __wasi_iovec_t iov = {(uint8_t *)buffer, sizeof buffer};
static __wasi_ciovec_t ciov = {(const uint8_t *)"", 0};

#define SHOW(call) printf("%s: %d\n", #call, (int)(call))

int main(void) {
    __wasi_size_t n = 0;
    __wasi_prestat_t prestat;
    __wasi_fdstat_t fdstat;
    __wasi_filestat_t filestat;
    __wasi_filesize_t offset = 0;
    __wasi_fd_t fd = 0;
    __wasi_timestamp_t time = 0;

    for (int f = 3; f < 6; f++) {
        printf("fd_prestat_get(%d): %d\n", f, __wasi_fd_prestat_get(f, &prestat));
        printf("fd_prestat_dir_name(%d): %d\n", f, __wasi_fd_prestat_dir_name(f, (uint8_t *)buffer, 8));
    }
    /* Descriptors that were never opened. */
    for (int f = 3; f <= 64; f += 61) {
        printf("-- fd %d\n", f);
        SHOW(__wasi_fd_advise(f, 0, 0, 0));
        SHOW(__wasi_fd_allocate(f, 0, 1));
        SHOW(__wasi_fd_close(f));
        SHOW(__wasi_fd_datasync(f));
        SHOW(__wasi_fd_fdstat_get(f, &fdstat));
        SHOW(__wasi_fd_fdstat_set_flags(f, 0));
        SHOW(__wasi_fd_fdstat_set_rights(f, 0, 0));
        SHOW(__wasi_fd_filestat_get(f, &filestat));
        SHOW(__wasi_fd_filestat_set_size(f, 0));
        SHOW(__wasi_fd_filestat_set_times(f, 0, 0, 0));
        SHOW(__wasi_fd_pread(f, &iov, 1, 0, &n));
        SHOW(__wasi_fd_pwrite(f, &ciov, 1, 0, &n));
        SHOW(__wasi_fd_read(f, &iov, 1, &n));
        SHOW(__wasi_fd_readdir(f, (uint8_t *)buffer, sizeof buffer, 0, &n));
        SHOW(__wasi_fd_seek(f, 0, __WASI_WHENCE_SET, &offset));
        SHOW(__wasi_fd_sync(f));
        SHOW(__wasi_fd_tell(f, &offset));
        SHOW(__wasi_fd_write(f, &ciov, 1, &n));
        SHOW(__wasi_path_create_directory(f, "d"));
        SHOW(__wasi_path_filestat_get(f, 0, "d", &filestat));
        SHOW(__wasi_path_filestat_set_times(f, 0, "d", 0, 0, 0));
        SHOW(__wasi_path_link(f, 0, "a", f, "b"));
        SHOW(__wasi_path_open(f, 0, "a", 0, 0, 0, 0, &fd));
        SHOW(__wasi_path_readlink(f, "a", (uint8_t *)buffer, sizeof buffer, &n));
        SHOW(__wasi_path_remove_directory(f, "d"));
        SHOW(__wasi_path_rename(f, "a", f, "b"));
        SHOW(__wasi_path_symlink("a", f, "b"));
        SHOW(__wasi_path_unlink_file(f, "a"));
        SHOW(__wasi_sock_accept(f, 0, &fd));
        SHOW(__wasi_sock_recv(f, &iov, 1, 0, &n, (__wasi_roflags_t *)&offset));
        SHOW(__wasi_sock_send(f, &ciov, 1, 0, &n));
        SHOW(__wasi_sock_shutdown(f, __WASI_SDFLAGS_RD));
        SHOW(__wasi_fd_renumber(f, 70));
    }
    /* The standard streams: what a stream (not a file, not a directory) answers. */
    for (int f = 0; f < 3; f++) {
        printf("-- fd %d\n", f);
        SHOW(__wasi_fd_advise(f, 0, 0, 0));
        SHOW(__wasi_fd_allocate(f, 0, 1));
        SHOW(__wasi_fd_datasync(f));
        SHOW(__wasi_fd_fdstat_set_rights(f, 0, 0));
        SHOW(__wasi_fd_filestat_set_size(f, 0));
        SHOW(__wasi_fd_filestat_set_times(f, 0, 0, 0));
        SHOW(__wasi_fd_pread(f, &iov, 1, 0, &n));
        SHOW(__wasi_fd_pwrite(f, &ciov, 1, 0, &n));
        SHOW(__wasi_fd_readdir(f, (uint8_t *)buffer, sizeof buffer, 0, &n));
        SHOW(__wasi_fd_seek(f, 0, __WASI_WHENCE_CUR, &offset));
        SHOW(__wasi_fd_sync(f));
        SHOW(__wasi_fd_tell(f, &offset));
        SHOW(__wasi_path_create_directory(f, "d"));
        SHOW(__wasi_path_open(f, 0, "a", 0, 0, 0, 0, &fd));
        SHOW(__wasi_path_unlink_file(f, "a"));
        SHOW(__wasi_sock_accept(f, 0, &fd));
        SHOW(__wasi_sock_shutdown(f, __WASI_SDFLAGS_RD));
        SHOW(__wasi_fd_prestat_get(f, &prestat));
    }
    n = 99;
    SHOW(__wasi_fd_read(0, &iov, 1, &n));
    printf("stdin read %u bytes\n", (unsigned)n);
    SHOW(__wasi_fd_read(1, &iov, 1, &n));
    SHOW(__wasi_fd_write(0, &ciov, 1, &n));
    /* Bad arguments where there is something to check them against. */
    SHOW(__wasi_clock_res_get(__WASI_CLOCKID_PROCESS_CPUTIME_ID, &time));
    SHOW(__wasi_clock_time_get(__WASI_CLOCKID_THREAD_CPUTIME_ID, 1, &time));
    SHOW(__wasi_fd_fdstat_set_flags(1, __WASI_FDFLAGS_APPEND));
    SHOW(__wasi_poll_oneoff(0, 0, 0, &n));
    /* Streams never block: a subscription to one is an event at once, beside a clock. */
    __wasi_subscription_t subscriptions[4] = {
        {.userdata = 1, .u = {.tag = __WASI_EVENTTYPE_FD_READ, .u.fd_read = {0}}},
        {.userdata = 2, .u = {.tag = __WASI_EVENTTYPE_FD_WRITE, .u.fd_write = {1}}},
        {.userdata = 3, .u = {.tag = __WASI_EVENTTYPE_CLOCK, .u.clock = {__WASI_CLOCKID_MONOTONIC, 60000000000ull, 0, 0}}},
        {.userdata = 4, .u = {.tag = __WASI_EVENTTYPE_FD_READ, .u.fd_read = {9}}},
    };
    __wasi_event_t happened[4];
    SHOW(__wasi_poll_oneoff(subscriptions, happened, 4, &n));
    SHOW(__wasi_poll_oneoff(subscriptions, happened, 3, &n));
    for (__wasi_size_t i = 0; i < n; i++)
        printf("event %llu: error %d type %d nbytes %llu flags %d\n", (unsigned long long)happened[i].userdata,
               happened[i].error, happened[i].type, (unsigned long long)happened[i].fd_readwrite.nbytes,
               happened[i].fd_readwrite.flags);
    /* The wrong direction: reading stdout, writing stdin. */
    subscriptions[0].u.u.fd_read.file_descriptor = 1;
    subscriptions[1].u.u.fd_write.file_descriptor = 0;
    SHOW(__wasi_poll_oneoff(subscriptions, happened, 2, &n));
    SHOW(__wasi_random_get((uint8_t *)buffer, 0));
    SHOW(__wasi_sched_yield());
    /* Closing a standard stream closes it: it is gone afterwards. */
    SHOW(__wasi_fd_close(0));
    SHOW(__wasi_fd_read(0, &iov, 1, &n));
    SHOW(__wasi_fd_close(0));
    SHOW(__wasi_fd_fdstat_get(0, &fdstat));
    SHOW(__wasi_fd_renumber(2, 0));
    SHOW(__wasi_fd_fdstat_get(0, &fdstat));
    return 0;
}
