/* kwast.h: the Kwast kernel ABI for wasm servers (the `kwast` import module).
 *
 * A server holds capabilities as handles (uint32_t); every call names the handle it uses and
 * fails with a negative KWAST_E* code when the handle is missing, stale, of the wrong kind or
 * lacks the right. The kernel never trusts a pointer: a buffer outside the server's linear
 * memory is KWAST_EBADADDRESS.
 *
 * The numbers and records below mirror the kernel's (kernel/src/wasm/abi/records.rs and
 * `ipc::error::Error`): tests/test_abi.py checks every one against the kernel's DWARF.
 */
#ifndef KWAST_H
#define KWAST_H

#include <stdint.h>

#define KWAST_IMPORT(name) __attribute__((import_module("kwast"), import_name(#name)))

/* Errors (negative return values). */
#define KWAST_EINVALIDHANDLE   (-1)  /* no such handle, or a stale one */
#define KWAST_EWRONGKIND       (-2)  /* the handle names another kind of object */
#define KWAST_ENORIGHTS        (-3)  /* the handle lacks the right, or the port is not granted */
#define KWAST_ETOOBIG          (-4)  /* message over KWAST_MAX_MESSAGE, or reply over the buffer */
#define KWAST_ETIMEDOUT        (-5)
#define KWAST_EPEERDIED        (-6)  /* the other side died or closed the endpoint */
#define KWAST_ENOSPACE         (-7)  /* the handle table is full */
#define KWAST_EBADADDRESS      (-8)  /* a buffer outside linear memory */
#define KWAST_EINVALIDARGUMENT (-9)
#define KWAST_EBUSY            (-10) /* the IRQ is bound elsewhere */
#define KWAST_ESTILLRUNNING    (-11) /* kwast_process_status: it has not ended */
#define KWAST_EKILLED          (-12) /* kwast_process_status: killed, the reason is in the buffer */

/* Rights a handle may carry. */
#define KWAST_RIGHT_CALL    (1u << 0)
#define KWAST_RIGHT_RECEIVE (1u << 1)
#define KWAST_RIGHT_SIGNAL  (1u << 2)
#define KWAST_RIGHT_WAIT    (1u << 3)
#define KWAST_RIGHT_GRANT   (1u << 4)  /* may be passed on in a message */
#define KWAST_RIGHT_ACK     (1u << 5)
#define KWAST_RIGHT_IO      (1u << 6)

/* The largest message or reply, and how many handles one message may carry. */
#define KWAST_MAX_MESSAGE  4096
#define KWAST_MAX_TRANSFER 4

/* The bits a notification carries. */
#define KWAST_SIGNAL_BITS 0x7fffffffffffffffull

/* A timeout meaning "wait forever". Timeouts are in milliseconds. */
#define KWAST_FOREVER UINT64_MAX

typedef uint32_t kwast_handle;

/* A new server's handles are the capabilities it was started with, in the order given:
 * KWAST_GRANT(0) is the first. Each server's source says what its grants are. */
#define KWAST_GRANT(i) ((kwast_handle)((1u << 16) | ((i) + 1)))

/* init's grants: the authority to start boot modules, bind IRQs and grant I/O ports. */
#define KWAST_INIT_SPAWN KWAST_GRANT(0)
#define KWAST_INIT_IRQS  KWAST_GRANT(1)
#define KWAST_INIT_PORTS KWAST_GRANT(2)

/* What kwast_receive got, besides the data. */
#define KWAST_MESSAGE 0  /* a call: answer it with kwast_reply(info.reply, ...) */
#define KWAST_SIGNALS 1  /* signals of the endpoint's bound notification, in info.signals */

typedef struct {
    uint64_t badge;        /* the badge of the handle the caller called through */
    uint64_t signals;      /* KWAST_SIGNALS: the bits taken */
    uint32_t kind;         /* KWAST_MESSAGE or KWAST_SIGNALS */
    uint32_t length;       /* bytes of the message now in the buffer */
    kwast_handle reply;    /* one-shot reply capability */
    uint32_t transferred_count;
    kwast_handle transferred[KWAST_MAX_TRANSFER];  /* handles the caller passed, now ours */
} kwast_message;

