/*
 * completions.c: the mailbox that hands finished jobs from the dispatcher
 * threads to the consumer thread.
 *
 * Data flow: job.c finishes a job (final or not) and pushes it here, the
 * last thing it does with it; the consumer thread takes the whole list
 * (commit.c marks the offsets and frees the jobs through job_free()). A
 * singly linked FIFO through job->next: pushing never allocates, so a
 * finished job can always be handed back.
 *
 * Threads: any thread pushes (dispatcher threads, the thread stopping the
 * queue); the consumer thread takes and waits. One mutex guards the list;
 * the condition is signalled after unlocking (STYLE.md 13). This file calls
 * no other worker file: job.c and the consumer side both call into it.
 */
#include <stdint.h>
#include <time.h>

#include "worker/worker_int.h"

void completions_init(completions *c)
{
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->head = NULL;
    c->tail = NULL;
}

void completions_free(completions *c)
{
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
}

void completions_push(completions *c, job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->tail)
        c->tail->next = job;
    else
        c->head = job;
    c->tail = job;
    pthread_mutex_unlock(&c->lock);
    pthread_cond_signal(&c->cond);
}

job *completions_take(completions *c)
{
    job *head;

    pthread_mutex_lock(&c->lock);
    head = c->head;
    c->head = NULL;
    c->tail = NULL;
    pthread_mutex_unlock(&c->lock);
    return head;
}

void completions_wait(completions *c, int timeout_ms)
{
    struct timespec ts;
    int64_t nsec;

    /* The condition uses the default clock, CLOCK_REALTIME; a wall-clock
     * step only shortens or lengthens one short wait. */
    clock_gettime(CLOCK_REALTIME, &ts);
    nsec = (int64_t)ts.tv_nsec + (int64_t)timeout_ms * 1000000;
    ts.tv_sec += (time_t)(nsec / 1000000000);
    ts.tv_nsec = (long)(nsec % 1000000000);
    pthread_mutex_lock(&c->lock);
    if (!c->head)
        pthread_cond_timedwait(&c->cond, &c->lock, &ts);
    pthread_mutex_unlock(&c->lock);
}
