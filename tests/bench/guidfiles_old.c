/* guidfiles_old.c - the "before" row of the ingest benchmark (run.sh): the Edge Impulse
 * components' enable_cache_to_file approach, done durably the way a careful Node.js script
 * would (fs.writeFileSync + fs.fsyncSync per file).
 *
 * Per inference it makes a uuid v4, writes <guid>.json (the ~300 B result) and, when an image
 * is given, <guid>.img (the JPEG), each with open + write + fsync + close, one after the other
 * on one thread, for the given number of seconds. It prints the inferences written per second.
 *
 * Usage: guidfiles_old DIR SECONDS JSON_FILE [IMAGE_FILE]. DIR must exist; the caller removes
 * it afterwards. Owned by the benchmark only. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Bounds the disk used by one run even on a very fast disk (about 10 GB with 50 KB images). */
#define MAX_INFERENCES 200000

typedef struct blob {
    char *data;
    size_t len;
} blob;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int read_file(const char *path, blob *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) goto fail;
    if (fseek(f, 0, SEEK_END) != 0) goto fail;
    long n = ftell(f);
    if (n <= 0 || fseek(f, 0, SEEK_SET) != 0) goto fail;
    out->data = malloc((size_t)n);
    if (!out->data) goto fail;
    if (fread(out->data, 1, (size_t)n, f) != (size_t)n) goto fail;
    out->len = (size_t)n;
    fclose(f);
    return 0;
fail:
    fprintf(stderr, "guidfiles_old: cannot read %s: %s\n", path, strerror(errno));
    if (f) fclose(f);
    return -1;
}

/* A uuid v4 as text, from the kernel's CSPRNG (as crypto.randomUUID would). */
static int make_guid(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}

/* open + write + fsync + close: one durable file, as writeFileSync + fsyncSync would do. */
static int write_durable(const char *path, const blob *b)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) goto fail;
    size_t off = 0;
    while (off < b->len) {
        ssize_t w = write(fd, b->data + off, b->len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) goto fail;
        off += (size_t)w;
    }
    if (fsync(fd) != 0) goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "guidfiles_old: %s: %s\n", path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: guidfiles_old DIR SECONDS JSON_FILE [IMAGE_FILE]\n");
        return 2;
    }
    const char *dir = argv[1];
    double seconds = atof(argv[2]);
    blob json = {0}, img = {0};
    int status = 1;
    if (seconds <= 0) {
        fprintf(stderr, "guidfiles_old: SECONDS must be > 0\n");
        return 2;
    }
    if (read_file(argv[3], &json)) goto done;
    if (argc > 4 && read_file(argv[4], &img)) goto done;

    char path[4096];
    long n = 0;
    double t0 = now_s(), t = t0;
    while (t - t0 < seconds && n < MAX_INFERENCES) {
        char guid[37];
        if (make_guid(guid)) goto done;
        snprintf(path, sizeof path, "%s/%s.json", dir, guid);
        if (write_durable(path, &json)) goto done;
        if (img.data) {
            snprintf(path, sizeof path, "%s/%s.img", dir, guid);
            if (write_durable(path, &img)) goto done;
        }
        n++;
        t = now_s();
    }
    printf("inferences %ld seconds %.3f rate %.1f\n", n, t - t0, (double)n / (t - t0));
    status = 0;
done:
    free(json.data);
    free(img.data);
    return status;
}
