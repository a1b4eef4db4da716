/*
 * options.h: the table-driven command line of every herald subcommand.
 *
 * A subcommand describes its flags once, in a static options_entry table
 * whose entries point (by offset) into the subcommand's own settings
 * struct. From that one table come: the getopt_long() parser, the
 * validation and its error messages, the environment form of every flag,
 * the --help text, the --print-config listing and the masked one-line
 * summary logged at start.
 *
 * Defaults: the caller fills the settings struct with its defaults
 * before options_parse(); what the struct holds then is the default,
 * and --help prints it. So a default is written in one place (for
 * `herald run`, worker_config_default()).
 *
 * Precedence: a flag wins over the environment, the environment over
 * the default. The environment variable of --some-flag is
 * HERALD_SOME_FLAG; a variable set to the empty string means the empty
 * value. For the librdkafka property list (OPTIONS_KAFKA, -X), every
 * variable HERALD_KAFKA_<NAME> adds the property <name> with underscores
 * as dots (HERALD_KAFKA_SASL_PASSWORD -> sasl.password); a -X of the same
 * property wins. A HERALD_KAFKA_ variable whose name librdkafka does not
 * know (HERALD_KAFKA_PORT of integration/kafka) is ignored, and listed as
 * ignored by options_print().
 *
 * Thread-safety: options_parse() uses getopt_long() and reads the
 * environment: main thread, one call at a time. The other functions are
 * pure over their arguments.
 */
#ifndef HERALD_OPTIONS_H
#define HERALD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/buf.h"
#include "core/err.h"

/* What a flag takes, and the C type of its destination field. */
typedef enum options_type {
    OPTIONS_STRING, /* const char *; NULL = unset. */
    OPTIONS_INT,    /* int, within min..max. */
    OPTIONS_MS,     /* int64_t milliseconds, within min..max. */
    OPTIONS_BOOL,   /* bool; the flag takes no argument. */
    OPTIONS_ENUM,   /* int: values[i] of the word words[i]. */
    OPTIONS_LIST,   /* options_list; repeatable, no environment form. */
    OPTIONS_KAFKA   /* options_list of "name=value" librdkafka properties;
                       repeatable (-X), environment HERALD_KAFKA_*. */
} options_type;

/* Entry flags. */
#define OPTIONS_REQUIRED 0x1u /* Must be given, non-empty (STRING). */
#define OPTIONS_SECRET 0x2u   /* Printed as *** (print, summary). */
#define OPTIONS_NOENV 0x4u    /* No environment form (--print-config). */

/* One flag. Static tables of these; every string is borrowed forever. */
typedef struct options_entry {
    const char *name;         /* Long flag without "--", e.g. "window". */
    char short_name;          /* Short letter, or 0. */
    options_type type;        /* What it takes; the destination's C type. */
    size_t offset;            /* offsetof() the destination field. */
    unsigned flags;           /* OPTIONS_REQUIRED | OPTIONS_SECRET | ... */
    const char *arg;          /* Metavariable in --help ("N", "LIST"). */
    int64_t min, max;         /* OPTIONS_INT and OPTIONS_MS: inclusive range. */
    const char *const *words; /* OPTIONS_ENUM: NULL-terminated words. */
    const int *values;        /* OPTIONS_ENUM: the value of each word. */
    const char *neg_name;     /* OPTIONS_BOOL: a flag that sets false, or
                                 NULL ("no-split"). */
    const char *help;         /* Help text; '\n' starts a new line. */
    const char *env;          /* Environment variable when it cannot follow
                                 the rule (a name another command uses for
                                 something else), or NULL for the rule. */
} options_entry;

/* One subcommand. */
typedef struct options_spec {
    const char *command; /* "herald run": prefix of usage errors. */
    const char *usage;   /* Synopsis and description, before the flags. */
    const char *footer;  /* After the flags, or NULL. */
    const options_entry *entries;
    size_t n_entries;
    int max_args; /* Positional arguments allowed after the flags. */
} options_spec;

/* The .entries and .n_entries of an options_spec from a static array. */
#define OPTIONS_TABLE(table)                                                   \
    .entries = (table), .n_entries = sizeof(table) / sizeof *(table)

/* A repeatable flag's values. Every item is owned by the list. */
typedef struct options_list {
    char **items; /* "name=value" for OPTIONS_KAFKA. */
    char **envs;  /* Per item: the environment variable it came from, or
                     NULL for a flag. Owned by the list. */
    size_t n;
} options_list;

/* Where an entry's effective value came from. */
typedef enum options_source {
    OPTIONS_SRC_DEFAULT = 0,
    OPTIONS_SRC_ENV,
    OPTIONS_SRC_FLAG
} options_source;

/* Result of one options_parse(). Caller-allocated; options_state_free(). */
typedef struct options_state {
    options_source *sources; /* Per entry of the spec. */
    char **owned;            /* Strings copied from the environment. */
    size_t n_owned;
    char **ignored; /* HERALD_KAFKA_ variables librdkafka does not know. */
    size_t n_ignored;
    bool help; /* --help was given: print options_help() and exit 0. */
    int argi;  /* argv index of the first positional argument. */
} options_state;

