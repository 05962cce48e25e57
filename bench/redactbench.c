/*
 * bench/redactbench.c - redaction throughput on its own: every event of an
 * NDJSON file is parsed once, then the default policy's walk and detectors
 * run over all of them, several times, each time with a new redactor (so
 * a text is known clean only from an event of the same pass, as in a
 * running agent). Reports MB/s of the events' text (strings, keys, long
 * numbers: what the detectors scanned and what they knew clean from an
 * earlier event) and of whole event lines, and the share known clean.
 *
 *     fr-redactbench FILE [REPEAT]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "core/wire.h"
#include "redact/redact.h"

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fr-redactbench FILE [REPEAT]\n");
        return 2;
    }
    int repeat = argc > 2 ? atoi(argv[2]) : 3;
    FILE *in = fopen(argv[1], "r");
    if (in == NULL) {
        perror(argv[1]);
        return 1;
    }
    struct fr_wire_limits lim;
    fr_wire_limits_default(&lim);
    size_t cap = 1024, n = 0, line_bytes = 0;
    char **lines = fr_malloc(cap * sizeof *lines);
    size_t *lens = fr_malloc(cap * sizeof *lens);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, in)) > 0) {
        if (n == cap) {
            cap *= 2;
            lines = fr_realloc(lines, cap * sizeof *lines);
            lens = fr_realloc(lens, cap * sizeof *lens);
        }
        lines[n] = fr_strndup(line, (size_t)len);
        lens[n++] = (size_t)len;
        line_bytes += (size_t)len;
    }
    free(line);
    fclose(in);

    static const unsigned char key[FR_KEY_LEN] = {1};
    struct fr_redactor *red = NULL;
    struct fr_redact_counts counts = {0};
    /* parsing is not redaction: time only fr_redact_event, on fresh trees */
    double spent = 0;
    for (int r = 0; r < repeat; r++) {
        struct fr_policy *p;
        struct fr_err err = {0};
        fr_redactor_free(red);
        if (fr_policy_load(NULL, &p, &err) != FR_OK ||
            fr_redactor_new(p, key, &red, &err) != FR_OK) {
            fprintf(stderr, "policy: %s\n", err.msg);
            return 1;
        }
        if (counts.hits == NULL)
            fr_redact_counts_init(&counts, red);
        for (size_t i = 0; i < n; i++) {
            struct fr_event ev;
            if (fr_wire_parse(lines[i], lens[i], &lim, &ev, NULL) != FR_OK)
                continue;
            bool changed;
            double t0 = fr_mono_s();
            fr_redact_event(red, &ev, &counts, NULL, NULL, &changed, NULL);
            spent += fr_mono_s() - t0;
            fr_event_clear(&ev);
        }
    }
    double text_mb = (double)(counts.bytes_scanned + counts.bytes_known) / 1e6;
    printf("events %zu\nrepeat %d\nseconds %.3f\nevents_per_s %.0f\ntext_mb_per_s %.1f\n"
           "line_mb_per_s %.1f\nknown_clean_share %.3f\nevents_changed %llu\n",
           n, repeat, spent, spent > 0 ? (double)n * repeat / spent : 0.0,
           spent > 0 ? text_mb / spent : 0.0,
           spent > 0 ? (double)line_bytes * repeat / 1e6 / spent : 0.0,
           text_mb > 0 ? (double)counts.bytes_known / 1e6 / text_mb : 0.0,
           (unsigned long long)counts.events_changed);
    fr_redact_counts_free(&counts);
    fr_redactor_free(red);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    free(lens);
    return 0;
}
