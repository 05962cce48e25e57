/*
 * bench/sink.c - a loopback HTTP sink for the upload benchmark: accepts
 * PUT and POST bodies, discards them, answers 201. Prints its port.
 *
 *     fr-sink [PORT]   (runs until killed; port 0 or none: any free port)
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
       const char *version, const char *upload, size_t *upload_size, void **ctx)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload;
    if (*ctx == NULL) {
        *ctx = (void *)1;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        *upload_size = 0; /* discarded */
        return MHD_YES;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(c, 201, r);
    MHD_destroy_response(r);
    return rc;
}

int
main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                         (uint16_t)port, NULL, NULL, handle, NULL, MHD_OPTION_END);
    if (d == NULL)
        return 1;
    printf("%d\n", MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port);
    fflush(stdout);
    for (;;)
        pause();
}
