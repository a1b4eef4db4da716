/*
 * check_signals.c: tests of the signal thread (core/signals).
 *
 * The test process blocks the signals and starts the signal thread as
 * main() does, then sends itself SIGTERM and SIGHUP with kill(2) and
 * waits for the registered flags. The "second signal exits at once" path
 * ends the process, so it runs in a child (fork) whose exit status is
 * checked.
 */
#include <check.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/signals.h"

#include "tests/check_main.h"

static void setup(void)
{
    ck_assert_int_eq(signals_block(), HERALD_OK);
    ck_assert_int_eq(signals_start(), HERALD_OK);
}

static void teardown(void)
{
    signals_stop();
}

START_TEST(test_stop_and_reload_flags)
{
    atomic_int stop = 0;
    atomic_int reload = 0;

    signals_watch(&stop, &reload);
    kill(getpid(), SIGHUP);
    WAIT_FOR(atomic_load(&reload) == 1);
    ck_assert_int_eq(atomic_load(&stop), 0);
    kill(getpid(), SIGTERM);
    WAIT_FOR(atomic_load(&stop) == 1);
    signals_watch(NULL, NULL);
}
END_TEST

/* Runs fn in a child process and returns its exit status (or -1). The
 * parent has no signal thread then (fork copies only the calling
 * thread), so the child starts its own. */
static int child_status(void (*fn)(void))
{
    pid_t pid = fork();
    int status = 0;

    if (pid == 0) {
        fn();
        _exit(0);
    }
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A second SIGINT while the first is being handled: exit 128 + 2. */
static void child_second_signal(void)
{
    static atomic_int stop;

    signals_block();
    signals_start();
    signals_watch(&stop, NULL);
    kill(getpid(), SIGINT);
    while (!atomic_load(&stop))
        check_sleep_ms(1);
    kill(getpid(), SIGINT);
    for (;;)
        check_sleep_ms(1000);
}

/* No stop flag registered (a simple tool): SIGTERM exits with 143. */
static void child_no_flag(void)
{
    signals_block();
    signals_start();
    kill(getpid(), SIGTERM);
    for (;;)
        check_sleep_ms(1000);
}

START_TEST(test_exit_at_once)
{
    ck_assert_int_eq(child_status(child_second_signal), 128 + SIGINT);
    ck_assert_int_eq(child_status(child_no_flag), 128 + SIGTERM);
}
END_TEST

int main(void)
{
    const check_case with_thread[] = {
        {"stop_and_reload_flags", test_stop_and_reload_flags},
    };
    const check_case forking[] = {
        {"exit_at_once", test_exit_at_once},
    };
    Suite *s = suite_create("signals");

    check_suite_add(s, with_thread, CHECK_N_CASES(with_thread), setup,
                    teardown);
    check_suite_add(s, forking, CHECK_N_CASES(forking), NULL, NULL);
    return check_suite_run(s);
}
