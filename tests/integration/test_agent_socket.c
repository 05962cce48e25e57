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
    free(ack);
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

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_agent_socket_acks_and_bad_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_socket_backpressure, setup, teardown),
    };
    if (getenv("FR_TEST_FILTER")) /* e.g. "test_agent_http*", for the valgrind run */
        cmocka_set_test_filter(getenv("FR_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
