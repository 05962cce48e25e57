/*
 * agent/daemon.h - `flightrec agent`: the sidecar process.
 *
 *   sources (agent/sources/: http, socket, otlp, runtime)
 *      │  prepare on their own threads: parse, collect, redact (agent/ingest.h)
 *      ▼
 *   pipeline (agent/pipeline.h) ─► writer thread, group commit ─► hot store
 *                                   bounded queue: full = 429 / stop reading
 *
 * An ack (HTTP 202, socket ack line) is sent only after the transaction
 * holding those events committed. Queries use a pool of read connections.
 * SIGTERM/SIGINT stop accepting, drain the queue, commit and exit 0;
 * SIGHUP reloads the configuration (a bad file is rejected, the old kept).
 */
#ifndef FR_AGENT_DAEMON_H
#define FR_AGENT_DAEMON_H

/* Runs the agent until SIGTERM/SIGINT; returns the process exit status. */
int fr_agent_run(const char *config_path);

#endif