/*
 * Parses argv (argv[0] is the command name) and the environment into
 * the settings struct dst, which holds the defaults on entry. String
 * fields then point into argv or into st (borrowed until
 * options_state_free()); lists are owned by dst (options_list_free()).
 * On --help sets st->help and returns HERALD_OK at once. Errors:
 * HERALD_ERR_INVALID with errstr set to the message, e.g.
 * `herald: --window: expected an integer in 1..1000000, got "x"`,
 * `herald: HERALD_WINDOW: ...`, `herald run: unknown option "--x"`,
 * `herald run: missing --brokers (or HERALD_BROKERS)`,
 * `herald run: unexpected argument "x"`; HERALD_ERR_NOMEM. st is filled
 * in every case and must be freed. Main thread only (getopt, environ).
 */
herald_err options_parse(const options_spec *spec, int argc, char **argv,
                         void *dst, options_state *st, char *errstr,
                         size_t errstr_size);

/*
 * The usual frame of a subcommand: options_parse(), then on --help the
 * help on stdout (returns 0), on an error the message and a hint on
 * stderr (returns 2); returns -1 when the command should go on. st must
 * be freed in every case. Main thread only.
 */
int options_cli(const options_spec *spec, int argc, char **argv, void *dst,
                options_state *st);

/*
 * Where the effective value of the entry named name came from
 * (OPTIONS_SRC_DEFAULT for an unknown name). Any thread.
 */
options_source options_source_of(const options_spec *spec,
                                 const options_state *st, const char *name);

/* Frees what options_parse() put in st; NULL and a zeroed st are fine. */
void options_state_free(options_state *st);

/* Frees the items of a list and empties it. */
void options_list_free(options_list *list);

/*
 * Writes the --help text: usage, then per flag its help, environment
 * variable, default (the value dst holds), range or words, then the
 * footer. dst holds the defaults (before options_parse()). Any thread.
 */
void options_help(const options_spec *spec, const void *dst, FILE *out);

/*
 * Writes the effective settings, one per line:
 *   name = value  # source
 * where value is a quoted string, a number, a word, true/false or
 * (unset), secrets are ***, and source is `flag`, `env HERALD_X` or
 * `default`. Each librdkafka property is a line `-X name = value`.
 * Ignored HERALD_KAFKA_ variables follow as `# ignored NAME: ...`.
 * Any thread.
 */
void options_print(const options_spec *spec, const void *dst,
                   const options_state *st, FILE *out);

/*
 * Appends the one-line form "name=value name=value ..." of the
 * effective settings (secrets ***, properties as -X name=value) to b,
 * for the log line at start. Errors: those of buf_append(). Any thread.
 */
herald_err options_summary(const options_spec *spec, const void *dst, buf *b);

/*
 * True when a librdkafka property holds a secret: its name contains
 * "password", "secret", "token" or "credential", or it is
 * sasl.jaas.config, sasl.oauthbearer.config, sasl.kerberos.keytab or an
 * ssl.key* / ssl.keystore* property. Pure, any thread.
 */
bool options_kafka_is_secret(const char *name);

/*
 * Writes the environment variable of an entry into out: e->env, else
 * HERALD_ + the long name upper-cased with dashes as underscores. Pure,
 * any thread.
 */
void options_env_name(const options_entry *e, char *out, size_t out_size);

/*
 * The default dead-letter topic of the dlq tools: "$HERALD_TOPIC.dlq"
 * written into out, or NULL when HERALD_TOPIC is unset or empty. Main
 * thread (getenv).
 */
const char *options_dlq_topic_default(char *out, size_t out_size);

/* Words of the log flags shared by every subcommand (core/log.h). */
extern const char *const options_log_level_words[];
extern const int options_log_level_values[];
extern const char *const options_log_format_words[];
extern const int options_log_format_values[];

/* Entries every Kafka subcommand shares; T is its settings struct. */
#define OPTIONS_ENTRY_BROKERS(T, f)                                            \
    {                                                                          \
        .name = "brokers", .short_name = 'b', .type = OPTIONS_STRING,          \
        .offset = offsetof(T, f), .flags = OPTIONS_REQUIRED, .arg = "LIST",    \
        .help = "bootstrap servers host:port,..."                              \
    }
#define OPTIONS_ENTRY_PROPERTY(T, f)                                           \
    {                                                                          \
        .name = "property", .short_name = 'X', .type = OPTIONS_KAFKA,          \
        .offset = offsetof(T, f), .arg = "KEY=VALUE",                          \
        .help = "librdkafka property, repeatable (as kcat), e.g.\n"            \
                "-X security.protocol=SASL_SSL"                                \
    }
#define OPTIONS_ENTRY_LOG_LEVEL(T, f, letter)                                  \
    {                                                                          \
        .name = "log-level", .short_name = (letter), .type = OPTIONS_ENUM,     \
        .offset = offsetof(T, f), .arg = "LEVEL",                              \
        .words = options_log_level_words, .values = options_log_level_values,  \
        .help = "log level"                                                    \
    }

#endif
