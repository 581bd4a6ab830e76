/* forger: uses handles it was never given and prints what the kernel answers. Every call must
 * fail with an error code; the kernel and the other servers must not notice. */
#include <kwast.h>
#include <stdio.h>

static void try(const char *what, int64_t result) {
    printf("%s: %lld (%s)\n", what, (long long)result, kwast_error_name(result));
}

int main(void) {
    char reply[8];
    try("call handle 0", kwast_call(0, "x", 1, reply, sizeof reply, 0, 0, 10));
    try("call forged 0x12345678", kwast_call(0x12345678, "x", 1, reply, sizeof reply, 0, 0, 10));
    try("call guessed KWAST_GRANT(0)", kwast_call(KWAST_GRANT(0), "x", 1, reply, sizeof reply, 0, 0, 10));
    try("signal forged 0xffffffff", kwast_signal(0xffffffffu, 1));
    try("port_in8 without ports", kwast_port_in8(KWAST_GRANT(3), 0x60));
    try("spawn without authority", kwast_spawn(KWAST_GRANT(0), "hello", 5, "", 0, 0, 0, 0, 0, 0));
    int32_t mine = kwast_notification_create();
    try("wait on own notification", kwast_wait((kwast_handle)mine, 5));
    try("call own notification", kwast_call((kwast_handle)mine, "x", 1, reply, sizeof reply, 0, 0, 10));
    try("receive into a bad buffer", kwast_receive((kwast_handle)mine, (void *)0xfffffff0u, 64, (kwast_message *)0, 10));
    kwast_close((kwast_handle)mine);
    try("signal closed handle", kwast_signal((kwast_handle)mine, 1));
    printf("done\n");
    return 0;
}
