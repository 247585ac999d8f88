/* ageclock.h - the age clock: the milliseconds by which retention measures how old a stored row
 * is. It advances with CLOCK_BOOTTIME (which counts suspend and is never stepped), not with the
 * wall clock, so a clock set forward (NTP's first sync on a gateway without an RTC) does not
 * age fresh rows and a clock set back does not stop old ones from ageing.
 *
 * The store keeps a mark (the clock's value at a boot-relative moment, with the boot id) and
 * persists it; a later start of the same boot continues from it exactly, a start after a reboot
 * adds the downtime only when the wall clock was NTP-synchronised both when the mark was taken
 * and now (then the wall clock's difference is the true downtime), and adds nothing otherwise
 * (a row then lives longer, never shorter, than its age).
 *
 * ageclock_now reads the system; everything else is pure. */
#ifndef EI_CORE_AGECLOCK_H
#define EI_CORE_AGECLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"

#define AGECLOCK_BOOT_ID_MAX 40 /* a boot id is a 36-character uuid */
#define AGECLOCK_TEXT_MAX 128   /* ageclock_format's output, NUL included */

typedef struct ageclock_mark {
    int64_t age_ms;                     /* the age clock's value at this moment */
    char boot_id[AGECLOCK_BOOT_ID_MAX]; /* the kernel's boot id; "" when unknown */
    int64_t boot_ms;                    /* CLOCK_BOOTTIME, ms */
    int64_t wall_ms;                    /* CLOCK_REALTIME, epoch ms */
    bool synced; /* the kernel said the wall clock was synchronised (adjtimex) */
} ageclock_mark;

/* The current moment (boot id, boot time, wall time, sync state); age_ms is set to 0. */
void ageclock_now(ageclock_mark *m);

/* The milliseconds that passed from mark then to mark now (see the header comment), >= 0. */
int64_t ageclock_elapsed(const ageclock_mark *then, const ageclock_mark *now);

/* Continues from a persisted mark: now->age_ms = then->age_ms + elapsed, and at least floor
 * (the newest stored row's age, so the clock never runs behind what it stamped). */
void ageclock_resume(const ageclock_mark *then, ageclock_mark *now, int64_t floor);

/* The age clock at boot time boot_ms, from base (taken in this boot); never before base. */
int64_t ageclock_at(const ageclock_mark *base, int64_t boot_ms);

/* The boot time in ms (CLOCK_BOOTTIME). */
int64_t ageclock_boot_ms(void);

/* The persisted text: "1 <age_ms> <boot_id|-> <boot_ms> <wall_ms> <0|1>". format returns the
 * length written (out holds AGECLOCK_TEXT_MAX bytes); parse answers ER_INVALID on anything
 * else (the caller then starts a new clock). */
int ageclock_format(const ageclock_mark *m, char *out, size_t cap);
er_rc ageclock_parse(const char *text, ageclock_mark *out);

#endif
