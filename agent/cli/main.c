/*
 * agent/cli/main.c - `flightrec` entry point: global set-up and the subcommand
 * table. Each subcommand parses its own options and prints its own --help.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/cli/cli.h"
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
    {"tail", fr_cmd_tail, "follow new events as they are committed (like journalctl -f)"},
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
