/*
 * bench/gen_main.c - `fr-gen`: writes generated events to stdout.
 *
 *     fr-gen [--events N] [--seed S] [--concurrency C] [--base-ms MS] [--prefix P]
 *            [--sensitive PCT]   (PCT% of user messages carry a secret or PII)
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/gen.h"

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
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct fr_gen_opts o;
    fr_gen_opts_default(&o);
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o.events = strtoull(optarg, NULL, 10);
            break;
        case 's':
            o.seed = strtoull(optarg, NULL, 10);
            break;
        case 'c':
            o.concurrency = atoi(optarg);
            break;
        case 'b':
            o.base_ms = strtoll(optarg, NULL, 10);
            break;
        case 'p':
            o.prefix = optarg;
            break;
        case 'S':
            o.sensitive_pct = atoi(optarg);
            break;
        default:
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: fr-gen [--events N] [--seed S] [--concurrency C] [--base-ms MS] "
                    "[--prefix P] [--sensitive PCT]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    return fr_gen_write(stdout, &o) == 0 ? 0 : 1;
}