/* Sends `request` on `endpoint` (needs KWAST_RIGHT_CALL), passing copies of the `transfer`
 * handles (each needs KWAST_RIGHT_GRANT), and waits for the reply. Returns the reply's length
 * (copied into `reply`), or an error: KWAST_EPEERDIED if the server died, KWAST_ETIMEDOUT,
 * KWAST_ETOOBIG if the request does not fit the server's buffer or the reply `reply`. */
KWAST_IMPORT(call)
int32_t kwast_call(kwast_handle endpoint, const void *request, uint32_t request_length, void *reply,
                   uint32_t reply_capacity, const kwast_handle *transfer, uint32_t transfer_count,
                   uint64_t timeout_ms);

/* Waits for a call on `endpoint` (needs KWAST_RIGHT_RECEIVE), or for signals of its bound
 * notification. Returns 0 and fills `info`, or an error. A call bigger than `capacity` fails
 * its caller with KWAST_ETOOBIG and this receive waits on; one whose handles do not fit this
 * server's handle table fails both sides with KWAST_ENOSPACE. */
KWAST_IMPORT(receive)
int32_t kwast_receive(kwast_handle endpoint, void *buffer, uint32_t capacity, kwast_message *info,
                      uint64_t timeout_ms);

/* Answers a received call, once. KWAST_EPEERDIED if its caller gave up or died. */
KWAST_IMPORT(reply)
int32_t kwast_reply(kwast_handle reply, const void *data, uint32_t length);

/* A server's loop in one kernel call: answers `reply` as kwast_reply (0: nothing to answer),
 * then waits as kwast_receive. A caller that gave up is no error here: the server serves on.
 * Any other error of the reply is returned, and nothing is received. */
KWAST_IMPORT(reply_receive)
int32_t kwast_reply_receive(kwast_handle reply, const void *data, uint32_t length, kwast_handle endpoint,
                            void *buffer, uint32_t capacity, kwast_message *info, uint64_t timeout_ms);

/* ORs `bits` into a notification (needs KWAST_RIGHT_SIGNAL). A notification has 63 bits
 * (KWAST_SIGNAL_BITS), so that kwast_wait can return them; bit 63 is KWAST_EINVALIDARGUMENT
 * here, in kwast_irq_bind and in kwast_spawn's exit_bits. The signaller runs on; its longest
 * waiter runs next on its CPU when the signaller blocks, unless a thread of higher priority
 * is ready (as a call runs its waiting server next). */
KWAST_IMPORT(signal)
int32_t kwast_signal(kwast_handle notification, uint64_t bits);

/* Waits for and takes a notification's bits (needs KWAST_RIGHT_WAIT): bits > 0, or an error. */
KWAST_IMPORT(wait)
int64_t kwast_wait(kwast_handle notification, uint64_t timeout_ms);

/* kwast_signal, then kwast_wait on `wait` in the same kernel call: the signalled notification's
 * longest waiter runs as soon as the caller waits. An error of the signal is returned, and
 * nothing is waited for. */
KWAST_IMPORT(signal_wait)
int64_t kwast_signal_wait(kwast_handle notification, uint64_t bits, kwast_handle wait, uint64_t timeout_ms);

/* Done with the last interrupt of an IRQ (needs KWAST_RIGHT_ACK): lets the next one in. */
KWAST_IMPORT(irq_ack)
int32_t kwast_irq_ack(kwast_handle irq);

/* Port I/O within a granted range (needs KWAST_RIGHT_IO): a byte value, or an error. */
KWAST_IMPORT(port_in8)
int32_t kwast_port_in8(kwast_handle ports, uint32_t port);
KWAST_IMPORT(port_out8)
int32_t kwast_port_out8(kwast_handle ports, uint32_t port, uint32_t value);

/* Drops a handle. */
KWAST_IMPORT(close)
int32_t kwast_close(kwast_handle handle);

/* A new endpoint (all rights), owned by the caller: it closes when the caller dies, not when a
 * server it gave the receive right to dies, so a restarted server can take over its calls. */
