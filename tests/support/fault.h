/* fault.h - fault injection for the in-process fault test (tests/inproc/test_fault.c), in
 * SQLite's own discipline: count the events of one kind from the moment the fault is armed and
 * fail the N-th one (once: a transient fault; FAULT_FULL: from then on), for N = 1, 2, ... until a
 * run no longer reaches N.
 *
 * The kinds and where they are counted:
 *   FAULT_ALLOC  every allocation: the project's own malloc/calloc/realloc/strdup/strndup (the
 *                test binary alone is linked with --wrap for them, so libc and the libraries
 *                keep theirs and the product binary is unchanged), SQLite's (a counting
 *                SQLITE_CONFIG_MALLOC) and cJSON's (cJSON_InitHooks). A failure returns NULL.
 *   FAULT_IO     every SQLite file call that reads or changes the disk (xRead, xWrite,
 *                xTruncate, xSync, xFileSize) through a VFS registered as the default, which
 *                wraps the real one: the failing call does nothing and returns its
 *                SQLITE_IOERR_* code (errno EIO).
 *   FAULT_WRITE  the calls that change the disk (xWrite, xTruncate, xSync), failing as a full
 *                disk does: xWrite answers SQLITE_FULL, the others their SQLITE_IOERR_* code
 *                with errno ENOSPC.
 *   FAULT_FULL   the same calls, but from the N-th on every one fails (a disk that stays full
 *                until the test pauses the fault: then the store must recover by itself).
 *
 * Counters are atomic: the store's writer thread counts as well as the caller. Not thread-safe
 * to arm or disarm while another thread runs store work (the test arms and disarms between
 * synchronous calls). */
#ifndef EI_TEST_FAULT_H
#define EI_TEST_FAULT_H

#include <stdbool.h>

typedef enum fault_kind { FAULT_ALLOC, FAULT_IO, FAULT_WRITE, FAULT_FULL, FAULT__N } fault_kind;

/* Installs SQLite's counting allocator, the wrapping VFS (as the default) and cJSON's hooks.
 * Call once, first thing in main, before anything touches SQLite or cJSON; false (said on
 * stderr) if SQLite refused the configuration. */
bool fault_install(void);
/* Starts counting events of kind k from zero; the n-th fails (FAULT_FULL: and every later one;
 * n <= 0: none fails). */
void fault_arm(fault_kind k, long n);
/* While paused nothing is counted and nothing fails (the test's own checks in a run). */
void fault_pause(bool paused);
/* Stops counting; returns how many events of the armed kind were counted. */
long fault_disarm(void);
/* Whether the armed fault was reached since fault_arm. */
bool fault_hit(void);
const char *fault_kind_name(fault_kind k);

#endif
