/* ratelimit.c - see ratelimit.h. The table is a fixed array of entries with a hash index
 * (chains of entry indices, the hash seeded at random so a client cannot pick colliding
 * addresses) and an LRU list through the same entries: a lookup moves its entry to the front,
 * a new key takes a free entry or the one at the back. Everything under one mutex. */
#include "core/ratelimit.h"

#include <math.h>

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define RL_NONE UINT32_MAX
#define RL_KIND_V4 4
#define RL_KIND_V6 6
#define RL_KIND_TOKEN 'T'

typedef struct rl_entry {
    ratelimit_key key;
    uint32_t hnext;      /* next entry in its hash chain */
    uint32_t prev, next; /* LRU list, most recent first */
    bool used;
    double tokens; /* bucket */
    int64_t refill_ms;
    int fails; /* back-off */
    int64_t last_fail_ms, blocked_until_ms;
} rl_entry;

struct ratelimit {
    pthread_mutex_t mu;
    ratelimit_opts o;
    rl_entry *e;     /* o.slots entries (owned) */
    uint32_t *heads; /* n_heads chain heads (owned) */
    size_t n_heads, used;
    uint32_t lru_head, lru_tail;
    uint64_t seed[2];
    atomic_uint_fast64_t evicted;
};

er_rc ratelimit_create(const ratelimit_opts *o, ratelimit **out)
{
    ratelimit *t = calloc(1, sizeof *t);
    if (!t) goto fail;
    t->o = *o;
    if (t->o.slots < 1) t->o.slots = 1;
    if (t->o.slots >= RL_NONE) t->o.slots = RL_NONE - 1;
    if (t->o.burst < 1) t->o.burst = 1;
    t->n_heads = t->o.slots; /* load factor at most 1 */
    t->e = calloc(t->o.slots, sizeof *t->e);
    t->heads = malloc(t->n_heads * sizeof *t->heads);
    if (!t->e || !t->heads) goto fail;
    for (size_t i = 0; i < t->n_heads; i++)
        t->heads[i] = RL_NONE;
    t->lru_head = t->lru_tail = RL_NONE;
    if (getrandom(t->seed, sizeof t->seed, GRND_NONBLOCK) != (ssize_t)sizeof t->seed) {
        /* no entropy yet (early boot): the clock still differs per start */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        t->seed[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec;
        t->seed[1] = t->seed[0] * 0xbf58476d1ce4e5b9ull + 1;
    }
    pthread_mutex_init(&t->mu, NULL);
    *out = t;
    return ER_OK;
fail:
    if (t) {
        free(t->e);
        free(t->heads);
    }
    free(t);
    return ER_NOMEM;
}

void ratelimit_destroy(ratelimit *t)
{
    if (!t) return;
    pthread_mutex_destroy(&t->mu);
    free(t->e);
    free(t->heads);
    free(t);
}

/* ---- keys ---- */

/* FNV-1a over n bytes, started from a seed, with a final mix (splitmix64) so that the low
 * bits used for the chain index depend on every input bit. */
static uint64_t hash64(uint64_t seed, const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

bool ratelimit_key_bytes(const unsigned char *addr, size_t n, ratelimit_key *key, bool *loopback)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char v6_loop[16] = {[15] = 1};
    memset(key, 0, sizeof *key);
    *loopback = false;
    if (n == 16 && memcmp(addr, mapped, sizeof mapped) == 0) {
        addr += 12;
        n = 4;
    }
    if (n == 4) {
        key->b[0] = RL_KIND_V4;
        memcpy(key->b + 1, addr, 4);
        *loopback = addr[0] == 127;
        return true;
    }
    if (n != 16) return false;
    key->b[0] = RL_KIND_V6;
    *loopback = memcmp(addr, v6_loop, 16) == 0;
    /* one host is given a whole /64 (SLAAC, privacy addresses): count the prefix */
    memcpy(key->b + 1, addr, *loopback ? 16 : 8);
    return true;
}

bool ratelimit_key_addr(const struct sockaddr *sa, ratelimit_key *key, bool *loopback)
{
    if (sa && sa->sa_family == AF_INET)
        return ratelimit_key_bytes(
            (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr, 4, key, loopback);
    if (sa && sa->sa_family == AF_INET6)
        return ratelimit_key_bytes(
            (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr, 16, key,
            loopback);
    memset(key, 0, sizeof *key);
    *loopback = false;
    return false;
}

void ratelimit_key_token(const ratelimit *t, const char *token, size_t n, ratelimit_key *key)
{
    uint64_t a = hash64(t->seed[0], (const unsigned char *)token, n);
    uint64_t b = hash64(t->seed[1], (const unsigned char *)token, n);
    key->b[0] = RL_KIND_TOKEN;
    memcpy(key->b + 1, &a, 8);
    memcpy(key->b + 9, &b, 8);
}

/* ---- the table (callers hold mu) ---- */

static size_t chain_of(const ratelimit *t, const ratelimit_key *key)
{
    return (size_t)(hash64(t->seed[0], key->b, sizeof key->b) % t->n_heads);
}

static void lru_unlink(ratelimit *t, uint32_t i)
{
    rl_entry *e = &t->e[i];
    if (e->prev != RL_NONE)
        t->e[e->prev].next = e->next;
    else
        t->lru_head = e->next;
    if (e->next != RL_NONE)
        t->e[e->next].prev = e->prev;
    else
        t->lru_tail = e->prev;
}

static void lru_front(ratelimit *t, uint32_t i)
{
    rl_entry *e = &t->e[i];
    e->prev = RL_NONE;
    e->next = t->lru_head;
    if (t->lru_head != RL_NONE) t->e[t->lru_head].prev = i;
    t->lru_head = i;
    if (t->lru_tail == RL_NONE) t->lru_tail = i;
}

static void chain_remove(ratelimit *t, uint32_t i)
{
    uint32_t *p = &t->heads[chain_of(t, &t->e[i].key)];
    while (*p != RL_NONE && *p != i)
        p = &t->e[*p].hnext;
    if (*p == i) *p = t->e[i].hnext;
}

/* The entry of key, made most recent; NULL when absent and !add. A new entry (added over the
 * least recent one when full) starts with a full bucket and no failures. */
static rl_entry *lookup(ratelimit *t, const ratelimit_key *key, bool add, int64_t now_ms)
{
    size_t c = chain_of(t, key);
    uint32_t i = t->heads[c];
    while (i != RL_NONE && memcmp(t->e[i].key.b, key->b, sizeof key->b) != 0)
        i = t->e[i].hnext;
    if (i != RL_NONE) {
        lru_unlink(t, i);
        lru_front(t, i);
        return &t->e[i];
    }
    if (!add) return NULL;
    if (t->used < t->o.slots) {
        i = (uint32_t)t->used++;
    } else {
        i = t->lru_tail;
        lru_unlink(t, i);
        chain_remove(t, i);
        atomic_fetch_add_explicit(&t->evicted, 1, memory_order_relaxed);
    }
    rl_entry *e = &t->e[i];
    *e = (rl_entry){.key = *key, .used = true, .tokens = t->o.burst, .refill_ms = now_ms};
    e->hnext = t->heads[c];
    t->heads[c] = i;
    lru_front(t, i);
    return e;
}

/* ---- bucket ---- */

bool ratelimit_take(ratelimit *t, const ratelimit_key *key, int64_t now_ms, int64_t *retry_ms)
{
    *retry_ms = 0;
    if (t->o.per_s <= 0) return true;
    pthread_mutex_lock(&t->mu);
    rl_entry *e = lookup(t, key, true, now_ms);
    if (now_ms > e->refill_ms) {
        e->tokens += (double)(now_ms - e->refill_ms) * t->o.per_s / 1000.0;
        if (e->tokens > t->o.burst) e->tokens = t->o.burst;
        e->refill_ms = now_ms;
    }
    bool ok = e->tokens >= 1.0;
    if (ok)
        e->tokens -= 1.0;
    else /* rounded up, not +1: an empty bucket at 1/s is 1000 ms, Retry-After 1, not 2 */
        *retry_ms = (int64_t)ceil((1.0 - e->tokens) * 1000.0 / t->o.per_s);
    pthread_mutex_unlock(&t->mu);
    return ok;
}

/* ---- back-off ---- */

/* Failures with none for fail_forget_ms (and no block running) are forgotten. */
static void forget_quiet(const ratelimit *t, rl_entry *e, int64_t now_ms)
{
    if (e->fails && now_ms >= e->blocked_until_ms &&
        now_ms - e->last_fail_ms >= t->o.fail_forget_ms) {
        e->fails = 0;
        e->blocked_until_ms = 0;
    }
}

bool ratelimit_blocked(ratelimit *t, const ratelimit_key *key, int64_t now_ms, int64_t *retry_ms)
{
    *retry_ms = 0;
    pthread_mutex_lock(&t->mu);
    rl_entry *e = lookup(t, key, false, now_ms);
    if (e) {
        forget_quiet(t, e, now_ms);
        if (e->blocked_until_ms > now_ms) *retry_ms = e->blocked_until_ms - now_ms;
    }
    pthread_mutex_unlock(&t->mu);
    return *retry_ms > 0;
}

int64_t ratelimit_failed(ratelimit *t, const ratelimit_key *key, int64_t now_ms)
{
    int64_t block = 0;
    pthread_mutex_lock(&t->mu);
    rl_entry *e = lookup(t, key, true, now_ms);
    forget_quiet(t, e, now_ms);
    if (e->fails < 1000) e->fails++; /* far past the cap: no overflow of the shift below */
    e->last_fail_ms = now_ms;
    if (e->fails >= t->o.fail_free) {
        int n = e->fails - t->o.fail_free; /* 0 for the first block */
        block = t->o.fail_base_ms;
        while (n-- > 0 && block < t->o.fail_max_ms)
            block *= 2;
        if (block > t->o.fail_max_ms) block = t->o.fail_max_ms;
        e->blocked_until_ms = now_ms + block;
    }
    pthread_mutex_unlock(&t->mu);
    return block;
}

void ratelimit_succeeded(ratelimit *t, const ratelimit_key *key)
{
    pthread_mutex_lock(&t->mu);
    rl_entry *e = lookup(t, key, false, 0);
    if (e) {
        e->fails = 0;
        e->blocked_until_ms = 0;
    }
    pthread_mutex_unlock(&t->mu);
}

uint64_t ratelimit_evicted(ratelimit *t)
{
    return atomic_load_explicit(&t->evicted, memory_order_relaxed);
}

size_t ratelimit_size(ratelimit *t)
{
    pthread_mutex_lock(&t->mu);
    size_t n = t->used;
    pthread_mutex_unlock(&t->mu);
    return n;
}

long long ratelimit_retry_s(int64_t retry_ms)
{
    long long s = (long long)((retry_ms + 999) / 1000);
    return s < 1 ? 1 : s;
}
