/* init: brings the system up from its manifest and keeps it up.
 *
 * Each argument describes one server: its boot module name, then `:key=value` items, each
 * giving it one capability, in order (they become its KWAST_GRANT(0), (1), ...):
 *   serve=NAME    the receive right of endpoint NAME (created on first mention, owned by init,
 *                 so it outlives a restart of its server)
 *   call=NAME     the call right of endpoint NAME, badged with the caller's index
 *   irq=N         IRQ N bound to a fresh notification: the IRQ (ack) and the notification (wait)
 *   ports=B+C     I/O ports B .. B+C-1
 *   arg=TEXT      not a capability: one argument for the server
 *   memory=SIZE   not a capability: the linear memory it may grow to (64M, 512K, 1G, bytes)
 *   watchdog=TIME not a capability: kill it after TIME of CPU without a kernel call (5s, 500ms)
 *   cpu=N         not a capability: it runs on CPU N only (spawning fails if N is not online)
 * e.g. `ps2:irq=1:ports=0x60+5:call=console`. Limits not given are the boot module's own.
 *
 * A server that dies is restarted, at most MAX_RESTARTS times, with a log line naming it and
 * why. init exits when every server has exited on its own. */
#include <kwast.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERVERS 16
#define MAX_ENDPOINTS 16
#define MAX_RESTARTS 3

struct endpoint { char name[32]; kwast_handle handle; };
struct server {
    char name[32];
    char args[256];
    kwast_handle grants[16];
    uint32_t grant_count;
    struct kwast_limits limits;
    kwast_handle process;
    int restarts;
    int running;
};

static struct endpoint endpoints[MAX_ENDPOINTS];
static int endpoint_count;
static struct server servers[MAX_SERVERS];
static int server_count;
static kwast_handle exits;

static void fail(const char *what, int64_t code) {
    printf("%s: %s (%lld)\n", what, kwast_error_name(code), (long long)code);
    exit(1);
}

static kwast_handle endpoint(const char *name) {
    for (int i = 0; i < endpoint_count; i++)
        if (strcmp(endpoints[i].name, name) == 0)
            return endpoints[i].handle;
    if (endpoint_count == MAX_ENDPOINTS)
        fail("too many endpoints", KWAST_ENOSPACE);
    int32_t handle = kwast_endpoint_create();
    if (handle < 0)
        fail("endpoint_create", handle);
    int32_t named = kwast_endpoint_name((kwast_handle)handle, name, (uint32_t)strlen(name));
    if (named < 0)
        fail("endpoint_name", named);
    snprintf(endpoints[endpoint_count].name, sizeof endpoints[0].name, "%s", name);
    endpoints[endpoint_count++].handle = (kwast_handle)handle;
    return (kwast_handle)handle;
}

/* `number` times the factor its suffix names, or 0 if the suffix is not one of `units`. */
static uint64_t scaled(const char *text, const char *const *units, const uint64_t *factors) {
    char *end;
    uint64_t number = strtoull(text, &end, 0);
    for (int i = 0; units[i]; i++)
        if (strcmp(end, units[i]) == 0)
            return number * factors[i];
    return 0;
}

static void give(struct server *s, int32_t handle, const char *what) {
    if (handle < 0)
        fail(what, handle);
    s->grants[s->grant_count++] = (kwast_handle)handle;
}

