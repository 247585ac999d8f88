/* ratelimit.h - a bounded table of per-key request budgets: a token bucket per key (requests
 * per second with a burst), and a failure back-off per key (after `free` failures each one
 * blocks the key for base << n, up to a cap; forgotten after a quiet time or a success).
 *
 * Keys are short fixed-size byte strings made by ratelimit_key_addr (a client address; an
 * IPv6 client counts by its /64, since one host may own all of them) or ratelimit_key_token
 * (a keyed hash of a bearer token: the table never holds a secret). The table has a fixed
 * number of slots chosen at creation; a new key takes a free slot or the least recently used
 * one, so no client can grow memory by sending from many addresses.
 *
 * Pure apart from its mutex: every call is given the time (a monotonic ms clock), so the unit
 * test drives it without sleeping. Any thread may call any function on one table. */
#ifndef EI_CORE_RATELIMIT_H
#define EI_CORE_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/rc.h"

#define RATELIMIT_KEY_LEN 17 /* a kind byte, then 16 bytes */
#define RATELIMIT_SLOTS 2048 /* keys of each table the relay makes (about 150 KB) */

typedef struct ratelimit_key {
    unsigned char b[RATELIMIT_KEY_LEN];
} ratelimit_key;

typedef struct ratelimit_opts {
    size_t slots;           /* keys remembered at once (>= 1) */
    double per_s;           /* bucket: tokens added per second; <= 0: the bucket never limits */
    double burst;           /* bucket: its size (a new key starts full); < 1 is taken as 1 */
    int fail_free;          /* back-off: failures before the first block */
    int64_t fail_base_ms;   /* the first block; each further failure doubles it */
    int64_t fail_max_ms;    /* the longest block */
    int64_t fail_forget_ms; /* failures older than this (no failure since) are forgotten */
} ratelimit_opts;

typedef struct ratelimit ratelimit;

er_rc ratelimit_create(const ratelimit_opts *o, ratelimit **out);
void ratelimit_destroy(ratelimit *t); /* NULL is fine */

/* The key of a client address (IPv4, IPv6 by its /64, IPv4-mapped IPv6 as IPv4); false for
 * another family. *loopback: 127.0.0.0/8 or ::1. */
bool ratelimit_key_addr(const struct sockaddr *sa, ratelimit_key *key, bool *loopback);
/* The same from raw bytes: 4 (IPv4) or 16 (IPv6) of them. */
bool ratelimit_key_bytes(const unsigned char *addr, size_t n, ratelimit_key *key, bool *loopback);
/* The key of a token (len bytes), hashed with the table's secret seed (so only keys of t). */
void ratelimit_key_token(const ratelimit *t, const char *token, size_t len, ratelimit_key *key);

/* Bucket: takes one token of key. True when allowed; else *retry_ms says when one is back. */
bool ratelimit_take(ratelimit *t, const ratelimit_key *key, int64_t now_ms, int64_t *retry_ms);

/* Back-off: true while key is blocked, with the time left in *retry_ms. */
bool ratelimit_blocked(ratelimit *t, const ratelimit_key *key, int64_t now_ms, int64_t *retry_ms);
/* Counts a failure of key; returns the block it starts (0: none yet). */
int64_t ratelimit_failed(ratelimit *t, const ratelimit_key *key, int64_t now_ms);
/* A success: key's failures are forgotten. */
void ratelimit_succeeded(ratelimit *t, const ratelimit_key *key);

/* Keys dropped to make room for a new one so far (for the log and tests). */
uint64_t ratelimit_evicted(ratelimit *t);
/* Keys in the table now. */
size_t ratelimit_size(ratelimit *t);

/* Whole seconds to tell a client (Retry-After): ms rounded up, at least 1. */
long long ratelimit_retry_s(int64_t retry_ms);

#endif
