/*
 * check_timer.c: the timer engine (core/timer.c): timers fire in due
 * order, never early, equal due times in add order; a cancelled timer
 * never fires; cancel racing with firing keeps its contract (true: the
 * callback never runs; false: it ran or runs, and after
 * timer_cancel_wait() it has returned, so the owner may free, which ASan
 * and TSan check); timer_cancel_owner() takes back one owner's timers in
 * due order and waits for its running callback; callbacks re-arm themselves and
 * add other timers; destroy with pending timers runs none of them and leaks
 * nothing, and waits for a running callback; many timers from several threads;
 * the shared engine is reference counted; the thread is named and has the
 * process signals blocked (core/thread.h).
 *
 * Callbacks never call ck_assert (they run on the timer thread): they
 * record, the test thread asserts. Waits are on a condition variable with
 * a deadline, never a sleep.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/thread.h"
#include "core/timer.h"
#include "tests/check_main.h"

#define REC_MAX 20000

/* What fired, in firing order; guarded by lock. */
typedef struct rec {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int ids[REC_MAX];
    int64_t late_ms[REC_MAX]; /* Fire time minus due time. */
    int n;
} rec;

/* One test timer: the entry, its id, due time and recorder. */
typedef struct item {
    timer_entry e;
    int id;
    int64_t due;
    rec *r;
} item;

static herald_timer *t;
static rec *r;

static void setup(void)
{
    char err[256] = "";

    t = timer_new("herald-timer-t", err, sizeof err);
    ck_assert_msg(t != NULL, "timer_new: %s", err);
    r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
}

static void teardown(void)
{
    timer_destroy(t);
    t = NULL;
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
    r = NULL;
}

/* Records it->id. Timer thread. */
static void record_cb(void *arg)
{
    item *it = arg;
    int64_t now = herald_now_ms();

    pthread_mutex_lock(&it->r->lock);
    if (it->r->n < REC_MAX) {
        it->r->ids[it->r->n] = it->id;
        it->r->late_ms[it->r->n] = now - it->due;
        it->r->n++;
    }
    pthread_cond_broadcast(&it->r->cond);
    pthread_mutex_unlock(&it->r->lock);
}

/* Waits until n timers were recorded (fails after CHECK_WAIT_MS). */
static void rec_wait(rec *rc, int n)
{
    int64_t until = herald_now_ms() + CHECK_WAIT_MS;
    struct timespec ts;
    int got;

    pthread_mutex_lock(&rc->lock);
    while (rc->n < n && herald_now_ms() < until) {
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&rc->cond, &rc->lock, &ts);
    }
    got = rc->n;
    pthread_mutex_unlock(&rc->lock);
    ck_assert_int_ge(got, n);
}

/* Adds it (id, due) to t with record_cb. */
static void add(item *it, int id, int64_t due)
{
    it->id = id;
    it->due = due;
    it->r = r;
    ck_assert_int_eq(timer_add(t, &it->e, due, record_cb, it), HERALD_OK);
}

/* Adds a timer due now and waits for it: every timer due before it has
 * fired, and no callback is running once this returns but this one's. */
static void flush(void)
{
    item sentinel = {0};
    int n;

    pthread_mutex_lock(&r->lock);
    n = r->n;
    pthread_mutex_unlock(&r->lock);
    add(&sentinel, -1, 0);
    rec_wait(r, n + 1);
}

START_TEST(test_order_by_due)
{
    item it[5];
    int64_t now = herald_now_ms();
    const int64_t off[5] = {120, 40, 80, 0, 160};
    const int want[5] = {3, 1, 2, 0, 4};

    memset(it, 0, sizeof it);
    for (int i = 0; i < 5; i++)
        add(&it[i], i, now + off[i]);
    rec_wait(r, 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(r->ids[i], want[i]);
        /* Never early. */
        ck_assert_int_ge(r->late_ms[i], 0);
    }
    ck_assert_uint_eq(timer_len(t), 0);
}
END_TEST

