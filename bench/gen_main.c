/*
 * bench/gen_main.c - `fr-gen`: writes generated events to stdout.
 *
 *     fr-gen [--events N] [--seed S] [--concurrency C] [--base-ms MS] [--prefix P]
 *            [--sensitive PCT]   (PCT% of user messages carry a secret or PII)
 *            [--hard] [--text FILE] [--history]
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/gen.h"

/* A whole non-negative number, or a usage error naming the option. */
static bool
number(const char *opt, const char *s, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE || v < lo || v > hi) {
        fprintf(stderr, "fr-gen: --%s: expected a whole number from %lld to %lld, got '%s'\n", opt,
                lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"events", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},
        {"concurrency", required_argument, NULL, 'c'},
        {"base-ms", required_argument, NULL, 'b'},
        {"prefix", required_argument, NULL, 'p'},
        {"sensitive", required_argument, NULL, 'S'},
        {"hard", no_argument, NULL, 'H'},
        {"text", required_argument, NULL, 'T'},
        {"history", no_argument, NULL, 'Y'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct fr_gen_opts o;
    fr_gen_opts_default(&o);
    int c;
    long long v;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!number("events", optarg, 0, 1LL << 40, &v))
                return 2;
            o.events = (uint64_t)v;
            break;
        case 's':
            if (!number("seed", optarg, 0, INT64_MAX, &v))
                return 2;
            o.seed = (uint64_t)v;
            break;
        case 'c':
            if (!number("concurrency", optarg, 1, 1000000, &v))
                return 2;
            o.concurrency = (int)v;
            break;
        case 'b':
            if (!number("base-ms", optarg, 0, INT64_MAX, &v))
                return 2;
            o.base_ms = v;
            break;
        case 'p':
            o.prefix = optarg;
            break;
        case 'S':
            if (!number("sensitive", optarg, 0, 100, &v))
                return 2;
            o.sensitive_pct = (int)v;
            break;
        case 'H':
            o.hard = 1;
            break;
        case 'T':
            o.text_path = optarg;
            break;
        case 'Y':
            o.history = 1;
            break;
        default:
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: fr-gen [--events N] [--seed S] [--concurrency C] [--base-ms MS] "
                    "[--prefix P] [--sensitive PCT] [--hard] [--text FILE] [--history]\n"
                    "  --hard: high-entropy ids and varied free text (a large vocabulary)\n"
                    "  --text FILE: free text from FILE's words (prose), in order, each passage "
                    "once\n"
                    "  --history: a provider call's request carries its conversation's earlier "
                    "messages, as chat servers send them\n");
            return c == 'h' ? 0 : 2;
        }
    }
    return fr_gen_write(stdout, &o) == 0 ? 0 : 1;
}
