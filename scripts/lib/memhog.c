/* Benchmark workload: holds MiB of memory and counts in memory.
 *
 * usage: memhog MIB [random|compressible]
 * random (the default): xorshift bytes, incompressible, no zero page.
 * compressible: every 4 KiB page is the same 64-byte line of text with the
 *   page's number in it, so no page is zero or a copy of another (CRIU
 *   still dumps every page) but gzip or zstd shrink the images ~50-fold.
 * Writes "ready" to /tmp/ready once the memory is filled, then increments
 * a counter every 100 ms and rewrites /tmp/count (open-write-close: no
 * descriptor stays open) and prints "N BYTE" to stdout, BYTE depending on
 * the memory so it cannot be optimised away. Built statically at benchmark
 * time so the busybox rootfs needs no libc.
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

static void fill_random(uint64_t *mem, size_t words)
{
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < words; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        mem[i] = x;
    }
}

static void fill_compressible(char *mem, size_t bytes)
{
    char line[65];
    for (size_t page = 0; page * 4096 < bytes; page++) {
        snprintf(line, sizeof line, "memhog page %016zx: the quick brown fox jumps over.\n", page);
        for (size_t off = 0; off < 4096 && page * 4096 + off < bytes; off += 64)
            memcpy(mem + page * 4096 + off, line, 64);
    }
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 16;
    int compressible = argc > 2 && strcmp(argv[2], "compressible") == 0;
    size_t words = mib * 1024 * 1024 / sizeof(uint64_t);
    uint64_t *mem = malloc(words * sizeof(uint64_t));
    if (!mem)
        return 1;
    if (compressible)
        fill_compressible((char *)mem, words * sizeof(uint64_t));
    else
        fill_random(mem, words);
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