START_TEST(test_equal_due_fifo)
{
    static item it[200];
    int64_t due = herald_now_ms() + 200;

    memset(it, 0, sizeof it);
    /* Half at one future time, half in the past: each group FIFO. */
    for (int i = 0; i < 100; i++)
        add(&it[i], i, due);
    for (int i = 100; i < 200; i++)
        add(&it[i], i, 0);
    rec_wait(r, 200);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(r->ids[i], 100 + i);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(r->ids[100 + i], i);
}
END_TEST

START_TEST(test_cancel_before_due)
{
    item far = {0};
    item soon = {0};
    item never = {0};

    add(&far, 1, herald_now_ms() + 60000);
    add(&soon, 2, herald_now_ms() + 5000);
    ck_assert_uint_eq(timer_len(t), 2);
    /* A pending entry cannot be armed twice. */
    ck_assert_int_eq(timer_add(t, &far.e, 0, record_cb, &far),
                     HERALD_ERR_STATE);
    ck_assert(timer_cancel(t, &far.e));
    ck_assert(timer_cancel_wait(t, &soon.e));
    ck_assert_uint_eq(timer_len(t), 0);
    /* Not pending any more; a zeroed entry was never pending. */
    ck_assert(!timer_cancel(t, &far.e));
    ck_assert(!timer_cancel_wait(t, &far.e));
    ck_assert(!timer_cancel(t, &never.e));
    timer_entry_init(&never.e, NULL);
    ck_assert(!timer_cancel_wait(t, &never.e));
    flush();
    /* Only the sentinel fired. */
    ck_assert_int_eq(r->n, 1);
    ck_assert_int_eq(r->ids[0], -1);
    /* A cancelled entry can be armed again. */
    add(&far, 3, 0);
    rec_wait(r, 2);
    ck_assert_int_eq(r->ids[1], 3);
    ck_assert_int_eq(timer_add(NULL, &far.e, 0, record_cb, &far),
                     HERALD_ERR_INVALID);
    ck_assert_int_eq(timer_add(t, &far.e, 0, NULL, &far), HERALD_ERR_INVALID);
}
END_TEST

/* A heap-allocated timer whose callback writes to it slowly: freeing it
 * too early is a use-after-free under ASan, a race under TSan. */
typedef struct racer {
    timer_entry e;
    atomic_int ran;  /* The callback started. */
    atomic_int done; /* The callback is about to return. */
    int scratch;     /* Plain: written by the callback only. */
} racer;

static atomic_int racer_runs;

static void racer_cb(void *arg)
{
    racer *x = arg;

    atomic_store(&x->ran, 1);
    /* Widen the window in which a canceller races with this callback. */
    for (int i = 0; i < 2000; i++)
        x->scratch += i;
    atomic_fetch_add(&racer_runs, 1);
    atomic_store(&x->done, 1);
}

START_TEST(test_cancel_wait_races_firing)
{
    int not_pending = 0;

    atomic_store(&racer_runs, 0);
    for (int i = 0; i < 2000; i++) {
        racer *x = calloc(1, sizeof *x);

        ck_assert_ptr_nonnull(x);
        ck_assert_int_eq(timer_add(t, &x->e, herald_now_ms(), racer_cb, x),
                         HERALD_OK);
        if (i % 3 == 0) {
            /* Let it start sometimes, so both answers are exercised. */
            for (int spin = 0; spin < 1000 && !atomic_load(&x->ran); spin++)
                ;
        }
        if (timer_cancel_wait(t, &x->e)) {
            /* Removed before firing: it never ran and never will. */
            ck_assert_int_eq(atomic_load(&x->ran), 0);
        } else {
            /* Fired: the callback has returned (or is past its last
             * access to x), so x may be freed now. */
            ck_assert_int_eq(atomic_load(&x->done), 1);
            not_pending++;
        }
        free(x);
    }
    flush();
    ck_assert_int_eq(atomic_load(&racer_runs), not_pending);
}
END_TEST

