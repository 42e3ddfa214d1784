/* Benchmark workload: holds MiB of random memory and counts in memory.
 *
 * usage: memhog MIB
 * Fills MIB MiB with xorshift random bytes (incompressible, no zero pages),
 * writes "ready" to /tmp/ready, then increments a counter every 100 ms and
 * rewrites /tmp/count (open-write-close: no descriptor stays open). Built
 * statically at benchmark time so the busybox rootfs needs no libc.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void put(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        (void)!write(fd, text, strlen(text));
        close(fd);
    }
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 16;
    size_t words = mib * 1024 * 1024 / sizeof(uint64_t);
    uint64_t *mem = malloc(words * sizeof(uint64_t));
    uint64_t x = 88172645463325252ULL;
    if (!mem)
        return 1;
    for (size_t i = 0; i < words; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        mem[i] = x;
    }
    put("/tmp/ready", "ready\n");
    struct timespec tick = { 0, 100 * 1000 * 1000 };
    char buf[32];
    for (unsigned long n = 1;; n++) {
        snprintf(buf, sizeof buf, "%lu\n", n);
        put("/tmp/count", buf);
        printf("%lu %lu\n", n, (unsigned long)(mem[n % words] & 0xff));
        fflush(stdout);
        nanosleep(&tick, NULL);
    }
}
