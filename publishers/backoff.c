/*
 * backoff.c: full-jitter exponential backoff and Retry-After parsing (see
 * backoff.h).
 *
 * Data flow: the publisher calls backoff_delay_ms() after a failed attempt
 * with its own xorshift64 seed, and backoff_parse_retry_after() on the
 * Retry-After header of a 429 or 503 answer; a server-given delay replaces
 * the jittered one.
 *
 * Retry-After (RFC 9110 section 10.2.3) is delay-seconds (1*DIGIT) or an
 * HTTP-date (RFC 9110 section 5.6.7): the preferred IMF-fixdate
 * ("Sun, 06 Nov 1994 08:49:37 GMT") and the two obsolete forms recipients
 * must still accept, RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") and ANSI C
 * asctime() ("Sun Nov  6 08:49:37 1994"). Dates are parsed by hand rather
 * than with strptime(), whose month and day names follow the locale.
 *
 * Threads: pure functions, any thread.
 */
#include "publishers/backoff.h"

#include <stdbool.h>
#include <string.h>

/* Seed used when the caller hands in zero (xorshift never leaves 0). */
#define BACKOFF_SEED_FALLBACK 0x9e3779b97f4a7c15ULL

/* xorshift64 (Marsaglia 2003, shifts 13, 7, 17). */
static uint64_t backoff_xorshift64(uint64_t *seed)
{
    uint64_t x = *seed;

    if (x == 0)
        x = BACKOFF_SEED_FALLBACK;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *seed = x;
    return x;
}

int64_t backoff_delay_ms(int attempt, int initial_ms, int max_ms,
                         uint64_t *seed)
{
    int64_t cap;
    uint64_t local_seed = BACKOFF_SEED_FALLBACK;
    int shift;

    if (initial_ms <= 0 || max_ms <= 0)
        return 0;
    if (attempt < 1)
        attempt = 1;
    if (seed == NULL)
        seed = &local_seed;
    /*
     * initial_ms * 2^(attempt-1), stopping as soon as it passes max_ms so
     * that a large attempt number cannot overflow.
     */
    cap = initial_ms;
    for (shift = 1; shift < attempt && cap < max_ms; shift++)
        cap *= 2;
    if (cap > max_ms)
        cap = max_ms;
    /*
     * Uniform in [0, cap]; the modulo bias of a 64-bit draw over at most
     * 2^31 values is below 2^-32 and does not matter for a backoff.
     */
    return (int64_t)(backoff_xorshift64(seed) % (uint64_t)(cap + 1));
}

static bool backoff_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Reads exactly n digits at *p into *out and advances *p. Returns false
 * when fewer than n digits are there.
 */