START_TEST(test_cancel_races_firing)
{
    static racer xs[2000];
    int not_pending = 0;

    memset(xs, 0, sizeof xs);
    atomic_store(&racer_runs, 0);
    for (int i = 0; i < 2000; i++) {
        racer *x = &xs[i];

        ck_assert_int_eq(timer_add(t, &x->e, herald_now_ms(), racer_cb, x),
                         HERALD_OK);
        /* Never waits: false means it ran, runs or is about to run. */
        if (timer_cancel(t, &x->e))
            ck_assert_int_eq(atomic_load(&x->ran), 0);
        else
            not_pending++;
    }
    /* Every callback that fired has returned after the flush. */
    flush();
    ck_assert_int_eq(atomic_load(&racer_runs), not_pending);
    for (int i = 0; i < 2000; i++)
        ck_assert_int_eq(atomic_load(&xs[i].ran), atomic_load(&xs[i].done));
}
END_TEST

/* A callback held on a gate, to make "running" observable. */
typedef struct gated {
    timer_entry e;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool running;
    bool open;
    atomic_bool finished;
    int rearms; /* Re-arms itself this many more times. */
    herald_timer *tm;
} gated;

static void gated_init(gated *g, herald_timer *tm)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->tm = tm;
}

static void gated_free(gated *g)
{
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
}

static void gated_cb(void *arg)
{
    gated *g = arg;

    pthread_mutex_lock(&g->lock);
    g->running = true;
    pthread_cond_broadcast(&g->cond);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    if (g->rearms > 0) {
        g->rearms--;
        (void)timer_add(g->tm, &g->e, herald_now_ms() + 60000, gated_cb, g);
    }
    pthread_mutex_unlock(&g->lock);
    atomic_store(&g->finished, true);
}

