/* ps2: the PS/2 keyboard driver. Turns scan codes (set 1, as the i8042 translates them) into
 * text and sends it to the console. For exercising supervision: F12 makes it crash on purpose,
 * F11 asks the console to (it then sees the console's death as an error, then service again).
 * Grants: KWAST_GRANT(0) IRQ 1, (1) its notification, (2) ports 0x60-0x64, (3) console (call). */
#include <kwast.h>
#include <stdio.h>

#define IRQ KWAST_GRANT(0)
#define INTERRUPTS KWAST_GRANT(1)
#define PORTS KWAST_GRANT(2)
#define CONSOLE KWAST_GRANT(3)

#define DATA 0x60
#define STATUS 0x64
#define OUTPUT_FULL 0x01

#define LEFT_SHIFT 0x2a
#define RIGHT_SHIFT 0x36
#define RELEASED 0x80
#define F11 0x57
#define F12 0x58
#define CONSOLE_CRASH 0x01

static const char plain[0x3a] = {
    0, 0, '1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '-', '=', '\b', '\t',
    'q', 'w', 'e', 'r', 't', 'y', 'u', 'i', 'o', 'p', '[', ']', '\n', 0, 'a', 's',
    'd', 'f', 'g', 'h', 'j', 'k', 'l', ';', '\'', '`', 0, '\\', 'z', 'x', 'c', 'v',
    'b', 'n', 'm', ',', '.', '/', 0, '*', 0, ' ',
};
static const char shifted[0x3a] = {
    0, 0, '!', '@', '#', '$', '%', '^', '&', '*', '(', ')', '_', '+', '\b', '\t',
    'Q', 'W', 'E', 'R', 'T', 'Y', 'U', 'I', 'O', 'P', '{', '}', '\n', 0, 'A', 'S',
    'D', 'F', 'G', 'H', 'J', 'K', 'L', ':', '"', '~', 0, '|', 'Z', 'X', 'C', 'V',
    'B', 'N', 'M', '<', '>', '?', 0, '*', 0, ' ',
};

static int shift;

static void key(unsigned code) {
    if (code == LEFT_SHIFT || code == RIGHT_SHIFT) {
        shift = 1;
        return;
    }
    if (code == (LEFT_SHIFT | RELEASED) || code == (RIGHT_SHIFT | RELEASED)) {
        shift = 0;
        return;
    }
    if (code == F12) {
        printf("F12: crashing on purpose\n");
        __builtin_trap();
    }
    char c;
    if (code == F11)
        c = CONSOLE_CRASH;
    else if (code & RELEASED || code >= sizeof plain)
        return;
    else
        c = shift ? shifted[code] : plain[code];
    if (!c)
        return;
    char reply[1];
    int32_t result = kwast_call(CONSOLE, &c, 1, reply, sizeof reply, 0, 0, 1000);
    if (result < 0)
        printf("console: %s\n", kwast_error_name(result));
}

int main(void) {
    printf("ready\n");
    for (;;) {
        while (kwast_port_in8(PORTS, STATUS) & OUTPUT_FULL)
            key((unsigned)kwast_port_in8(PORTS, DATA));
        kwast_irq_ack(IRQ);
        /* A byte that arrived while the line was masked raised no interrupt we will see (the
         * IRQ is edge-triggered): look again now that it is unmasked, before sleeping. */
        if (kwast_port_in8(PORTS, STATUS) & OUTPUT_FULL)
            continue;
        int64_t bits = kwast_wait(INTERRUPTS, KWAST_FOREVER);
        if (bits < 0) {
            printf("wait: %s\n", kwast_error_name(bits));
            return 1;
        }
    }
}
