/* serial_at.h - the host side of the Edge Impulse AT firmware protocol, as
 * `edge-impulse-run-impulse` speaks it, as a pure state machine: fed the device's bytes and the
 * time, it says what to write next and what happened. No I/O: the serial source owns the tty.
 *
 * What it does, from serial_at_start:
 *  1. handshake: writes `b\r` (stops an impulse still running) and waits up to handshake_ms
 *     (5 s) for the prompt `"> "` at the start of a line (also after `\x1b[2K\r`) followed by
 *     SERIAL_AT_PROMPT_QUIET_MS of silence (every prompt is taken so, in serial_at_tick); retries
 *     (handshake_tries in all), then gives up: a device that only prints (SERIAL_AT_PRINT_ONLY;
 *     a prompt seen later still goes on with step 2);
 *  2. `AT+CONFIG?`: reads the `key: value` lines up to the prompt (split at the first `:`, keys
 *     case-insensitive, sections `= Device info =`, `= Inference =`, `= Snapshot =`): ID, Type,
 *     AT Version (absent = 1.0.0), Data Transfer Baudrate, Inference Sensor and Model type,
 *     Snapshot Resolutions;
 *  3. starts the impulse per the mode: `AT+RUNIMPULSE`, `AT+RUNIMPULSECONT`, or
 *     `AT+RUNIMPULSEDEBUG=n` (AT >= 1.6; bare `AT+RUNIMPULSEDEBUG` below). A refusal
 *     (`Not a valid AT command`, `Command not found!`, `No handler for command!`,
 *     `Error no continuous classification available...`) is reported and, for the continuous
 *     and debug modes, followed by plain `AT+RUNIMPULSE`;
 *  4. running: the device prints results (the serial parser reads them, not this). A prompt
 *     while running means the device left the impulse (a reset, a `b`): back to step 2.
 * serial_at_stop, once the start command was written, writes `b\r` and waits up to stop_ms for
 * the prompt or `Inferencing stopped by user`; before that it stops at once, writing nothing.
 *
 * Commands end in `\r` only. Output is paced as the CLI paces it (small UART buffers): pieces of
 * at most SERIAL_AT_PIECE bytes, SERIAL_AT_PIECE_GAP_MS apart. */
#ifndef EI_SOURCES_SERIAL_AT_H
#define EI_SOURCES_SERIAL_AT_H

#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"

#define SERIAL_AT_PIECE 5
#define SERIAL_AT_PIECE_GAP_MS 20
#define SERIAL_AT_VALUE_MAX 96 /* bytes kept of one configuration value */
/* A prompt counts once this long passed with no byte after it: a device at its prompt is
 * silent, while a stale prompt (the boot banner's, still buffered when the tty is opened) is
 * followed at once by the answer to b. */
#define SERIAL_AT_PROMPT_QUIET_MS 100

typedef struct serial_at serial_at; /* opaque */

typedef enum serial_at_mode {
    SERIAL_AT_NORMAL,     /* AT+RUNIMPULSE */
    SERIAL_AT_CONTINUOUS, /* AT+RUNIMPULSECONT */
    SERIAL_AT_DEBUG,      /* AT+RUNIMPULSEDEBUG=n (the Framebuffer of each window) */
} serial_at_mode;

typedef enum serial_at_state {
    SERIAL_AT_IDLE,       /* before start */
    SERIAL_AT_HANDSHAKE,  /* b\r written, waiting for the prompt */
    SERIAL_AT_CONFIG,     /* AT+CONFIG? written, reading its answer */
    SERIAL_AT_STARTING,   /* the start command written */
    SERIAL_AT_RUNNING,    /* the device runs the impulse */
    SERIAL_AT_REFUSED,    /* the device refused every start: it sits at its prompt */
    SERIAL_AT_PRINT_ONLY, /* no prompt after every handshake try: the device only prints */
    SERIAL_AT_STOPPING,   /* b\r written at stop, waiting for the device to stop */
    SERIAL_AT_STOPPED,    /* stopped (or stop timed out) */
} serial_at_state;

