/*
 * tests/integration/test_agent_socket.c - the real agent: the Unix socket: acks, per-line errors,
 * backpressure.
 */
#include "tests/integration/agent.h"

static void
test_agent_socket_acks_and_bad_lines(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    struct stat st;
    assert_int_equal(stat(a->sock, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    int fd = sock_connect(a);
    char *ev = events("s-1", 0, 3);
    char *lines = fr_asprintf("%s{not json\n", ev);
    assert_int_equal(write(fd, lines, strlen(lines)), (ssize_t)strlen(lines));
    char *ack = read_line(fd);
    json_t *j = json_loads(ack, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "ack_seq")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "accepted")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "rejected")), 1);
    assert_int_equal(json_integer_value(
                         json_object_get(json_array_get(json_object_get(j, "errors"), 0), "line")),
                     4);
    json_decref(j);
    free(ack);
    /* the connection survived the bad line: the acked events are already durable */
    assert_int_equal(count_events(a->db, "s-1"), 3);
    free(ev);
    ev = events("s-1", 3, 2);
    assert_int_equal(write(fd, ev, strlen(ev)), (ssize_t)strlen(ev));
    ack = read_line(fd);
    assert_non_null(strstr(ack, "\"ack_seq\":2,\"accepted\":2,\"rejected\":0"));
    assert_non_null(strstr(ack, "\"duplicates\":0"));
    free(ack);
    /* a producer's retry: acknowledged as duplicates, like HTTP acks say */
    assert_int_equal(write(fd, ev, strlen(ev)), (ssize_t)strlen(ev));
    ack = read_line(fd);
    assert_non_null(strstr(ack, "\"accepted\":2"));
    assert_non_null(strstr(ack, "\"duplicates\":2"));
    assert_null(strstr(ack, "warnings"));
    free(ack);
    /* another spelling of an envelope field: stored as sent, the ack says what it lacks */
    const char *misnamed = "{\"kind\":\"tool\",\"ts_ms\":1771357445300,\"traceId\":\"ab\","
                           "\"conv_id\":\"s-2\"}\n";
    assert_int_equal(write(fd, misnamed, strlen(misnamed)), (ssize_t)strlen(misnamed));
    ack = read_line(fd);
    j = json_loads(ack, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "accepted")), 1);
    json_t *w0 = json_array_get(json_object_get(j, "warnings"), 0);
    assert_int_equal(json_integer_value(json_object_get(w0, "line")), 9);
    assert_non_null(
        strstr(json_string_value(json_object_get(w0, "warning")), "did you mean trace_id?"));
    json_decref(j);
    free(ack);
    wait_log(a, "warn socket: 1 event(s) stored with a warning (a misnamed");
    close(fd);
    free(ev);
    free(lines);
    assert_int_equal(count_events(a->db, "s-1"), 5);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(access(a->sock, F_OK), -1); /* removed at exit */
}

/* Socket backpressure: with the queue full the agent stops reading, the
 * producer's writes block (no memory grows, nothing is dropped), and every
 * line is stored once the writer can commit again. */
static void
test_agent_socket_backpressure(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, "  queue_events: 10\n  batch_events: 10\n  busy_timeout_ms: 60000\n",
                 NULL);
    agent_start(a);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(a->db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    int fd = sock_connect(a);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    /* write until the kernel refuses: the agent is not reading any more */
    size_t lines = 0;
    bool blocked = false;
    char *pending = NULL;
    size_t plen = 0, poff = 0;
    for (int i = 0; i < 200000 && !blocked; i++) {
        if (pending == NULL) {
            pending = events("bp-1", (int)lines, 1);
            plen = strlen(pending);
            poff = 0;
        }
        ssize_t w = write(fd, pending + poff, plen - poff);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            blocked = true;
            break;
        }
        assert_true(w > 0);
        poff += (size_t)w;
        if (poff == plen) {
            free(pending);
            pending = NULL;
            lines++;
        }
    }
    assert_true(blocked);
    assert_true(lines > 10 && lines < 200000);
    /* the agent holds a bounded amount: its queue, one batch, the socket buffer */
    char *m;
    http(a, "GET", "/metrics", NULL, NULL, 0, &m, NULL);
    assert_non_null(strstr(m, "flightrec_queue_capacity_events 10"));
    free(m);
    /* the writer can commit again: everything written arrives */
    sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(h);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    if (pending != NULL) {
        assert_int_equal(write(fd, pending + poff, plen - poff), (ssize_t)(plen - poff));
        free(pending);
        lines++;
    }
    shutdown(fd, SHUT_WR);
    char buf[4096];
    while (read(fd, buf, sizeof buf) > 0)
        ; /* the acks, until the agent closes its side */
    close(fd);
    assert_int_equal(count_events(a->db, "bp-1"), (long)lines);
    assert_int_equal(agent_stop(a), 0);
}

/* One line on fd, and its ack. */
static char *
send_and_ack(int fd, const char *line)
{
    assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
    return read_line(fd);
}

/*
 * A reload reaches a connection that stays open: the next batch on it is
 * redacted with the new policy (a socket producer kept the configuration it
 * connected with before).
 */
