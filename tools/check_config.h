/*
 * check_config.h: `herald check-config FILE`, validating targets.yaml.
 *
 * Loads FILE as `herald run` would (publishers/targets.h) and prints the
 * effective targets with secrets masked. Exit status: 0 valid, 1 invalid
 * (FILE:LINE:COL and the key on stderr), 2 usage error.
 *
 * With --route LABELS (HERALD_ROUTE) it prints instead which targets an
 * alert with those labels goes to and why the others do not
 * (targets_route()). Exit status: 0 when one target or more takes it, 1
 * when none does or FILE is invalid, 2 usage error.
 *
 * Thread-safety: a command entry point; main thread, once at a time.
 */
#ifndef HERALD_CHECK_CONFIG_H
#define HERALD_CHECK_CONFIG_H

/* Runs `herald check-config`. argv[0] is "check-config". */
int check_config_main(int argc, char **argv);

#endif
