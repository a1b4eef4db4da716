/*
 * signals.h: the process's signals, handled in one place.
 *
 * main() calls signals_block() first, before any thread exists, so that
 * every thread created later (libcurl's resolver threads, librdkafka's
 * threads, the queue's dispatchers) inherits a mask that blocks SIGINT,
 * SIGTERM and SIGHUP; SIGPIPE is ignored. Then signals_start() runs one
 * signal thread that takes those signals with sigwait(), so no code runs
 * in a signal handler and the flags are plain C11 atomics:
 *
 *   SIGTERM, SIGINT  set the registered stop flag; when it is already
 *                    set (a second signal), or no stop flag is
 *                    registered (a simple tool reading stdin), the
 *                    process ends at once with _exit(128 + signal).
 *   SIGHUP           sets the registered reload flag; without one it
 *                    acts like SIGTERM.
 *
 * What was not committed when the process ends at once is consumed again
 * (at-least-once), so a second signal loses nothing.
 */
#ifndef HERALD_SIGNALS_H
#define HERALD_SIGNALS_H

#include <signal.h>
#include <stdatomic.h>

#include "core/err.h"

/*
 * Fills set (caller-allocated) with the signals herald takes on its signal
 * thread: SIGINT, SIGTERM, SIGHUP. Every other thread blocks them
 * (core/thread.h). Pure; any thread.
 */
void signals_set(sigset_t *set);

/*
 * Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and ignores
 * SIGPIPE. Call on the main thread before any other thread starts.
 * Errors: HERALD_ERR_INVALID when the mask cannot be set.
 */
herald_err signals_block(void);

/*
 * Starts the signal thread (after signals_block()). Errors:
 * HERALD_ERR_NOMEM when the thread cannot be created. Main thread, once.
 */
herald_err signals_start(void);

/*
 * Registers the flags the signal thread sets: stop for SIGTERM/SIGINT,
 * reload for SIGHUP; NULL unregisters. Both are borrowed until they are
 * unregistered (or signals_stop()). Any thread.
 */
void signals_watch(atomic_int *stop, atomic_int *reload);

/*
 * Stops and joins the signal thread; a no-op when it is not running.
 * Signals arriving afterwards stay blocked (pending). Main thread.
 */
void signals_stop(void);

#endif