static void
test_agent_socket_reload_reaches_open_connection(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    int fd = sock_connect(a);
    char *ack = send_and_ack(fd, "{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":"
                                 "\"r-1\",\"event_id\":\"e1\",\"data\":{\"name\":\"t\","
                                 "\"args\":{\"q\":\"ticket QZX482913\"}}}\n");
    assert_non_null(strstr(ack, "\"accepted\":1"));
    free(ack);
    /* a policy with a detector for these tickets, and a reload */
    char *pol = t_path(a->dir, "policy.yaml");
    write_text(pol, "detectors:\n  - name: ticket\n    class: secret\n    pattern: "
                    "'QZX[0-9]{6}'\n");
    char *extra = fr_asprintf("redaction:\n  policy: %s\n", pol);
    agent_config(a, NULL, NULL, extra);
    kill(a->pid, SIGHUP);
    wait_log(a, "configuration reloaded");
    ack = send_and_ack(fd, "{\"kind\":\"tool\",\"ts_ms\":1771357445202,\"conv_id\":"
                           "\"r-1\",\"event_id\":\"e2\",\"data\":{\"name\":\"t\","
                           "\"args\":{\"q\":\"ticket QZX482913\"}}}\n");
    assert_non_null(strstr(ack, "\"accepted\":1"));
    free(ack);
    close(fd);
    char before[4096] = "", after[4096] = "";
    sql_long(a->db, "SELECT body FROM events WHERE event_id = 'e1'", before, sizeof before);
    sql_long(a->db, "SELECT body FROM events WHERE event_id = 'e2'", after, sizeof after);
    assert_non_null(strstr(before, "QZX482913")); /* stored before the reload */
    assert_null(strstr(after, "QZX482913"));      /* the same connection, after it */
    assert_true(after[0] != '\0');
    assert_int_equal(agent_stop(a), 0);
    free(extra);
    free(pol);
}

/* socket.max_connections: one connection more is told why and closed; a freed slot serves. */
static void
test_agent_socket_connection_cap(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, "socket:\n  max_connections: 2\n");
    agent_start(a);
    int held[2];
    for (int i = 0; i < 2; i++) {
        held[i] = sock_connect(a);
        char *line = fr_asprintf("{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":"
                                 "\"cap\",\"event_id\":\"h%d\"}\n",
                                 i);
        char *ack = send_and_ack(held[i], line);
        assert_non_null(strstr(ack, "\"accepted\":1")); /* served: it holds a slot */
        free(ack);
        free(line);
    }
    int extra = sock_connect(a);
    char *msg = read_line(extra);
    assert_non_null(strstr(msg, "too many connections"));
    assert_non_null(strstr(msg, "socket.max_connections"));
    free(msg);
    char c;
    assert_int_equal(read(extra, &c, 1), 0); /* and closed */
    close(extra);
    close(held[0]);
    /* the closed connection's slot comes back once its thread has ended */
    bool served = false;
    for (int i = 0; i < 500 && !served; i++) {
        int fd = sock_connect(a);
        static const char line[] = "{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":"
                                   "\"cap\",\"event_id\":\"again\"}\n";
        /* while the slot is still taken the agent answers and closes: the write may fail */
        if (write(fd, line, sizeof line - 1) == (ssize_t)(sizeof line - 1)) {
            char *ack = read_line(fd);
            served = strstr(ack, "\"accepted\":1") != NULL;
            free(ack);
        }
        close(fd);
        if (!served)
            usleep(10000);
    }
    assert_true(served);
    close(held[1]);
    assert_int_equal(count_events(a->db, "cap"), 3);
    assert_int_equal(agent_stop(a), 0);
}

/*
 * socket.idle_timeout: a producer that stalls in the middle of a line gets
 * its whole lines acknowledged, then an error line naming the option, and
 * the connection is closed (its buffer freed); a producer that idles between
 * whole lines keeps its connection.
 */
static void
test_agent_socket_stalled_partial_line_times_out(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, "socket:\n  idle_timeout: 300ms\n");
    agent_start(a);
    int idle = sock_connect(a), stalled = sock_connect(a);
    char *ack = send_and_ack(idle, "{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":"
                                   "\"idle\",\"event_id\":\"i1\"}\n");
    assert_non_null(strstr(ack, "\"accepted\":1"));
    free(ack);
    static const char whole_and_part[] =
        "{\"kind\":\"tool\",\"ts_ms\":1771357445201,\"conv_id\":\"stall\",\"event_id\":\"s1\"}\n"
        "{\"kind\":\"tool\",\"ts_ms\":17713574";
    assert_int_equal(write(stalled, whole_and_part, sizeof whole_and_part - 1),
                     (ssize_t)(sizeof whole_and_part - 1));
    ack = read_line(stalled); /* the whole line, acknowledged when the producer paused */
    assert_non_null(strstr(ack, "\"accepted\":1"));
    free(ack);
    char *msg = read_line(stalled); /* then, after the stall, why it is closed */
    assert_non_null(strstr(msg, "socket.idle_timeout"));
    free(msg);
    char c;
    assert_int_equal(read(stalled, &c, 1), 0);
    close(stalled);
    /* the connection idle between whole lines, longer than the timeout, is still served */
    usleep(600 * 1000);
    ack = send_and_ack(idle, "{\"kind\":\"tool\",\"ts_ms\":1771357445202,\"conv_id\":"
                             "\"idle\",\"event_id\":\"i2\"}\n");
    assert_non_null(strstr(ack, "\"accepted\":1"));
    free(ack);
    close(idle);
    char *metrics;
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &metrics, NULL), 200);
    assert_non_null(strstr(metrics, "reason=\"timeout\""));
    free(metrics);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "stall"), 1);
    assert_int_equal(count_events(a->db, "idle"), 2);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_agent_socket_acks_and_bad_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_socket_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_socket_reload_reaches_open_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_agent_socket_connection_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_socket_stalled_partial_line_times_out, setup,
                                        teardown),
    };
    if (getenv("FR_TEST_FILTER")) /* e.g. "test_agent_http*", for the valgrind run */
        cmocka_set_test_filter(getenv("FR_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