static void gated_wait_running(gated *g)
{
    pthread_mutex_lock(&g->lock);
    while (!g->running)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static void gated_open(gated *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* A call made on another thread while a gated callback runs: it records
 * whether that callback had returned when the call returned. */
typedef enum bg_what { BG_CANCEL_WAIT, BG_CANCEL_OWNER, BG_DESTROY } bg_what;

typedef struct bg_call {
    bg_what what;
    herald_timer *tm;
    gated *g;
    const void *owner;  /* BG_CANCEL_OWNER. */
    bool removed;       /* BG_CANCEL_WAIT's answer. */
    timer_entry *taken; /* BG_CANCEL_OWNER's answer. */
    bool saw_finished;
} bg_call;

static void *bg_call_main(void *arg)
{
    bg_call *b = arg;

    switch (b->what) {
    case BG_CANCEL_WAIT: b->removed = timer_cancel_wait(b->tm, &b->g->e); break;
    case BG_CANCEL_OWNER: b->taken = timer_cancel_owner(b->tm, b->owner); break;
    case BG_DESTROY: timer_destroy(b->tm); break;
    }
    b->saw_finished = atomic_load(&b->g->finished);
    return NULL;
}

START_TEST(test_cancel_wait_running_rearmed)
{
    gated g;
    bg_call c = {BG_CANCEL_WAIT, NULL, NULL, NULL, false, NULL, false};
    pthread_t th;

    gated_init(&g, t);
    g.rearms = 1;
    ck_assert_int_eq(timer_add(t, &g.e, 0, gated_cb, &g), HERALD_OK);
    gated_wait_running(&g);
    /* Running: not pending, so the plain cancel says false at once. */
    ck_assert(!timer_cancel(t, &g.e));
    c.tm = t;
    c.g = &g;
    ck_assert_int_eq(pthread_create(&th, NULL, bg_call_main, &c), 0);
    gated_open(&g);
    pthread_join(th, NULL);
    /* It waited for the callback, then removed its re-arm. */
    ck_assert(c.saw_finished);
    ck_assert(c.removed);
    ck_assert_uint_eq(timer_len(t), 0);
    gated_free(&g);
}
END_TEST

START_TEST(test_cancel_owner)
{
    static item mine[50];
    static item theirs[50];
    static int me, them;
    int64_t base = herald_now_ms() + 60000;
    timer_entry *e;
    int n = 0;
    int64_t prev = 0;
    gated g;
    bg_call o = {BG_CANCEL_OWNER, NULL, NULL, NULL, false, NULL, false};
    pthread_t th;

    for (int i = 0; i < 50; i++) {
        /* Due times out of order, some equal: taken back in due order. */
        timer_entry_init(&mine[i].e, &me);
        add(&mine[i], i, base + (i * 7) % 10);
        timer_entry_init(&theirs[i].e, &them);
        add(&theirs[i], 100 + i, base + i);
    }
    ck_assert_uint_eq(timer_len(t), 100);
    for (e = timer_cancel_owner(t, &me); e; e = e->next) {
        item *it = e->arg;

        ck_assert_ptr_eq(&it->e, e);
        ck_assert_int_lt(it->id, 50);
        ck_assert_int_ge(it->due, prev);
        prev = it->due;
        n++;
    }
    ck_assert_int_eq(n, 50);
    /* The other owner's timers are untouched and still cancellable. */
    ck_assert_uint_eq(timer_len(t), 50);
    ck_assert_ptr_null(timer_cancel_owner(t, &me));
    ck_assert(timer_cancel(t, &theirs[10].e));
    ck_assert_uint_eq(timer_len(t), 49);
    n = 0;
    for (e = timer_cancel_owner(t, &them); e; e = e->next)
        n++;
    ck_assert_int_eq(n, 49);
    ck_assert_uint_eq(timer_len(t), 0);

    /* A running callback of the owner is waited for; its re-arm taken. */
    gated_init(&g, t);
    timer_entry_init(&g.e, &me);
    g.rearms = 1;
    ck_assert_int_eq(timer_add(t, &g.e, 0, gated_cb, &g), HERALD_OK);
    gated_wait_running(&g);
    o.tm = t;
    o.owner = &me;
    o.g = &g;
    ck_assert_int_eq(pthread_create(&th, NULL, bg_call_main, &o), 0);
    gated_open(&g);
    pthread_join(th, NULL);
    ck_assert(o.saw_finished);
    ck_assert_ptr_eq(o.taken, &g.e);
    ck_assert_ptr_null(o.taken->next);
    ck_assert_uint_eq(timer_len(t), 0);
    gated_free(&g);
    flush();
    ck_assert_int_eq(r->n, 1); /* Only the sentinel fired. */
}
END_TEST

/* Re-arms itself until count reaches 5, and adds an earlier timer. */
typedef struct chain {
    timer_entry e;
    item extra;
    int count;
} chain;

static void chain_cb(void *arg)
{
    chain *ch = arg;

    ch->count++;
    if (ch->count == 2)
        (void)timer_add(t, &ch->extra.e, 0, record_cb, &ch->extra);
    if (ch->count < 5)
        (void)timer_add(t, &ch->e, herald_now_ms() + 2, chain_cb, ch);
    pthread_mutex_lock(&r->lock);
    r->ids[r->n++] = 100 + ch->count;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

START_TEST(test_add_from_callback)
{
    chain ch = {0};

    ch.extra.id = 7;
    ch.extra.r = r;
    ck_assert_int_eq(timer_add(t, &ch.e, 0, chain_cb, &ch), HERALD_OK);
    rec_wait(r, 6);
    flush();
    ck_assert_int_eq(ch.count, 5);
    ck_assert_int_eq(r->n, 7);
    ck_assert_int_eq(r->ids[0], 101);
    ck_assert_int_eq(r->ids[1], 102);
    /* Added by the second run, due at once: before the third run. */
    ck_assert_int_eq(r->ids[2], 7);
    ck_assert_int_eq(r->ids[3], 103);
    ck_assert_int_eq(r->ids[5], 105);
}
END_TEST

START_TEST(test_destroy_with_pending)
{
    item *it;
    herald_timer *tm;
    gated g;
    bg_call d = {BG_DESTROY, NULL, NULL, NULL, false, NULL, false};
    pthread_t th;
    char err[128];
    int n_at_destroy;

    /* Heap-allocated and freed right after each destroy: ASan reports an
     * engine that still touches an entry. */
    it = calloc(1000, sizeof *it);
    ck_assert_ptr_nonnull(it);
    tm = timer_new(NULL, err, sizeof err);
    ck_assert_ptr_nonnull(tm);
    gated_init(&g, tm);
    /* One callback running (held), many pending. */
    ck_assert_int_eq(timer_add(tm, &g.e, 0, gated_cb, &g), HERALD_OK);
    gated_wait_running(&g);
    for (int i = 0; i < 1000; i++) {
        it[i].id = i;
        it[i].r = r;
        ck_assert_int_eq(timer_add(tm, &it[i].e, herald_now_ms() + 60000 + i,
                                   record_cb, &it[i]),
                         HERALD_OK);
    }
    ck_assert_uint_eq(timer_len(tm), 1000);
    d.tm = tm;
    d.g = &g;
    ck_assert_int_eq(pthread_create(&th, NULL, bg_call_main, &d), 0);
    gated_open(&g);
    pthread_join(th, NULL);
    /* Destroy waited for the running callback and ran no pending one. */
    ck_assert(d.saw_finished);
    free(it);
    gated_free(&g);
    pthread_mutex_lock(&r->lock);
    ck_assert_int_eq(r->n, 0);
    pthread_mutex_unlock(&r->lock);

    /* Due and far timers, destroyed at once: the due ones may run until
     * destroy stops the thread, none after it returned. */
    it = calloc(1000, sizeof *it);
    ck_assert_ptr_nonnull(it);
    tm = timer_new(NULL, err, sizeof err);
    ck_assert_ptr_nonnull(tm);
    for (int i = 0; i < 1000; i++) {
        it[i].id = i;
        it[i].r = r;
        ck_assert_int_eq(timer_add(tm, &it[i].e,
                                   i % 2 ? 0 : herald_now_ms() + 60000,
                                   record_cb, &it[i]),
                         HERALD_OK);
    }
    timer_destroy(tm);
    free(it);
    pthread_mutex_lock(&r->lock);
    n_at_destroy = r->n;
    for (int i = 0; i < n_at_destroy; i++)
        ck_assert_int_eq(r->ids[i] % 2, 1);
    pthread_mutex_unlock(&r->lock);
    flush(); /* On the fixture's engine: only its sentinel more. */
    ck_assert_int_eq(r->n, n_at_destroy + 1);

    /* Idle and NULL destroys. */
    timer_destroy(NULL);
    tm = timer_new(NULL, err, sizeof err);
    ck_assert_ptr_nonnull(tm);
    timer_destroy(tm);
}
END_TEST

#define MANY_THREADS 4
#define MANY_PER_THREAD 2500

typedef struct many_arg {
    item *items;
    int first;
    int64_t base;
    int cancelled;
} many_arg;

static void *many_main(void *arg)
{
    many_arg *m = arg;
    unsigned seed = (unsigned)m->first + 1;

    for (int i = 0; i < MANY_PER_THREAD; i++) {
        item *it = &m->items[m->first + i];

        it->id = m->first + i;
        it->due = m->base + rand_r(&seed) % 200;
        it->r = r;
        if (timer_add(t, &it->e, it->due, record_cb, it) != HERALD_OK)
            return NULL;
        /* Cancel every third: a pending one, so always true. */
        if (i % 3 == 0 && timer_cancel(t, &it->e))
            m->cancelled++;
    }
    return NULL;
}

START_TEST(test_many_timers)
{
    static item items[MANY_THREADS * MANY_PER_THREAD];
    many_arg m[MANY_THREADS];
    pthread_t th[MANY_THREADS];
    int cancelled = 0;
    int want;
    int64_t prev_due = 0;

    memset(items, 0, sizeof items);
    /* Far enough for every add to come before the first one is due. */
    for (int i = 0; i < MANY_THREADS; i++) {
        m[i] =
            (many_arg){items, i * MANY_PER_THREAD, herald_now_ms() + 2000, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, many_main, &m[i]), 0);
    }
    for (int i = 0; i < MANY_THREADS; i++) {
        pthread_join(th[i], NULL);
        cancelled += m[i].cancelled;
    }
    want = MANY_THREADS * MANY_PER_THREAD - cancelled;
    ck_assert_int_eq(cancelled, MANY_THREADS * ((MANY_PER_THREAD + 2) / 3));
    rec_wait(r, want);
    flush();
    ck_assert_int_eq(r->n, want + 1);
    for (int i = 0; i < want; i++) {
        const item *it = &items[r->ids[i]];

        ck_assert_int_ne((it->id % MANY_PER_THREAD) % 3, 0);
        ck_assert_int_ge(r->late_ms[i], 0);
        /* In due order (all were added before the first fell due). */
        ck_assert_int_ge(it->due, prev_due);
        prev_due = it->due;
    }
}
END_TEST

/* Where the callback ran: thread name and blocked signals. */
typedef struct where {
    char name[HERALD_THREAD_NAME_MAX];
    bool term_blocked;
    bool int_blocked;
    bool hup_blocked;
    atomic_bool done;
} where;

static void where_cb(void *arg)
{
    where *w = arg;
    sigset_t mask;

    pthread_getname_np(pthread_self(), w->name, sizeof w->name);
    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    w->term_blocked = sigismember(&mask, SIGTERM) == 1;
    w->int_blocked = sigismember(&mask, SIGINT) == 1;
    w->hup_blocked = sigismember(&mask, SIGHUP) == 1;
    atomic_store(&w->done, true);
}

START_TEST(test_shared_engine)
{
    char err[128];
    herald_timer *a = timer_shared_acquire(err, sizeof err);
    herald_timer *b = timer_shared_acquire(err, sizeof err);
    timer_entry e = {0};
    where w = {0};
    sigset_t mask;

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_eq(a, b);
    ck_assert_int_eq(timer_add(a, &e, 0, where_cb, &w), HERALD_OK);
    WAIT_FOR(atomic_load(&w.done));
    ck_assert_str_eq(w.name, "herald-timer");
    ck_assert(w.term_blocked && w.int_blocked && w.hup_blocked);
    /* The creating thread's mask is unchanged. */
    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    ck_assert(!sigismember(&mask, SIGTERM));
    timer_shared_release();
    /* Still alive for the other reference. */
    memset(&w, 0, sizeof w);
    ck_assert_int_eq(timer_add(b, &e, 0, where_cb, &w), HERALD_OK);
    WAIT_FOR(atomic_load(&w.done));
    timer_shared_release();
    /* The last release joined it; a new user starts a new one. */
    a = timer_shared_acquire(err, sizeof err);
    ck_assert_ptr_nonnull(a);
    memset(&w, 0, sizeof w);
    ck_assert_int_eq(timer_add(a, &e, 0, where_cb, &w), HERALD_OK);
    WAIT_FOR(atomic_load(&w.done));
    timer_shared_release();
    /* The fixture's own engine has the name it was given. */
    memset(&w, 0, sizeof w);
    ck_assert_int_eq(timer_add(t, &e, 0, where_cb, &w), HERALD_OK);
    WAIT_FOR(atomic_load(&w.done));
    ck_assert_str_eq(w.name, "herald-timer-t");
}
END_TEST

int main(void)
{
    const check_case cases[] = {
        {"order_by_due", test_order_by_due},
        {"equal_due_fifo", test_equal_due_fifo},
        {"cancel_before_due", test_cancel_before_due},
        {"cancel_wait_races_firing", test_cancel_wait_races_firing},
        {"cancel_races_firing", test_cancel_races_firing},
        {"cancel_wait_running_rearmed", test_cancel_wait_running_rearmed},
        {"cancel_owner", test_cancel_owner},
        {"add_from_callback", test_add_from_callback},
        {"destroy_with_pending", test_destroy_with_pending},
        {"many_timers", test_many_timers},
        {"shared_engine", test_shared_engine},
    };
    Suite *s = suite_create("timer");

    check_suite_add(s, cases, CHECK_N_CASES(cases), setup, teardown);
    return check_suite_run(s);
}