static void parse(struct server *s, char *spec, int index) {
    char *item = strtok(spec, ":");
    snprintf(s->name, sizeof s->name, "%s", item);
    while ((item = strtok(NULL, ":")) != NULL) {
        char *value = strchr(item, '=');
        if (!value) {
            printf("init: %s: '%s' is not key=value\n", s->name, item);
            exit(2);
        }
        *value++ = 0;
        if (strcmp(item, "serve") == 0) {
            give(s, kwast_mint(endpoint(value), KWAST_RIGHT_RECEIVE | KWAST_RIGHT_GRANT, 0), "mint serve");
        } else if (strcmp(item, "call") == 0) {
            give(s, kwast_mint(endpoint(value), KWAST_RIGHT_CALL | KWAST_RIGHT_GRANT, (uint64_t)index + 1), "mint call");
        } else if (strcmp(item, "irq") == 0) {
            int32_t notification = kwast_notification_create();
            if (notification < 0)
                fail("notification_create", notification);
            give(s, kwast_irq_bind(KWAST_INIT_IRQS, (uint32_t)strtoul(value, NULL, 0), (kwast_handle)notification, 1), "irq_bind");
            give(s, notification, "notification");
        } else if (strcmp(item, "ports") == 0) {
            char *count = strchr(value, '+');
            if (!count) {
                printf("init: %s: ports=%s is not BASE+COUNT\n", s->name, value);
                exit(2);
            }
            *count++ = 0;
            give(s, kwast_ports_grant(KWAST_INIT_PORTS, (uint32_t)strtoul(value, NULL, 0), (uint32_t)strtoul(count, NULL, 0)), "ports_grant");
        } else if (strcmp(item, "memory") == 0) {
            static const char *const units[] = {"", "K", "M", "G", NULL};
            static const uint64_t factors[] = {1, 1 << 10, 1 << 20, 1 << 30};
            if (!(s->limits.memory_bytes = scaled(value, units, factors))) {
                printf("init: %s: memory=%s is not a size (64M, 512K, 1G)\n", s->name, value);
                exit(2);
            }
        } else if (strcmp(item, "watchdog") == 0) {
            static const char *const units[] = {"s", "ms", NULL};
            static const uint64_t factors[] = {1000, 1};
            if (!(s->limits.watchdog_ms = scaled(value, units, factors))) {
                printf("init: %s: watchdog=%s is not a time (5s, 500ms)\n", s->name, value);
                exit(2);
            }
        } else if (strcmp(item, "cpu") == 0) {
            char *end;
            unsigned long cpu = strtoul(value, &end, 10);
            if (*value == 0 || *end != 0 || cpu >= 64) {
                printf("init: %s: cpu=%s is not a CPU number (0 to 63)\n", s->name, value);
                exit(2);
            }
            s->limits.cpu = KWAST_CPU(cpu);
        } else if (strcmp(item, "arg") == 0) {
            size_t used = strlen(s->args);
            snprintf(s->args + used, sizeof s->args - used, "%s%s", used ? " " : "", value);
        } else {
            printf("init: %s: unknown item '%s'\n", s->name, item);
            exit(2);
        }
    }
}

static void start(int index) {
    struct server *s = &servers[index];
    int32_t process = kwast_spawn(KWAST_INIT_SPAWN, s->name, strlen(s->name), s->args, strlen(s->args),
                                  s->grants, s->grant_count, exits, 1ull << index, &s->limits);
    if (process < 0)
        fail("spawn", process);
    s->process = (kwast_handle)process;
    s->running = 1;
}

int main(int argc, char **argv) {
    int32_t notification = kwast_notification_create();
    if (notification < 0)
        fail("notification_create", notification);
    exits = (kwast_handle)notification;
    for (int i = 1; i < argc && server_count < MAX_SERVERS; i++)
        parse(&servers[server_count], argv[i], server_count), server_count++;
    // Said before any server runs, so this line never lands in the middle of their output.
    char names[MAX_SERVERS * sizeof servers[0].name] = "";
    size_t used = 0;
    for (int i = 0; i < server_count && used < sizeof names; i++)
        used += snprintf(names + used, sizeof names - used, " %s", servers[i].name);
    printf("starting %d servers:%s\n", server_count, names);
    for (int i = 0; i < server_count; i++)
        start(i);

    int running = server_count;
    while (running > 0) {
        int64_t bits = kwast_wait(exits, KWAST_FOREVER);
        if (bits < 0)
            fail("wait", bits);
        for (int i = 0; i < server_count; i++) {
            struct server *s = &servers[i];
            if (!(bits & (1ull << i)) || !s->running)
                continue;
            char reason[512] = "";
            int32_t status = kwast_process_status(s->process, reason, sizeof reason);
            kwast_close(s->process);
            s->running = 0;
            if (status == 0) {
                printf("%s exited\n", s->name);
                running--;
            } else if (s->restarts == MAX_RESTARTS) {
                printf("giving up on %s after %d restarts\n", s->name, MAX_RESTARTS);
                running--;
            } else {
                s->restarts++;
                if (status == KWAST_EKILLED)
                    printf("restarting %s (killed: %s), restart %d of %d\n", s->name, reason, s->restarts, MAX_RESTARTS);
                else
                    printf("restarting %s (exit code %d), restart %d of %d\n", s->name, status, s->restarts, MAX_RESTARTS);
                start(i);
            }
        }
    }
    printf("every server has ended\n");
    return 0;
}
