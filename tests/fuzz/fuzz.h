/*
 * tests/fuzz/fuzz.h - helpers shared by the libFuzzer harnesses: inputs as
 * files without touching the disk (a memfd, opened by its /proc path), for
 * the readers that take a path.
 */
#ifndef FR_FUZZ_H
#define FR_FUZZ_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Writes data to a fresh memfd; path gets its /proc/self/fd name. Returns the fd (close it). */
static inline int
fuzz_memfile(const uint8_t *data, size_t size, char path[64])
{
    int fd = memfd_create("fuzz", 0);
    if (fd < 0)
        abort();
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0)
            abort();
        off += (size_t)w;
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

/* The fixed test keys of the harnesses (never a deployment's). */
static const unsigned char fuzz_key[32] = {
    0x46, 0x55, 0x5a, 0x5a, 0x20, 0x54, 0x45, 0x53, 0x54, 0x20, 0x4b, 0x45, 0x59, 0x20, 0x30, 0x31,
    0x46, 0x55, 0x5a, 0x5a, 0x20, 0x54, 0x45, 0x53, 0x54, 0x20, 0x4b, 0x45, 0x59, 0x20, 0x30, 0x32};

/* The ingest pipeline of the harnesses: the built-in policy and taxonomy, the test key. */
#include "agent/ingest.h"
#include "collectors/taxonomy.h"
#include "redact/redact.h"

static inline void
fuzz_ingest_cfg(struct fr_ingest_cfg *cfg, size_t max_line)
{
    struct fr_policy *p;
    struct fr_taxonomy *tax;
    struct fr_err err = {0};
    if (fr_policy_load(NULL, &p, &err) != FR_OK ||
        fr_redactor_new(p, fuzz_key, &cfg->red, &err) != FR_OK ||
        fr_taxonomy_load(NULL, &tax, &err) != FR_OK)
        abort();
    cfg->tax = tax;
    fr_wire_limits_default(&cfg->lim);
    if (max_line)
        cfg->lim.max_line = max_line;
}

#endif