static bool backoff_digits(const char **p, int n, int *out)
{
    int v = 0;
    int i;

    for (i = 0; i < n; i++) {
        if (!backoff_is_digit((*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* Matches the literal lit at *p (case-sensitive) and advances *p. */
static bool backoff_lit(const char **p, const char *lit)
{
    size_t n = strlen(lit);

    if (strncmp(*p, lit, n) != 0)
        return false;
    *p += n;
    return true;
}

static const char *const backoff_months[12] = {"Jan", "Feb", "Mar", "Apr",
                                               "May", "Jun", "Jul", "Aug",
                                               "Sep", "Oct", "Nov", "Dec"};
static const char *const backoff_days_short[7] = {"Mon", "Tue", "Wed", "Thu",
                                                  "Fri", "Sat", "Sun"};
static const char *const backoff_days_long[7] = {
    "Monday", "Tuesday",  "Wednesday", "Thursday",
    "Friday", "Saturday", "Sunday"};

/* Matches a three-letter month name; *month is 1..12. */
static bool backoff_month(const char **p, int *month)
{
    int i;

    for (i = 0; i < 12; i++) {
        if (backoff_lit(p, backoff_months[i])) {
            *month = i + 1;
            return true;
        }
    }
    return false;
}

/* Matches one of the day names of table (7 entries). */
static bool backoff_day_name(const char **p, const char *const *table)
{
    int i;

    for (i = 0; i < 7; i++) {
        if (backoff_lit(p, table[i]))
            return true;
    }
    return false;
}

/* "HH:MM:SS" (time-of-day of RFC 9110). */
static bool backoff_time_of_day(const char **p, int *h, int *m, int *s)
{
    return backoff_digits(p, 2, h) && backoff_lit(p, ":") &&
           backoff_digits(p, 2, m) && backoff_lit(p, ":") &&
           backoff_digits(p, 2, s);
}

static bool backoff_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/*
 * Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), so no timegm() or TZ setting is needed.
 */
static int64_t backoff_days_from_civil(int64_t y, int m, int d)
{
    int64_t era;
    int64_t yoe;
    int64_t doy;
    int64_t doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Checks ranges and converts to seconds since the epoch (UTC). */
static bool backoff_make_time(int64_t year, int month, int day, int hour,
                              int min, int sec, int64_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    int dim;

    if (month < 1 || month > 12 || day < 1 || hour > 23 || min > 59 || sec > 60)
        return false;
    dim = mdays[month - 1] + (month == 2 && backoff_leap(year) ? 1 : 0);
    if (day > dim)
        return false;
    /* A leap second (60) is read as the next second. */
    *out = backoff_days_from_civil(year, month, day) * 86400 +
           (int64_t)hour * 3600 + (int64_t)min * 60 + sec;
    return true;
}

/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT". */
static bool backoff_parse_imf(const char *p, int64_t *out)
{
    int day, month, year, h, m, s;

    if (!backoff_day_name(&p, backoff_days_short) || !backoff_lit(&p, ", ") ||
        !backoff_digits(&p, 2, &day) || !backoff_lit(&p, " ") ||
        !backoff_month(&p, &month) || !backoff_lit(&p, " ") ||
        !backoff_digits(&p, 4, &year) || !backoff_lit(&p, " ") ||
        !backoff_time_of_day(&p, &h, &m, &s) || !backoff_lit(&p, " GMT") ||
        *p != '\0')
        return false;
    return backoff_make_time(year, month, day, h, m, s, out);
}

/*
 * RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT". RFC 9110 section 5.6.7: a
 * two-digit year that appears more than 50 years in the future is the
 * most recent past year with the same last two digits.
 */
static bool backoff_parse_rfc850(const char *p, time_t now, int64_t *out)
{
    int day, month, yy, h, m, s;
    int64_t now_year;
    int64_t year;
    int64_t days;

    if (!backoff_day_name(&p, backoff_days_long) || !backoff_lit(&p, ", ") ||
        !backoff_digits(&p, 2, &day) || !backoff_lit(&p, "-") ||
        !backoff_month(&p, &month) || !backoff_lit(&p, "-") ||
        !backoff_digits(&p, 2, &yy) || !backoff_lit(&p, " ") ||
        !backoff_time_of_day(&p, &h, &m, &s) || !backoff_lit(&p, " GMT") ||
        *p != '\0')
        return false;
    /* The current year from now, by inverting days_from_civil roughly. */
    days = (int64_t)now / 86400;
    now_year = 1970 + days / 365;
    while (backoff_days_from_civil(now_year, 1, 1) > days)
        now_year--;
    while (backoff_days_from_civil(now_year + 1, 1, 1) <= days)
        now_year++;
    year = now_year - now_year % 100 + yy;
    if (year > now_year + 50)
        year -= 100;
    return backoff_make_time(year, month, day, h, m, s, out);
}

/* asctime: "Sun Nov  6 08:49:37 1994" (day padded with a space). */
static bool backoff_parse_asctime(const char *p, int64_t *out)
{
    int day, month, year, h, m, s;

    if (!backoff_day_name(&p, backoff_days_short) || !backoff_lit(&p, " ") ||
        !backoff_month(&p, &month) || !backoff_lit(&p, " "))
        return false;
    if (*p == ' ') {
        p++;
        if (!backoff_digits(&p, 1, &day))
            return false;
    } else if (!backoff_digits(&p, 2, &day)) {
        return false;
    }
    if (!backoff_lit(&p, " ") || !backoff_time_of_day(&p, &h, &m, &s) ||
        !backoff_lit(&p, " ") || !backoff_digits(&p, 4, &year) || *p != '\0')
        return false;
    return backoff_make_time(year, month, day, h, m, s, out);
}

int64_t backoff_parse_retry_after(const char *value, time_t now)
{
    char tmp[64];
    const char *p;
    size_t len;
    int64_t when;
    int64_t delay_s;

    if (value == NULL)
        return -1;
    /* Field values may carry optional whitespace around them. */
    while (*value == ' ' || *value == '\t')
        value++;
    len = strlen(value);
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= sizeof(tmp))
        return -1;
    memcpy(tmp, value, len);
    tmp[len] = '\0';

    if (backoff_is_digit(tmp[0])) {
        delay_s = 0;
        for (p = tmp; *p != '\0'; p++) {
            if (!backoff_is_digit(*p))
                return -1;
            /* Stop counting past the cap: the value is capped anyway. */
            if (delay_s <= BACKOFF_RETRY_AFTER_CAP_MS / 1000)
                delay_s = delay_s * 10 + (*p - '0');
        }
        if (delay_s * 1000 > BACKOFF_RETRY_AFTER_CAP_MS)
            return BACKOFF_RETRY_AFTER_CAP_MS;
        return delay_s * 1000;
    }

    if (!backoff_parse_imf(tmp, &when) &&
        !backoff_parse_rfc850(tmp, now, &when) &&
        !backoff_parse_asctime(tmp, &when))
        return -1;
    if (when <= (int64_t)now)
        return 0;
    if (when - (int64_t)now > BACKOFF_RETRY_AFTER_CAP_MS / 1000)
        return BACKOFF_RETRY_AFTER_CAP_MS;
    return (when - (int64_t)now) * 1000;
}