typedef enum serial_at_event {
    SERIAL_AT_EV_PROMPT,    /* the handshake was answered */
    SERIAL_AT_EV_CONFIG,    /* AT+CONFIG? read: serial_at_config_get */
    SERIAL_AT_EV_STARTED,   /* the device runs the impulse; text: the command */
    SERIAL_AT_EV_REFUSED,   /* the device refused a command; text: its reply */
    SERIAL_AT_EV_NO_PROMPT, /* every handshake try timed out; text: why */
    SERIAL_AT_EV_LEFT,      /* the device showed its prompt while running: starting again */
    SERIAL_AT_EV_STOPPED,   /* stop: the device answered, or stop_ms passed (text says so) */
} serial_at_event;

/* What AT+CONFIG? said; "" (sensor -1) when not said. Values are printable ASCII. */
typedef struct serial_at_config {
    char id[SERIAL_AT_VALUE_MAX];
    char type[SERIAL_AT_VALUE_MAX];
    char at_version[SERIAL_AT_VALUE_MAX];  /* "1.0.0" when absent */
    char baudrate[SERIAL_AT_VALUE_MAX];    /* Data Transfer Baudrate */
    int sensor;                            /* Inference: Sensor; -1 unknown */
    char model_type[SERIAL_AT_VALUE_MAX];  /* Inference: Model type */
    char resolutions[SERIAL_AT_VALUE_MAX]; /* Snapshot: Resolutions */
} serial_at_config;

/* Called for each event, from serial_at_feed/_tick/_stop; text is borrowed for the call. */
typedef void (*serial_at_event_fn)(void *arg, serial_at_event ev, const char *text);

typedef struct serial_at_opts {
    serial_at_mode mode;
    int handshake_ms;    /* wait for the prompt per try; 0 = 5000 */
    int handshake_tries; /* 0 = 3 */
    int reply_ms;        /* wait for a command's answer; 0 = 5000 */
    int stop_ms;         /* wait at stop; 0 = 1000 */
    serial_at_event_fn event;
    void *arg;
} serial_at_opts;

er_rc serial_at_create(const serial_at_opts *o, serial_at **out, er_err *err);
void serial_at_destroy(serial_at *a); /* NULL is fine */

/* (Re)starts from the handshake with a fresh device (after an open or reopen). */
void serial_at_start(serial_at *a, int64_t now_ms);
/* Device bytes. */
void serial_at_feed(serial_at *a, const uint8_t *data, size_t len, int64_t now_ms);
/* Timeouts due at now. */
void serial_at_tick(serial_at *a, int64_t now_ms);
/* Asks the device to stop (b\r) if the impulse was started (STARTING, RUNNING); else stopped at
 * once. */
void serial_at_stop(serial_at *a, int64_t now_ms);

/* The bytes due at now (at most SERIAL_AT_PIECE, borrowed until the next call); 0 when none is
 * due. After writing some, call serial_at_wrote with how many were written. */
size_t serial_at_output(const serial_at *a, int64_t now_ms, const uint8_t **data);
void serial_at_wrote(serial_at *a, size_t n, int64_t now_ms);
/* The next time output or a timeout is due; INT64_MAX when nothing is. */
int64_t serial_at_deadline(const serial_at *a);

serial_at_state serial_at_state_get(const serial_at *a);
const char *serial_at_state_name(serial_at_state s);
const serial_at_config *serial_at_config_get(const serial_at *a);
/* The configuration as a JSON object text for the source's "model" (malloc'ed; NULL when out
 * of memory): device_id, device_type, at_version, transfer_baudrate, sensor (its name),
 * model_type, resolutions; keys not said are left out. */
char *serial_at_config_json(const serial_at *a);

#endif