KWAST_IMPORT(endpoint_create)
int32_t kwast_endpoint_create(void);

/* Names the endpoint behind `endpoint` (any rights) for the debugger: `kwast-bench state`
 * shows calls on it under that name (at most 23 bytes are kept). */
KWAST_IMPORT(endpoint_name)
int32_t kwast_endpoint_name(kwast_handle endpoint, const char *name, uint32_t name_len);

/* A new notification (all rights). */
KWAST_IMPORT(notification_create)
int32_t kwast_notification_create(void);

/* A copy of `handle` with `rights` (a subset of its own) and `badge`. A badge, once set, stays:
 * a copy of a badged handle keeps it (pass 0 or that badge; another is KWAST_EINVALIDARGUMENT). */
KWAST_IMPORT(mint)
int32_t kwast_mint(kwast_handle handle, uint32_t rights, uint64_t badge);

/* Binds ISA IRQ `irq` to signal `bits` on `notification` (needs KWAST_INIT_IRQS): an IRQ
 * handle for the driver (KWAST_RIGHT_ACK). The line is masked again when no handle remains. */
KWAST_IMPORT(irq_bind)
int32_t kwast_irq_bind(kwast_handle irq_control, uint32_t irq, kwast_handle notification, uint64_t bits);

/* A handle for I/O ports base .. base + count - 1 (needs KWAST_INIT_PORTS). */
KWAST_IMPORT(ports_grant)
int32_t kwast_ports_grant(kwast_handle port_control, uint32_t base, uint32_t count);

/* What a started server may use; 0 in a field keeps the boot module's own setting (from the
 * config), and a NULL `limits` keeps them all. */
struct kwast_limits {
    uint64_t memory_bytes; /* linear memory it may grow to (at most 4 GiB); past it malloc gives NULL */
    uint64_t watchdog_ms;  /* killed after this much CPU time without a kernel call */
    uint64_t cpu;          /* KWAST_CPU(n): it runs on CPU n only (one online, or EINVAL) */
};
#define KWAST_CPU(n) ((uint64_t)(n) + 1)

/* Starts the boot module `name` (needs KWAST_INIT_SPAWN) with space-separated `args`, giving it
 * copies of `grants` (each needs KWAST_RIGHT_GRANT) as its KWAST_GRANT(0..). When it ends, the
 * kernel signals `exit_bits` on `exit_notification` (0: none). Returns a process handle. */
KWAST_IMPORT(spawn)
int32_t kwast_spawn(kwast_handle spawn_control, const char *name, uint32_t name_length, const char *args,
                    uint32_t args_length, const kwast_handle *grants, uint32_t grant_count,
                    kwast_handle exit_notification, uint64_t exit_bits, const struct kwast_limits *limits);

/* How a started process ended: its exit code (>= 0), KWAST_ESTILLRUNNING, or KWAST_EKILLED
 * with the reason (a NUL-terminated line) in `reason`. */
KWAST_IMPORT(process_status)
int32_t kwast_process_status(kwast_handle process, char *reason, uint32_t capacity);

/* The CPU's time stamp counter. Under QEMU's -icount shift=0 it counts guest instructions. */
KWAST_IMPORT(cycles)
uint64_t kwast_cycles(void);

/* A short name for an error code, for log lines. */
static inline const char *kwast_error_name(int64_t code) {
    switch (code) {
    case KWAST_EINVALIDHANDLE: return "invalid handle";
    case KWAST_EWRONGKIND: return "wrong kind";
    case KWAST_ENORIGHTS: return "no rights";
    case KWAST_ETOOBIG: return "too big";
    case KWAST_ETIMEDOUT: return "timed out";
    case KWAST_EPEERDIED: return "peer died";
    case KWAST_ENOSPACE: return "no space";
    case KWAST_EBADADDRESS: return "bad address";
    case KWAST_EINVALIDARGUMENT: return "invalid argument";
    case KWAST_EBUSY: return "busy";
    case KWAST_ESTILLRUNNING: return "still running";
    case KWAST_EKILLED: return "killed";
    default: return code >= 0 ? "ok" : "unknown error";
    }
}

#endif
