/*
 * agent/main.c - `flightrec` entry point: global set-up and the subcommand
 * table. Each subcommand parses its own options and prints its own --help.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/cli.h"
#include "agent/config.h"
#include "core/err.h"
#include "core/log.h"
#include "retention/hot/store.h"

#ifndef FR_VERSION
#define FR_VERSION "0.0.0-dev"
#endif

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"agent", fr_cmd_agent, "run the sidecar: HTTP and socket ingest, query API, metrics"},
    {"config", fr_cmd_config, "check a configuration file and print the effective settings"},
    {"ingest", fr_cmd_ingest, "store NDJSON events from a file or stdin"},
    {"conversations", fr_cmd_conversations, "list conversations by recent activity"},
    {"show", fr_cmd_show, "show one conversation's events in order"},
    {"errors", fr_cmd_errors, "list or group failures by code, class, model or tool"},
    {"stats", fr_cmd_stats, "per-minute rollups: calls, errors, tokens, latency"},
    {"redact", fr_cmd_redact, "explain what the redaction policy does to events"},
    {"retention", fr_cmd_retention, "move old data hot -> warm -> cold -> deleted (run)"},
    {"archive", fr_cmd_archive, "list, verify, print or restore archive segments"},
    {"incident", fr_cmd_incident, "create, verify, open or upload a signed incident bundle"},
    {"outbox", fr_cmd_outbox, "list, retry or drop queued bundle uploads"},
};

static void
usage(FILE *out)
{
    fprintf(out, "usage: flightrec COMMAND [OPTIONS]\n\n"
                 "A flight recorder for LLM chat servers.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-14s %s\n", "version", "print the version");
    fprintf(out, "\nRun 'flightrec COMMAND --help' for a command's options.\n"
                 "Environment: FLIGHTREC_DB (default database), FLIGHTREC_LOG_LEVEL "
                 "(error|warn|info|debug).\n");
}

const char *
fr_cli_default_db(void)
{
    const char *db = getenv("FLIGHTREC_DB");
    if (db && *db)
        return db;
    /* the agent's configuration, when one is named, says where the store is */
    static char *from_config;
    const char *cfg = getenv("FLIGHTREC_CONFIG");
    if (from_config == NULL && cfg && *cfg) {
        struct fr_config c;
        if (fr_config_load(cfg, &c, NULL) == FR_OK) {
            from_config = strdup(c.db_path);
            fr_config_clear(&c);
        }
    }
    return from_config ? from_config : "./var/flightrec.db";
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
fr_cli_open_store(const char *cmd, const char *db, struct fr_store **st)
{
    struct fr_store_opts opts;
    fr_store_opts_default(&opts);
    opts.create = false;
    struct fr_err err = {0};
    int rc = fr_store_open(db, &opts, st, &err);
    if (rc != FR_OK) {
        fprintf(stderr, "flightrec %s: %s\n", cmd, err.msg);
        return fr_cli_exit_for(rc);
    }
    return FR_EXIT_OK;
}

int
main(int argc, char **argv)
{
    /* everything flightrec creates (databases, keys, archives) is owner-only */
    umask(077);
    fr_log_init_from_env();
    if (argc < 2) {
        usage(stderr);
        return FR_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return FR_EXIT_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("flightrec %s\n", FR_VERSION);
        return FR_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "flightrec: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return FR_EXIT_USAGE;
}
