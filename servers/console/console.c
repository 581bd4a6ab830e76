/* console: owns the serial line and writes what other servers send it. A message of the single
 * byte CRASH makes it crash on purpose (to show its clients an error, then service again).
 * Grants: KWAST_GRANT(0) receive right of the "console" endpoint, KWAST_GRANT(1) COM1's ports. */
#include <kwast.h>
#include <stdio.h>

#define ENDPOINT KWAST_GRANT(0)
#define PORTS KWAST_GRANT(1)
#define COM1 0x3f8
#define LINE_STATUS (COM1 + 5)
#define TRANSMIT_EMPTY 0x20
#define CRASH 0x01

static void put(unsigned char byte) {
    while (!(kwast_port_in8(PORTS, LINE_STATUS) & TRANSMIT_EMPTY))
        ;
    kwast_port_out8(PORTS, COM1, byte);
}

int main(void) {
    static char buffer[KWAST_MAX_MESSAGE];
    printf("serving\n");
    for (;;) {
        kwast_message info;
        int32_t result = kwast_receive(ENDPOINT, buffer, sizeof buffer, &info, KWAST_FOREVER);
        if (result < 0) {
            printf("receive: %s\n", kwast_error_name(result));
            return 1;
        }
        if (info.kind != KWAST_MESSAGE)
            continue;
        if (info.length == 1 && buffer[0] == CRASH) {
            printf("crashing on purpose\n");
            __builtin_trap();
        }
        for (uint32_t i = 0; i < info.length; i++) {
            if (buffer[i] == '\n')
                put('\r');
            put((unsigned char)buffer[i]);
        }
        kwast_reply(info.reply, "", 0);
    }
}
