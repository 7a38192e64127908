#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

/* ---- memory ---- */

static void out_of_memory(void)
{
    fputs("\n<!> Error: Out of memory\n", stderr);
    exit(1);
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory();
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        out_of_memory();
    return p;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    strbuf b;
    va_list ap;
    sb_init(&b);
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    return sb_take(&b);
}

/* ---- strbuf ---- */

void sb_init(strbuf *b)
{
    b->s = NULL;
    b->len = b->cap = 0;
}

void sb_free(strbuf *b)
{
    free(b->s);
    sb_init(b);
}

void sb_clear(strbuf *b)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

static void sb_reserve(strbuf *b, size_t extra)
{
    if (b->len + extra + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (b->len + extra + 1 > cap)
            cap *= 2;
        b->s = xrealloc(b->s, cap);
        b->cap = cap;
    }
}

void sb_putc(strbuf *b, char c)
{
    sb_reserve(b, 1);
    b->s[b->len++] = c;
    b->s[b->len] = '\0';
}

void sb_appendn(strbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void sb_append(strbuf *b, const char *s)
{
    sb_appendn(b, s, strlen(s));
}

void sb_vprintf(strbuf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return;
    sb_reserve(b, (size_t)n);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void sb_printf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(b, fmt, ap);
    va_end(ap);
}

char *sb_take(strbuf *b)
{
    char *s = b->s ? b->s : xstrdup("");
    sb_init(b);
    return s;
}

/* ---- strings ---- */

char *str_trim(char *s)
{
    char *e;
    while (*s && isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int str_starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int str_ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

int is_identifier(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    return 1;
}

int str_is_quoted(const char *s)
{
    size_t n = strlen(s), i;
    if (n < 2 || s[0] != '"' || s[n - 1] != '"')
        return 0;
    /* the closing quote must not be escaped and must be the only unescaped one */
    for (i = 1; i < n - 1; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return 0;
    }
    return i == n - 1;
}

char *str_unquote(const char *s)
{
    strbuf b;
    size_t n = strlen(s), i;
    if (!str_is_quoted(s))
        return xstrdup(s);
    sb_init(&b);
    sb_append(&b, "");
    for (i = 1; i < n - 1; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n - 1) {
            c = s[++i];
            switch (c) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            default: break;
            }
        }
        sb_putc(&b, c);
    }
    return sb_take(&b);
}

void sb_append_quoted_if_needed(strbuf *b, const char *s)
{
    const char *p;
    int need = (*s == '\0');
    for (p = s; *p && !need; p++)
        if (isspace((unsigned char)*p) || *p == '"' || *p == '\\' || (unsigned char)*p < 32)
            need = 1;
    if (!need) {
        sb_append(b, s);
        return;
    }
    sb_putc(b, '"');
    for (p = s; *p; p++) {
        switch (*p) {
        case '"': sb_append(b, "\\\""); break;
        case '\\': sb_append(b, "\\\\"); break;
        case '\n': sb_append(b, "\\n"); break;
        case '\t': sb_append(b, "\\t"); break;
        case '\r': sb_append(b, "\\r"); break;
        default: sb_putc(b, *p); break;
        }
    }
    sb_putc(b, '"');
}

int parse_double_strict(const char *s, double *out)
{
    char *end;
    double v;
    while (isspace((unsigned char)*s))
        s++;
    if (!*s)
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno == ERANGE)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return -1;
    *out = v;
    return 0;
}

int parse_long_strict(const char *s, long *out)
{
    char *end;
    long v;
    while (isspace((unsigned char)*s))
        s++;
    if (!*s)
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (end == s || errno == ERANGE)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return -1;
    *out = v;
    return 0;
}

int parse_bool(const char *s, int *out)
{
    char *u = str_unquote(s);
    int rc = 0;
    if (!strcmp(u, "true") || !strcmp(u, "1") || !strcmp(u, "yes") || !strcmp(u, "on"))
        *out = 1;
    else if (!strcmp(u, "false") || !strcmp(u, "0") || !strcmp(u, "no") || !strcmp(u, "off"))
        *out = 0;
    else
        rc = -1;
    free(u);
    return rc;
}

/* ---- quantities ---- */

const unit_def TIME_UNITS[] = {
    {"s", 1.0},      {"ms", 1e-3},  {"us", 1e-6},   {"ns", 1e-9}, {"ps", 1e-12},
    {"min", 60.0},   {"h", 3600.0}, {"d", 86400.0}, {NULL, 0},
};
const unit_def BYTE_UNITS[] = {
    {"B", 1.0},
    {"KiB", 1024.0},
    {"MiB", 1024.0 * 1024},
    {"GiB", 1024.0 * 1024 * 1024},
    {"TiB", 1024.0 * 1024 * 1024 * 1024},
    {"kB", 1e3},
    {"KB", 1e3},
    {"MB", 1e6},
    {"GB", 1e9},
    {"TB", 1e12},
    {NULL, 0},
};
const unit_def BITRATE_UNITS[] = {
    {"bps", 1.0}, {"kbps", 1e3}, {"Mbps", 1e6}, {"Gbps", 1e9}, {NULL, 0},
};
const unit_def BIT_UNITS[] = {
    {"b", 1.0}, {"kb", 1e3}, {"Kib", 1024.0}, {"B", 8.0}, {"KiB", 8192.0}, {"kB", 8e3}, {NULL, 0},
};
const unit_def DISTANCE_UNITS[] = {
    {"m", 1.0}, {"km", 1e3}, {"cm", 1e-2}, {"mm", 1e-3}, {NULL, 0},
};

