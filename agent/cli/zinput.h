/*
 * agent/cli/zinput.h - input that may be compressed: a file or stdin that
 * starts with a gzip or zstd stream (an archived log, the producer's
 * rotated spool) is read decompressed, as if `zcat` ran in front of it;
 * UTF-16 text is refused before anything is read.
 */
#ifndef FR_AGENT_CLI_ZINPUT_H
#define FR_AGENT_CLI_ZINPUT_H

#include <stddef.h>

#include "core/err.h"

struct fr_zinput;

/*
 * Reads fd's first bytes (up to 4, blocking like any read). When they start
 * a gzip or zstd stream, *z is a thread that decompresses all of fd into a
 * pipe and *in the pipe's read end; otherwise *z is NULL, *in is fd, and the
 * bytes read to find out are pre[0, *npre), to be read before the rest of fd
 * (fr_linereader_preload). FR_E_UTF8 for UTF-16 text (a byte order mark:
 * every line would be invalid; err says how to convert it), FR_E_IO when fd
 * cannot be read or no pipe or thread can be made (err says which).
 */
int fr_zinput_open(int fd, struct fr_zinput **z, int *in, char pre[4], size_t *npre,
                   struct fr_err *err);

/*
 * Closes the pipe's read end (a reader that stopped early stops the thread),
 * joins the thread and frees z. FR_OK, or FR_E_SYNTAX when the stream was
 * corrupt or cut short, FR_E_IO when fd could not be read (err says where).
 */
int fr_zinput_close(struct fr_zinput *z, struct fr_err *err);

#endif
