/*
 * bench/stagecommon.c - see stagecommon.h.
 */
#include "bench/stagecommon.h"

#include <stdio.h>
#include <time.h>

double
fr_bench_cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int
fr_bench_stages_open(int argc, char **argv, const char *prog, const char *input, FILE **in,
                     struct fr_redactor **red, struct fr_taxonomy **tax, struct fr_store **st)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s %s NEW.db\n", prog, input);
        return 2;
    }
    if ((*in = fopen(argv[1], "r")) == NULL) {
        perror(argv[1]);
        return 1;
    }
    static const unsigned char key[FR_KEY_LEN] = {1};
    struct fr_err err = {0};
    struct fr_policy *pol;
    struct fr_store_opts so;
    fr_store_opts_default(&so);
    *red = NULL;
    *tax = NULL;
    *st = NULL;
    if (fr_policy_load(NULL, &pol, &err) != FR_OK ||
        fr_redactor_new(pol, key, red, &err) != FR_OK ||
        fr_taxonomy_load(NULL, tax, &err) != FR_OK ||
        fr_store_open(argv[2], &so, st, &err) != FR_OK) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        fr_bench_stages_close(*red, *tax, *st); /* the redactor owns the policy, also on failure */
        fclose(*in);
        return 1;
    }
    return 0;
}

void
fr_bench_stages_close(struct fr_redactor *red, struct fr_taxonomy *tax, struct fr_store *st)
{
    fr_store_close(st);
    fr_taxonomy_free(tax);
    fr_redactor_free(red); /* and the policy it owns */
}
