/*
 * agent/cli/cli.h - the `flightrec` command line: subcommand entry points and
 * the exit codes they share (documented in README "Exit codes").
 */
#ifndef FR_AGENT_CLI_H
#define FR_AGENT_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "retention/hot/store.h"
#include "retention/segment.h"

enum fr_exit {
    FR_EXIT_OK = 0,       /* success */
    FR_EXIT_REJECTED = 1, /* ingest: some lines were rejected (the rest were stored) */
    FR_EXIT_USAGE = 2,    /* bad command line */
    FR_EXIT_FAIL = 3,     /* the store or an input could not be used */
    FR_EXIT_NOTFOUND = 4, /* the conversation (or database) asked for does not exist */
    FR_EXIT_PARTIAL = 5,  /* shown, but incomplete: segments not read or events not kept */
};

/* The database used when --db is not given: $FLIGHTREC_DB or ./var/flightrec.db. */
/* Sets the keys folder from $FLIGHTREC_CONFIG's keys.dir (core/crypto.h: fr_keys_dir). */
void fr_cli_configure_keys(void);
const char *fr_cli_default_db(void);

/*
 * Opens an existing store (never creates one). Only commands that write
 * (retention, archive) pass write; the others open it read-only, so they
 * never migrate, switch the journal mode of, or otherwise touch a file
 * that is not theirs ("not a flightrec database": exit 3; absent: 4). On
 * failure prints "flightrec CMD: reason" and returns the exit code to use.
 */
int fr_cli_open_store(const char *cmd, const char *db, bool write, struct fr_store **st);

/*
 * What the commands print of stored data goes through these: a producer's
 * text may hold terminal escape sequences (ESC]0;…, ESC[2J), carriage
 * returns or C1 controls; they are written visibly (\x1b, \u009b) instead
 * of acting on the reader's terminal. Newlines are kept.
 */
void fr_cli_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fr_cli_write_safe(const char *s, size_t n, FILE *out);

/* What was said in an event (redacted, as stored), as lines under its row (show and tail
   --text): a provider call's system instructions, prompt messages and answer (message parts as
   text, a tool call asked for as name(arguments)), a tool's arguments and result, a middleware
   step's prompts and rationale. */
void fr_cli_show_text(const struct fr_event_row *r);

/*
 * A provider call r that succeeded but whose answer did not reach the user
 * whole, by what its finish reason (data: the event's "data") means: note
 * gets "the answer stopped at the token limit (finish_reason length)" (or was
 * filtered or refused, ended in an error) and true; else "" and false. `show`
 * and `tail` print it under the row ("~~").
 */
struct json_t;
bool fr_cli_finish_note(const struct fr_event_row *r, const struct json_t *data, char *note,
                        size_t n);

/* One JSON value on one line of stdout (the --ndjson outputs), through fr_cli_printf. */
void fr_cli_print_json_line(const struct json_t *j);

/* Options every query command takes. */
struct fr_cli_query {
    const char *db;             /* --db, defaults to fr_cli_default_db() */
    int64_t since_ms, until_ms; /* --since, --until; 0 = no bound */
    int limit;                  /* --limit */
};

/* The getopt_long rows of those options; their short codes are 'd', 's', 'u', 'l'. */
#define FR_CLI_QUERY_OPTIONS                                                                       \
    {"db", required_argument, NULL, 'd'}, {"store", required_argument, NULL, 'd'},                 \
        {"since", required_argument, NULL, 's'}, {"until", required_argument, NULL, 'u'},          \
    {                                                                                              \
        "limit", required_argument, NULL, 'l'                                                      \
    }

/*
 * Handles option c of FR_CLI_QUERY_OPTIONS: 1 when handled, 0 when c is not
 * one of them, -1 when its value is bad (the error is printed).
 */
int fr_cli_query_opt(const char *cmd, int c, const char *arg, struct fr_cli_query *q);

/* 0 when no positional argument is left, else prints which one and returns -1. */
int fr_cli_no_args(const char *cmd, int argc, char **argv, int optind_now);

/* Whether arg names an error class; when not, prints that (cmd, option) takes one of them. */
bool fr_cli_error_class_ok(const char *cmd, const char *option, const char *arg);

/* Maps an enum fr_rc from the store to an exit code. */
int fr_cli_exit_for(int rc);

/* Redaction options shared by commands; NULL fields mean "default". */
struct fr_cli_redact {
    const char *db;       /* the key directory defaults to <dir of db>/keys */
    const char *policy;   /* --redaction, else $FLIGHTREC_REDACTION */
    const char *hmac_key; /* --hmac-key, else $FLIGHTREC_HMAC_KEY */
    bool create_key;      /* the command stores hashed data: it may create the key; the
                             others (redact --explain) use a temporary one when there is none */
    bool quiet;           /* a temporary key is not said (ingest --check shows no hash) */
};

struct fr_redactor;

/* Builds the redactor (policy + HMAC key, created when absent); prints errors. */
int fr_cli_redactor(const char *cmd, const struct fr_cli_redact *o, struct fr_redactor **out);

/* Loads (or creates) a key file; prints errors and returns an exit code. */
int fr_cli_load_key(const char *cmd, const char *path, bool create, unsigned char key[32]);

/*
 * The cold-tier key of db's retention policy ($FLIGHTREC_RETENTION, else
 * the default): true when a policy loads and its key file is readable.
 * *has_policy (may be NULL) says whether a policy loaded at all: without
 * one, the query commands read the hot store only.
 */
/* Loads every key of a key file (the raw-mode key: old keys open what they sealed). */
int fr_cli_load_keyring(const char *cmd, const char *path, struct fr_keyring *ring);
bool fr_cli_archive_keys(const char *cmd, const char *db, struct fr_archive_keys *k,
                         bool *has_policy);

int fr_cmd_ingest(int argc, char **argv);
int fr_cmd_redact(int argc, char **argv);
int fr_cmd_agent(int argc, char **argv);
int fr_cmd_config(int argc, char **argv);
int fr_cmd_retention(int argc, char **argv);
int fr_cmd_archive(int argc, char **argv);
int fr_cmd_incident(int argc, char **argv);
int fr_cmd_outbox(int argc, char **argv);
int fr_cmd_conversations(int argc, char **argv);
int fr_cmd_show(int argc, char **argv);
int fr_cmd_tail(int argc, char **argv);
int fr_cmd_keys(int argc, char **argv);
int fr_cmd_erase(int argc, char **argv);
int fr_cmd_errors(int argc, char **argv);
int fr_cmd_stats(int argc, char **argv);
int fr_cmd_ship(int argc, char **argv);
int fr_cmd_fleet(int argc, char **argv);

#endif
