/*
 * agent/acceptor.c - one thread per connection of a listening socket
 * (acceptor.h).
 */
#include "agent/acceptor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

struct conn {
    struct fr_acceptor *a;
    int fd;
    atomic_bool done; /* the thread has finished: join and free it */
    pthread_t thread;
    struct conn *next;
};

struct fr_acceptor {
    int lfd, wake[2];
    size_t max;
    const struct fr_acceptor_ops *ops;
    void *ud;
    pthread_t thread;
    pthread_mutex_t mu;
    struct conn *conns; /* under mu */
    size_t nconns;      /* under mu: connections being served */
    atomic_bool quiesced;
};

static void *
conn_main(void *arg)
{
    struct conn *c = arg;
    c->a->ops->serve(c->a->ud, c->fd, c->a->wake[0]);
    atomic_store(&c->done, true);
    return NULL;
}

/* Joins and frees finished connections (all of them when all is true). */
static void
reap(struct fr_acceptor *a, bool all)
{
    pthread_mutex_lock(&a->mu);
    for (struct conn **pp = &a->conns; *pp != NULL;) {
        struct conn *c = *pp;
        if (all || atomic_load(&c->done)) {
            *pp = c->next;
            a->nconns--;
            pthread_join(c->thread, NULL);
            close(c->fd);
            free(c);
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&a->mu);
}

static void *
accept_main(void *arg)
{
    struct fr_acceptor *a = arg;
    for (;;) {
        struct pollfd pf[2] = {{.fd = a->lfd, .events = POLLIN},
                               {.fd = a->wake[0], .events = POLLIN}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pf[1].revents)
            break;
        reap(a, false);
        int fd = accept4(a->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&a->mu);
        bool full = a->nconns >= a->max;
        pthread_mutex_unlock(&a->mu);
        if (full || atomic_load(&a->quiesced)) {
            if (a->ops->refuse != NULL)
                a->ops->refuse(a->ud, fd, full ? a->max : 0);
            close(fd);
            continue;
        }
        struct conn *c = fr_calloc(1, sizeof *c);
        c->a = a;
        c->fd = fd;
        pthread_mutex_lock(&a->mu);
        if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
            pthread_mutex_unlock(&a->mu);
            fr_log(FR_LOG_ERROR, "agent", "cannot start a connection thread");
            close(fd);
            free(c);
            continue;
        }
        c->next = a->conns;
        a->conns = c;
        a->nconns++;
        pthread_mutex_unlock(&a->mu);
    }
    return NULL;
}

bool
fr_send_all(int fd, const void *b, size_t n)
{
    const char *p = b;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

int
fr_acceptor_start(int lfd, size_t max, const struct fr_acceptor_ops *ops, void *ud,
                  struct fr_acceptor **out)
{
    struct fr_acceptor *a = fr_calloc(1, sizeof *a);
    a->lfd = lfd;
    a->max = max;
    a->ops = ops;
    a->ud = ud;
    pthread_mutex_init(&a->mu, NULL);
    if (pipe2(a->wake, O_CLOEXEC) != 0) {
        close(lfd);
        pthread_mutex_destroy(&a->mu);
        free(a);
        return FR_E_IO;
    }
    if (pthread_create(&a->thread, NULL, accept_main, a) != 0) {
        close(lfd);
        close(a->wake[0]);
        close(a->wake[1]);
        pthread_mutex_destroy(&a->mu);
        free(a);
        return FR_E_IO;
    }
    *out = a;
    return FR_OK;
}

void
fr_acceptor_quiesce(struct fr_acceptor *a)
{
    atomic_store(&a->quiesced, true);
}

void
fr_acceptor_stop(struct fr_acceptor *a)
{
    if (a == NULL)
        return;
    /* the byte stays in the pipe: the accept thread and every connection polling it see it */
    if (write(a->wake[1], "x", 1) != 1)
        fr_log(FR_LOG_WARN, "agent", "cannot wake the connection threads");
    pthread_join(a->thread, NULL);
    close(a->lfd);
    /* threads blocked in a read stop reading, finish what they hold, and end */
    pthread_mutex_lock(&a->mu);
    for (struct conn *c = a->conns; c != NULL; c = c->next)
        shutdown(c->fd, SHUT_RD);
    pthread_mutex_unlock(&a->mu);
    reap(a, true);
    close(a->wake[0]);
    close(a->wake[1]);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
