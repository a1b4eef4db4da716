/*
 * thread.h: the one way herald starts a thread.
 *
 * herald_thread_create() is pthread_create() with two house rules built
 * in: the new thread starts with the process signals herald handles
 * blocked (signals_set(): SIGINT, SIGTERM, SIGHUP), so they are
 * delivered to the thread that waits for them (the signal thread,
 * core/signals.h, STYLE.md 15) and never interrupt an I/O or timer thread; and
 * the thread is named (pthread_setname_np) so that top -H, gdb and the tests
 * can tell the threads apart. A main() that already blocks those signals
 * before starting threads loses nothing: blocking twice is harmless.
 */
#ifndef HERALD_THREAD_H
#define HERALD_THREAD_H

#include <pthread.h>

/*
 * Longest thread name, bytes with the NUL: what Linux keeps (TASK_COMM_LEN);
 * a longer name is cut.
 */
#define HERALD_THREAD_NAME_MAX 16

/*
 * Starts fn(arg) on a new joinable thread with the signals above blocked
 * and named name (borrowed for the call; cut to HERALD_THREAD_NAME_MAX - 1
 * characters; NULL: unnamed). The calling thread's signal mask is
 * unchanged on return. Stores the thread in *tid (caller-owned, join it
 * with pthread_join()). Returns 0, or pthread_create()'s error number
 * (EAGAIN, ...) with *tid untouched. Any thread.
 */
int herald_thread_create(pthread_t *tid, const char *name,
                         void *(*fn)(void *arg), void *arg);

#endif