int parse_quantity(const char *s, const unit_def *units, double plain_mult, double *out)
{
    char *end;
    double v;
    const unit_def *u;
    char unit[16];
    size_t n = 0;

    while (isspace((unsigned char)*s))
        s++;
    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno == ERANGE)
        return -1;
    /* strtod accepts "inf"/"nan" and hex; that is fine for our purposes */
    while (isspace((unsigned char)*end))
        end++;
    while (*end && !isspace((unsigned char)*end) && n < sizeof(unit) - 1)
        unit[n++] = *end++;
    unit[n] = '\0';
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return -1;
    if (n == 0) {
        if (plain_mult <= 0)
            return -1;
        *out = v * plain_mult;
        return 0;
    }
    for (u = units; u->name; u++) {
        if (!strcmp(u->name, unit)) {
            *out = v * u->mult;
            return 0;
        }
    }
    return -1;
}

/* ---- simulation time ---- */

simtime_t simtime_from_double(double seconds)
{
    double ps = seconds * 1e12;
    if (ps >= 9.2e18)
        return SIMTIME_MAX;
    if (ps <= -9.2e18)
        return -SIMTIME_MAX;
    return (simtime_t)llround(ps);
}

double simtime_to_double(simtime_t t)
{
    return (double)(t / SIMTIME_PER_SEC) + (double)(t % SIMTIME_PER_SEC) / 1e12;
}

int parse_simtime(const char *s, simtime_t *out)
{
    double v;
    if (parse_quantity(s, TIME_UNITS, 1.0, &v) != 0 || !isfinite(v) || v < 0)
        return -1;
    *out = simtime_from_double(v);
    return 0;
}

int fmt_u64(char *buf, uint64_t v)
{
    char tmp[24];
    int n = 0, i;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}

int fmt_i64(char *buf, int64_t v)
{
    if (v < 0) {
        buf[0] = '-';
        return 1 + fmt_u64(buf + 1, (uint64_t)0 - (uint64_t)v);
    }
    return fmt_u64(buf, (uint64_t)v);
}

int simtime_fmt(char *buf, simtime_t t)
{
    int n = 0, i, digits;
    uint64_t a, ps;
    if (t < 0) {
        buf[n++] = '-';
        a = (uint64_t)0 - (uint64_t)t;
    } else {
        a = (uint64_t)t;
    }
    n += fmt_u64(buf + n, a / (uint64_t)SIMTIME_PER_SEC);
    ps = a % (uint64_t)SIMTIME_PER_SEC;
    if (ps) {
        digits = 12;
        while (ps % 10 == 0) {
            ps /= 10;
            digits--;
        }
        buf[n++] = '.';
        for (i = digits - 1; i >= 0; i--) {
            buf[n + i] = (char)('0' + ps % 10);
            ps /= 10;
        }
        n += digits;
    }
    buf[n] = '\0';
    return n;
}

const char *simtime_str(simtime_t t, char buf[32])
{
    simtime_fmt(buf, t);
    return buf;
}

/* ---- time ---- */

double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sleep_seconds(double s)
{
    struct timespec ts, rem;
    if (s <= 0)
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &rem) != 0 && errno == EINTR)
        ts = rem;
}

/* ---- files ---- */

int mkdir_p(const char *path)
{
    char *p = xstrdup(path), *q;
    struct stat st;
    int rc = 0;
    for (q = p + 1; *q; q++) {
        if (*q == '/') {
            *q = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                rc = -1;
                break;
            }
            *q = '/';
        }
    }
    if (rc == 0 && mkdir(p, 0777) != 0 && errno != EEXIST)
        rc = -1;
    if (rc == 0 && (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)))
        rc = -1;
    free(p);
    return rc;
}

char *path_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    return xstrndup(path, (size_t)(slash - path));
}

int path_is_absolute(const char *path)
{
    return path[0] == '/';
}

char *path_join(const char *dir, const char *name)
{
    if (path_is_absolute(name) || !strcmp(dir, "."))
        return xstrdup(name);
    if (str_ends_with(dir, "/"))
        return xasprintf("%s%s", dir, name);
    return xasprintf("%s/%s", dir, name);
}

/* ---- fatal ---- */

void fatal(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("\n<!> Error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    exit(1);
}
