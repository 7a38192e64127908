/*
 * util.h -- small helpers shared by all parts of the aloha example:
 * checked allocation, a growable string buffer, quantity/unit parsing,
 * simulation time (int64 picoseconds, like OMNeT++'s default SimTime
 * resolution) and OMNeT++-style quoting.
 */
#ifndef ALOHA_UTIL_H
#define ALOHA_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))
#else
#define PRINTF_LIKE(f, a)
#define NORETURN
#endif

/* ---- memory ---- */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* ---- growable string ---- */
typedef struct {
    char *s;
    size_t len, cap;
} strbuf;

void sb_init(strbuf *b);
void sb_free(strbuf *b);
void sb_clear(strbuf *b);
void sb_putc(strbuf *b, char c);
void sb_append(strbuf *b, const char *s);
void sb_appendn(strbuf *b, const char *s, size_t n);
void sb_printf(strbuf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
void sb_vprintf(strbuf *b, const char *fmt, va_list ap);
/* Detaches the string (caller frees); b is reset. */
char *sb_take(strbuf *b);

/* ---- strings ---- */
char *str_trim(char *s);                    /* in place, returns start */
int str_starts_with(const char *s, const char *prefix);
int str_ends_with(const char *s, const char *suffix);
int is_identifier(const char *s, size_t n); /* [A-Za-z_][A-Za-z0-9_]* */
/* Removes one level of "..." quoting with backslash escapes if s is a
 * quoted string literal; otherwise returns a copy. */
char *str_unquote(const char *s);
int str_is_quoted(const char *s);
/* Appends s to b, quoted the way OMNeT++ writes result-file fields:
 * in double quotes with escapes when it is empty or contains blanks,
 * quotes, backslashes or control characters; verbatim otherwise. */
void sb_append_quoted_if_needed(strbuf *b, const char *s);
/* Parses a whole string as a double (no trailing garbage). */
int parse_double_strict(const char *s, double *out);
int parse_long_strict(const char *s, long *out);
int parse_bool(const char *s, int *out);

/* ---- quantities with units ----
 * Parses "<number><unit>" (blanks allowed between) where unit is one of
 * the names in `units` (each with a multiplier); an empty unit means the
 * plain number is accepted with multiplier `plain_mult` (if plain_mult>0).
 */
typedef struct {
    const char *name;
    double mult;
} unit_def;

int parse_quantity(const char *s, const unit_def *units, double plain_mult, double *out);
extern const unit_def TIME_UNITS[];     /* s ms us ns ps min h d */
extern const unit_def BYTE_UNITS[];     /* B KiB MiB GiB TiB kB MB GB TB */
extern const unit_def BITRATE_UNITS[];  /* bps kbps Mbps Gbps */
extern const unit_def BIT_UNITS[];      /* b B(=8b) kb Kib ... */
extern const unit_def DISTANCE_UNITS[]; /* m km cm mm */

/* ---- simulation time: int64 picoseconds ---- */
typedef int64_t simtime_t;
#define SIMTIME_PER_SEC ((simtime_t)1000000000000LL)
#define SIMTIME_MAX INT64_MAX

int parse_simtime(const char *s, simtime_t *out);   /* "10min", "1.5s", "600" */
simtime_t simtime_from_double(double seconds);      /* rounds to nearest ps */
double simtime_to_double(simtime_t t);
/* Exact decimal, trailing zeros trimmed, no unit: "600", "1.8722973". */
const char *simtime_str(simtime_t t, char buf[32]);
/* Same into buf (at least 32 bytes); returns the length. */
int simtime_fmt(char *buf, simtime_t t);
/* Decimal integers into buf (at least 24 bytes); return the length. */
int fmt_u64(char *buf, uint64_t v);
int fmt_i64(char *buf, int64_t v);

/* ---- time ---- */
double wall_seconds(void);  /* monotonic */
double cpu_seconds(void);   /* process CPU time */
void sleep_seconds(double s);

/* ---- files ---- */
int mkdir_p(const char *path); /* 0 on success */
char *path_dirname(const char *path);
char *path_join(const char *dir, const char *name);
int path_is_absolute(const char *path);

/* ---- fatal errors before/outside runs: "\n<!> Error: ...", exit 1 ---- */
NORETURN void fatal(const char *fmt, ...) PRINTF_LIKE(1, 2);

#endif
