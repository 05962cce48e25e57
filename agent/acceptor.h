/*
 * agent/acceptor.h - a listening socket served one thread per connection,
 * for the agent's own stream servers (the Unix socket, OTLP/gRPC): the
 * accept loop, the connection limit, joining finished threads, and a stop
 * that lets every connection finish what it holds.
 */
#ifndef FR_AGENT_ACCEPTOR_H
#define FR_AGENT_ACCEPTOR_H

#include <stddef.h>

struct fr_acceptor_ops {
    /* Serves fd on its own thread until the peer is done or wake_fd becomes readable
       (stopping: threads that poll add it to their poll set); fd is closed after. */
    void (*serve)(void *ud, int fd, int wake_fd);
    /* Over the limit, or stopping: may say why on fd before it is closed (NULL: just closed). */
    void (*refuse)(void *ud, int fd, size_t limit);
};

struct fr_acceptor;

#include <stdbool.h>

/* Writes all of b to a connection (EINTR retried, no SIGPIPE); false when the peer is gone. */
bool fr_send_all(int fd, const void *b, size_t n);

/* Serves connections of lfd (a listening socket, owned from here on) with at most max at once. */
int fr_acceptor_start(int lfd, size_t max, const struct fr_acceptor_ops *ops, void *ud,
                      struct fr_acceptor **out);

/* New connections are refused from now on. */
void fr_acceptor_quiesce(struct fr_acceptor *a);

/*
 * Stops accepting, tells every connection (the wake descriptor, and a
 * shutdown of its reading side for threads blocked in read), waits for each
 * to finish, closes everything and frees a.
 */
void fr_acceptor_stop(struct fr_acceptor *a);

#endif
