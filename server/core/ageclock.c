/* ageclock.c - see ageclock.h. */
#include "core/ageclock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"

static int64_t clock_ms(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ageclock_boot_ms(void)
{
    return clock_ms(CLOCK_BOOTTIME);
}

/* The boot id without its newline; "" when it cannot be read (then every start counts as a
 * new boot: the conservative side). */
static void read_boot_id(char *out, size_t cap)
{
    out[0] = '\0';
    int fd = open(BOOT_ID_PATH, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n;
    do
        n = read(fd, out, cap - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0) n = 0;
    out[n] = '\0';
    out[strcspn(out, " \t\r\n")] = '\0';
}

void ageclock_now(ageclock_mark *m)
{
    struct timex tx;
    memset(m, 0, sizeof *m);
    read_boot_id(m->boot_id, sizeof m->boot_id);
    m->boot_ms = ageclock_boot_ms();
    m->wall_ms = clock_ms(CLOCK_REALTIME);
    memset(&tx, 0, sizeof tx);
    int state = adjtimex(&tx); /* modes 0: only reads */
    m->synced = state >= 0 && state != TIME_ERROR && !(tx.status & STA_UNSYNC);
}

int64_t ageclock_elapsed(const ageclock_mark *then, const ageclock_mark *now)
{
    /* Same boot: CLOCK_BOOTTIME is exact, whatever the wall clock did meanwhile. */
    if (then->boot_id[0] && strcmp(then->boot_id, now->boot_id) == 0 &&
        now->boot_ms >= then->boot_ms)
        return now->boot_ms - then->boot_ms;
    /* Another boot: the downtime is known only from two synchronised wall clock readings. */
    if (then->synced && now->synced && now->wall_ms > then->wall_ms)
        return now->wall_ms - then->wall_ms;
    return 0;
}

void ageclock_resume(const ageclock_mark *then, ageclock_mark *now, int64_t floor)
{
    int64_t age = then->age_ms + ageclock_elapsed(then, now);
    now->age_ms = age > floor ? age : floor;
}

int64_t ageclock_at(const ageclock_mark *base, int64_t boot_ms)
{
    return boot_ms > base->boot_ms ? base->age_ms + (boot_ms - base->boot_ms) : base->age_ms;
}

int ageclock_format(const ageclock_mark *m, char *out, size_t cap)
{
    return snprintf(out, cap, "1 %" PRId64 " %s %" PRId64 " %" PRId64 " %d", m->age_ms,
                    m->boot_id[0] ? m->boot_id : "-", m->boot_ms, m->wall_ms, m->synced ? 1 : 0);
}

er_rc ageclock_parse(const char *text, ageclock_mark *out)
{
    ageclock_mark m;
    int synced = 0, used = 0;
    memset(&m, 0, sizeof m);
    memset(out, 0, sizeof *out);
    if (!text ||
        sscanf(text, "1 %" SCNd64 " %39s %" SCNd64 " %" SCNd64 " %d%n", &m.age_ms, m.boot_id,
               &m.boot_ms, &m.wall_ms, &synced, &used) != 5 ||
        text[used] != '\0' || (synced != 0 && synced != 1) || m.boot_ms < 0)
        return ER_INVALID;
    if (strcmp(m.boot_id, "-") == 0) m.boot_id[0] = '\0';
    m.synced = synced == 1;
    *out = m;
    return ER_OK;
}
