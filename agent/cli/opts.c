/*
 * agent/cli/opts.c - what every subcommand shares: the default database,
 * opening a store read-only, exit codes, and the option handling of the
 * query commands (conversations, errors, stats): --db, --since, --until,
 * --limit, and the "no positional arguments" check, with one wording for
 * every error.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <string.h>

#include "agent/cli/cli.h"
#include "agent/config.h"
#include "core/crypto.h"
#include "core/event.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "core/utf8.h"
#include "retention/hot/store.h"

int
fr_cli_query_opt(const char *cmd, int c, const char *arg, struct fr_cli_query *q)
{
    struct fr_err err = {0};
    switch (c) {
    case 'd':
        q->db = arg;
        return 1;
    case 's':
    case 'u':
        if (fr_time_parse(arg, fr_now_ms(), c == 's' ? &q->since_ms : &q->until_ms, &err) !=
            FR_OK) {
            fprintf(stderr, "flightrec %s: --%s: %s\n", cmd, c == 's' ? "since" : "until", err.msg);
            return -1;
        }
        if (q->since_ms && q->until_ms && q->since_ms > q->until_ms) {
            fprintf(stderr, "flightrec %s: --since is after --until: nothing can match\n", cmd);
            return -1;
        }
        return 1;
    case 'l': {
        char *end;
        long v = strtol(arg, &end, 10);
        if (*arg == '\0' || *end != '\0' || v < 0 || v > 1000000) {
            fprintf(stderr, "flightrec %s: --limit: expected 0 to 1000000, got '%s'\n", cmd, arg);
            return -1;
        }
        q->limit = (int)v;
        return 1;
    }
    default:
        return 0;
    }
}

bool
fr_cli_error_class_ok(const char *cmd, const char *option, const char *arg)
{
    if (fr_error_class_parse(arg) > 0)
        return true;
    fprintf(stderr,
            "flightrec %s: %s: '%s' is not one of validation, provider, tool, projection, "
            "storage, transport, runtime\n",
            cmd, option, arg);
    return false;
}

int
fr_cli_no_args(const char *cmd, int argc, char **argv, int optind_now)
{
    if (optind_now == argc)
        return 0;
    fprintf(stderr, "flightrec %s: unexpected argument '%s'\n", cmd, argv[optind_now]);
    return -1;
}

/* $FLIGHTREC_CONFIG's storage.path and keys.dir, read once */
static char *env_db, *env_keys;

static void
env_config(void)
{
    static bool read;
    const char *cfg = getenv("FLIGHTREC_CONFIG");
    if (read || cfg == NULL || *cfg == '\0')
        return;
    read = true;
    struct fr_config c;
    if (fr_config_load(cfg, &c, NULL) == FR_OK) {
        env_db = strdup(c.db_path);
        env_keys = c.keys_dir[0] ? strdup(c.keys_dir) : NULL;
        fr_config_clear(&c);
    }
}

const char *
fr_cli_default_db(void)
{
    const char *db = getenv("FLIGHTREC_DB");
    if (db && *db)
        return db;
    /* the agent's configuration, when one is named, says where the store is */
    env_config();
    return env_db ? env_db : "./var/flightrec.db";
}

void
fr_cli_configure_keys(void)
{
    env_config();
    fr_keys_dir_configure(env_keys);
}

int
fr_cli_exit_for(int rc)
{
    if (rc == FR_OK)
        return FR_EXIT_OK;
    if (rc == FR_E_NOTFOUND)
        return FR_EXIT_NOTFOUND;
    if (rc == FR_E_INVALID)
        return FR_EXIT_USAGE;
    return FR_EXIT_FAIL;
}

int
fr_cli_open_store(const char *cmd, const char *db, bool write, struct fr_store **st)
{
    struct fr_store_opts opts;
    fr_store_opts_default(&opts);
    opts.create = false;
    opts.read_only = !write;
    struct fr_err err = {0};
    int rc = fr_store_open(db, &opts, st, &err);
    if (rc != FR_OK) {
        fprintf(stderr, "flightrec %s: %s\n", cmd, err.msg);
        return fr_cli_exit_for(rc);
    }
    return FR_EXIT_OK;
}

void
fr_cli_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[1024], *text = small;
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof small) {
        text = fr_malloc((size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(text, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    fr_cli_write_safe(text, (size_t)n, stdout);
    if (text != small)
        free(text);
}

void
fr_cli_write_safe(const char *s, size_t n, FILE *out)
{
    /* each byte becomes at most 4 ("\x1b"), a 2-byte C1 control 6; fr_escape_controls stops
       once fewer than 8 bytes are left (a step's most and the NUL): with 4 * n + 1 a text of
       one byte (or of controls alone) came out short or empty */
    size_t cap = 4 * n + 8;
    char small[4096], *buf = small;
    if (cap > sizeof small)
        buf = fr_malloc(cap);
    size_t len = fr_escape_controls(s, n, true, buf, cap);
    fwrite(buf, 1, len, out);
    if (buf != small)
        free(buf);
}

void
fr_cli_print_json_line(const json_t *j)
{
    char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (line != NULL)
        fr_cli_printf("%s\n", line);
    free(line);
}
