/*
 * agent/cli/cmd_agent.c - `flightrec agent` (the sidecar daemon, agent/daemon.h)
 * and `flightrec config check FILE`.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cli/cli.h"
#include "agent/config.h"
#include "agent/daemon.h"
#include "agent/live.h"

static void
agent_usage(FILE *out)
{
    fprintf(out, "usage: flightrec agent [--config FILE]\n\n"
                 "Runs the sidecar in the foreground: HTTP ingest and query API, the Unix\n"
                 "socket ingest, the runtime sampler and /metrics, per the configuration\n"
                 "(configs/flightrec.yaml documents every option; FLIGHTREC_<SECTION>_<KEY>\n"
                 "environment variables override single options). SIGTERM or SIGINT: stop\n"
                 "accepting, commit what is queued, exit 0. SIGHUP: reload the file (a bad\n"
                 "file is rejected and the running configuration kept).\n\n"
                 "options:\n"
                 "  --config FILE   configuration file (default $FLIGHTREC_CONFIG, else\n"
                 "                  built-in defaults)\n"
                 "  -h, --help      this help\n");
}

int
fr_cmd_agent(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = getenv("FLIGHTREC_CONFIG");
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hc:", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'h':
            agent_usage(stdout);
            return FR_EXIT_OK;
        default:
            agent_usage(stderr);
            return FR_EXIT_USAGE;
        }
    }
    if (fr_cli_no_args("agent", argc, argv, optind) != 0)
        return FR_EXIT_USAGE;
    return fr_agent_run(config && *config ? config : NULL);
}

int
fr_cmd_config(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("usage: flightrec config check FILE\n\n"
               "Validates FILE (with FLIGHTREC_* overrides applied) and prints the effective\n"
               "configuration; secrets are shown as ***. Exit status 0 valid, 2 invalid.\n");
        return FR_EXIT_OK;
    }
    if (argc != 3 || strcmp(argv[1], "check") != 0) {
        fprintf(stderr, "usage: flightrec config check FILE\n");
        return FR_EXIT_USAGE;
    }
    struct fr_config conf;
    struct fr_err err = {0};
    if (fr_config_load(argv[2], &conf, &err) != FR_OK) {
        fprintf(stderr, "flightrec config: %s\n", err.msg);
        return FR_EXIT_USAGE;
    }
    /* also what the agent would load at start: policy, taxonomy, keys */
    struct fr_live *l;
    int rc = fr_live_new(&conf, &l, &err);
    if (rc != FR_OK) {
        fprintf(stderr, "flightrec config: %s\n", err.msg);
        fr_config_clear(&conf);
        return FR_EXIT_USAGE;
    }
    fr_live_free(l);
    fr_config_print(&conf, stdout);
    fr_config_clear(&conf);
    return FR_EXIT_OK;
}
