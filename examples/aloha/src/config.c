#include "config.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* Options understood (or at least accepted) by this program. The ones
 * marked "accepted" exist in OMNeT++ and are tolerated so that ini files
 * and command lines written for OMNeT++ do not fail, but they have no
 * effect here. */
static const char *const KNOWN_OPTIONS[] = {
    /* implemented */
    "network", "sim-time-limit", "cpu-time-limit", "real-time-limit", "repeat", "seed-set",
    "description", "extends", "result-dir", "output-scalar-file", "output-vector-file",
    "cmdenv-output-file", "cmdenv-redirect-output", "cmdenv-stop-batch-on-error",
    "cmdenv-status-frequency", "cmdenv-performance-display", "cmdenv-express-mode",
    "fingerprint", "fingerprint-ingredients", "experiment-label", "measurement-label",
    "replication-label", "vector-recording", "scalar-recording",
    /* accepted */
    "user-interface", "record-eventlog", "cmdenv-interactive", "cmdenv-event-banners",
    "cmdenv-autoflush", "cmdenv-log-prefix", "image-path", "ned-path", "num-rngs",
    "debug-on-errors", "print-undisposed", "warnings", "parallel-simulation",
    "output-scalar-file-append", "output-vector-precision", "output-scalar-precision",
    "check-signals", "debug-statistics-recording", "simtime-resolution", "abstract",
    NULL};

static const char *const PEROBJECT_OPTIONS[] = {
    "vector-recording", "scalar-recording", "vector-recording-intervals",
    "result-recording-modes", "statistic-recording", "bin-recording", "param-recording",
    "cmdenv-log-level", "vector-record-eventnumbers", "typename", NULL};

int config_is_known_option(const char *key)
{
    int i;
    for (i = 0; KNOWN_OPTIONS[i]; i++)
        if (!strcmp(KNOWN_OPTIONS[i], key))
            return 1;
    return 0;
}

const char *config_perobject_option(const char *key)
{
    const char *dot = strrchr(key, '.');
    const char *opt;
    int i;
    if (!dot)
        return NULL;
    opt = dot + 1;
    if (str_starts_with(opt, "rng-"))
        return opt;
    for (i = 0; PEROBJECT_OPTIONS[i]; i++)
        if (!strcmp(PEROBJECT_OPTIONS[i], opt))
            return opt;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* pattern matching                                                    */

static int match_range(const char *p, const char *pend, long v)
{
    /* p..pend is "N..M", "N..", "..M" or "N" */
    const char *dots = NULL, *q;
    long lo = LONG_MIN, hi = LONG_MAX;
    for (q = p; q + 1 < pend; q++)
        if (q[0] == '.' && q[1] == '.') {
            dots = q;
            break;
        }
    if (dots) {
        if (dots > p)
            lo = strtol(p, NULL, 10);
        if (dots + 2 < pend)
            hi = strtol(dots + 2, NULL, 10);
    } else {
        lo = hi = strtol(p, NULL, 10);
    }
    return v >= lo && v <= hi;
}

static int is_range_spec(const char *p, const char *pend)
{
    const char *q;
    int dots = 0, digits = 0;
    for (q = p; q < pend; q++) {
        if (isdigit((unsigned char)*q))
            digits++;
        else if (*q == '.')
            dots++;
        else
            return 0;
    }
    return digits > 0 && (dots == 0 || dots == 2);
}

int pattern_match(const char *p, const char *s)
{
    while (*p) {
        if (p[0] == '*' && p[1] == '*') {
            p += 2;
            while (*p == '*')
                p++;
            if (!*p)
                return 1;
            for (;; s++) {
                if (pattern_match(p, s))
                    return 1;
                if (!*s)
                    return 0;
            }
        } else if (*p == '*') {
            p++;
            for (;; s++) {
                if (pattern_match(p, s))
                    return 1;
                if (!*s || *s == '.')
                    return 0;
            }
        } else if (*p == '?') {
            if (!*s || *s == '.')
                return 0;
            p++;
            s++;
        } else if ((*p == '{' || *p == '[') && strchr(p, *p == '{' ? '}' : ']')) {
            char close = *p == '{' ? '}' : ']';
            const char *pend = strchr(p, close);
            if (is_range_spec(p + 1, pend)) {
                char *end;
                long v;
                if (*p == '[') {
                    if (*s != '[')
                        return 0;
                    s++;
                }
                if (!isdigit((unsigned char)*s))
                    return 0;
                v = strtol(s, &end, 10);
                if (!match_range(p + 1, pend, v))
                    return 0;
                s = end;
                if (*p == '[') {
                    if (*s != ']')
                        return 0;
                    s++;
                }
                p = pend + 1;
            } else {
                if (*s != *p)
                    return 0;
                p++;
                s++;
            }
        } else {
            if (*p == '\\' && p[1])
                p++;
            if (*s != *p)
                return 0;
            p++;
            s++;
        }
    }
    return *s == '\0';
}

/* ------------------------------------------------------------------ */
/* ${...} parsing                                                      */

/* p points just after "${"; returns the matching '}' or NULL. */
static const char *find_close(const char *p)
{
    int depth = 0;
    for (; *p; p++) {
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (!*p)
                return NULL;
        } else if (*p == '{') {
            depth++;
        } else if (*p == '}') {
            if (depth == 0)
                return p;
            depth--;
        }
    }
    return NULL;
}

enum { D_REF, D_NAMED, D_UNNAMED };

typedef struct {
    int kind;
    char *name;      /* D_REF, D_NAMED */
    char *list;      /* D_NAMED, D_UNNAMED: the value list text */
    char *parallel;  /* after '!' */
} dollar_t;

static void dollar_free(dollar_t *d)
{
    free(d->name);
    free(d->list);
    free(d->parallel);
}

/* Finds ch at top level (outside quotes and brackets). */
static const char *find_toplevel(const char *s, char ch)
{
    int depth = 0;
    for (; *s; s++) {
        if (*s == '"') {
            for (s++; *s && *s != '"'; s++)
                if (*s == '\\' && s[1])
                    s++;
            if (!*s)
                return NULL;
        } else if (*s == '(' || *s == '[' || *s == '{') {
            depth++;
        } else if (*s == ')' || *s == ']' || *s == '}') {
            depth--;
        } else if (*s == ch && depth == 0) {
            return s;
        }
    }
    return NULL;
}

static int parse_dollar(const char *body0, dollar_t *d, char **err)
{
    char *body = xstrdup(body0), *b = str_trim(body), *eq, *bang;
    memset(d, 0, sizeof *d);
    if (is_identifier(b, strlen(b))) {
        d->kind = D_REF;
        d->name = xstrdup(b);
        free(body);
        return 0;
    }
    eq = (char *)find_toplevel(b, '=');
    if (eq) {
        char *name;
        *eq = '\0';
        name = str_trim(b);
        if (!is_identifier(name, strlen(name))) {
            *err = xasprintf("Invalid iteration variable name in '${%s}'", body0);
            free(body);
            return -1;
        }
        d->kind = D_NAMED;
        d->name = xstrdup(name);
        b = eq + 1;
    } else {
        d->kind = D_UNNAMED;
    }
    bang = (char *)find_toplevel(b, '!');
    if (bang) {
        char *par;
        *bang = '\0';
        par = str_trim(bang + 1);
        if (*par == '$')
            par++;
        if (!is_identifier(par, strlen(par))) {
            *err = xasprintf("Invalid parallel iteration '${%s}'", body0);
            free(body);
            dollar_free(d);
            return -1;
        }
        d->parallel = xstrdup(par);
    }
    d->list = xstrdup(str_trim(b));
    free(body);
    return 0;
}

static void add_value(char ***vals, int *n, int *cap, char *v)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        *vals = xrealloc(*vals, (size_t)*cap * sizeof **vals);
    }
    (*vals)[(*n)++] = v;
}

static int expand_range(const char *item, char ***vals, int *n, int *cap, char **err)
{
    char *copy = xstrdup(item), *dots = strstr(copy, ".."), *stepp;
    double from, to, step = 1.0;
    long i, count;
    *dots = '\0';
    stepp = strstr(dots + 2, "step");
    if (stepp) {
        *stepp = '\0';
        if (parse_double_strict(stepp + 4, &step) != 0 || step == 0) {
            *err = xasprintf("Invalid step in iteration range '%s'", item);
            free(copy);
            return -1;
        }
    }
    if (parse_double_strict(copy, &from) != 0 || parse_double_strict(dots + 2, &to) != 0) {
        *err = xasprintf("Invalid iteration range '%s' (numbers expected)", item);
        free(copy);
        return -1;
    }
    free(copy);
    count = (long)floor((to - from) / step + 1e-9) + 1;
    if (count > 1000000) {
        *err = xasprintf("Iteration range '%s' has too many values", item);
        return -1;
    }
    for (i = 0; i < count; i++) {
        double v = from + (double)i * step;
        char buf[64];
        if (fabs(v) < 1e-12 * fabs(step))
            v = 0;
        snprintf(buf, sizeof buf, "%.12g", v);
        add_value(vals, n, cap, xstrdup(buf));
    }
    return 0;
}

static int expand_values(const char *list, char ***vals_out, int *n_out, char **err)
{
    char **vals = NULL;
    int n = 0, cap = 0;
    const char *p = list;
    for (;;) {
        const char *comma = find_toplevel(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *item = xstrndup(p, len), *t = str_trim(item);
        if (!*t) {
            *err = xasprintf("Empty value in iteration '${%s}'", list);
            free(item);
            goto fail;
        }
        if (t[0] != '"' && strstr(t, "..")) {
            if (expand_range(t, &vals, &n, &cap, err) != 0) {
                free(item);
                goto fail;
            }
        } else {
            add_value(&vals, &n, &cap, xstrdup(t));
        }
        free(item);
        if (!comma)
            break;
        p = comma + 1;
    }
    *vals_out = vals;
    *n_out = n;
    return 0;
fail:
    while (n > 0)
        free(vals[--n]);
    free(vals);
    return -1;
}

/* ------------------------------------------------------------------ */
/* config                                                              */

static int chain_contains(config_t *cfg, ini_section *s)
{
    int i;
    for (i = 0; i < cfg->nchain; i++)
        if (cfg->chain[i] == s)
            return 1;
    return 0;
}

static int build_chain(config_t *cfg, ini_section *s, int depth, char **err)
{
    int i;
    if (depth > 32) {
        *err = xasprintf("Cycle in section inheritance (extends) at [Config %s]", s->name);
        return -1;
    }
    if (chain_contains(cfg, s))
        return 0;
    cfg->chain = xrealloc(cfg->chain, (size_t)(cfg->nchain + 1) * sizeof *cfg->chain);
    cfg->chain[cfg->nchain++] = s;
    for (i = 0; i < s->n; i++) {
        if (!strcmp(s->entries[i].key, "extends")) {
            char *list = str_unquote(s->entries[i].value), *p = list, *tok;
            char *save = NULL;
            for (tok = strtok_r(p, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *name = str_trim(tok);
                ini_section *parent;
                if (str_starts_with(name, "Config "))
                    name = str_trim(name + 7);
                if (!strcmp(name, "General"))
                    continue;
                parent = ini_find_section(cfg->ini, name);
                if (!parent) {
                    *err = xasprintf("No such config: %s (in 'extends' of [Config %s])", name,
                                     s->name);
                    free(list);
                    return -1;
                }
                if (build_chain(cfg, parent, depth + 1, err) != 0) {
                    free(list);
                    return -1;
                }
            }
            free(list);
        }
    }
    return 0;
}

static int find_var(const config_t *cfg, const char *name)
{
    int i;
    for (i = 0; i < cfg->nvars; i++)
        if (!strcmp(cfg->vars[i].name, name))
            return i;
    return -1;
}

static int find_unnamed_var(const config_t *cfg, const char *body)
{
    int i;
    for (i = 0; i < cfg->nvars; i++)
        if (cfg->vars[i].body && !strcmp(cfg->vars[i].body, body))
            return i;
    return -1;
}

static int scan_vars(config_t *cfg, const ini_entry *e, char **err)
{
    const char *p = e->value;
    int unnamed_count = 0, i;
    for (i = 0; i < cfg->nvars; i++)
        if (cfg->vars[i].body)
            unnamed_count++;
    while ((p = strstr(p, "${")) != NULL) {
        const char *close = find_close(p + 2);
        char *body;
        dollar_t d;
        if (!close) {
            *err = xasprintf("%s:%d: Missing '}' in '%s'", e->file, e->line, e->value);
            return -1;
        }
        body = xstrndup(p + 2, (size_t)(close - (p + 2)));
        if (parse_dollar(body, &d, err) != 0) {
            char *m = *err;
            *err = xasprintf("%s:%d: %s", e->file, e->line, m);
            free(m);
            free(body);
            return -1;
        }
        if (d.kind != D_REF) {
            itervar_t v;
            int existing = d.kind == D_NAMED ? find_var(cfg, d.name) : find_unnamed_var(cfg, body);
            if (existing >= 0) {
                if (d.kind == D_NAMED) {
                    *err = xasprintf("%s:%d: Redefinition of iteration variable $%s", e->file,
                                     e->line, d.name);
                    dollar_free(&d);
                    free(body);
                    return -1;
                }
            } else {
                memset(&v, 0, sizeof v);
                if (expand_values(d.list, &v.values, &v.nvalues, err) != 0) {
                    char *m = *err;
                    *err = xasprintf("%s:%d: %s", e->file, e->line, m);
                    free(m);
                    dollar_free(&d);
                    free(body);
                    return -1;
                }
                if (d.kind == D_NAMED) {
                    v.name = xstrdup(d.name);
                } else {
                    v.name = xasprintf("%d", unnamed_count++);
                    v.body = xstrdup(body);
                }
                v.parallel = d.parallel ? xstrdup(d.parallel) : NULL;
                v.parallel_to = -1;
                cfg->vars = xrealloc(cfg->vars, (size_t)(cfg->nvars + 1) * sizeof *cfg->vars);
                cfg->vars[cfg->nvars++] = v;
            }
        }
        dollar_free(&d);
        free(body);
        p = close + 1;
    }
    return 0;
}

static int validate_entry(const ini_entry *e, char **err)
{
    if (strchr(e->key, '.') || strchr(e->key, '*')) {
        const char *last = strrchr(e->key, '.');
        const char *opt = last ? last + 1 : e->key;
        if (strchr(opt, '-') && !config_perobject_option(e->key)) {
            *err = xasprintf("%s:%d: Unknown per-object configuration option '%s'", e->file,
                             e->line, opt);
            return -1;
        }
        return 0;
    }
    if (!config_is_known_option(e->key)) {
        *err = xasprintf("%s:%d: Unknown configuration option: %s", e->file, e->line, e->key);
        return -1;
    }
    return 0;
}

config_t *config_open(ini_file *ini, const char *name, const setting_t *cmdline, int ncmdline,
                      char **err)
{
    config_t *cfg = xcalloc(1, sizeof *cfg);
    ini_section *sec = ini_find_section(ini, name), *general = ini_find_section(ini, "General");
    const char *repeat_raw = NULL;
    long repeat = 1;
    long long nruns;
    int i, j;

    cfg->ini = ini;
    cfg->name = xstrdup(name);
    cfg->cmdline = xcalloc((size_t)ncmdline + 1, sizeof *cfg->cmdline);
    for (i = 0; i < ncmdline; i++) {
        cfg->cmdline[i].key = xstrdup(cmdline[i].key);
        cfg->cmdline[i].value = xstrdup(cmdline[i].value);
    }
    cfg->ncmdline = ncmdline;

    if (!sec && strcmp(name, "General") != 0) {
        *err = xasprintf("No such config: %s", name);
        goto fail;
    }
    if (sec && build_chain(cfg, sec, 0, err) != 0)
        goto fail;
    if (general && !chain_contains(cfg, general)) {
        cfg->chain = xrealloc(cfg->chain, (size_t)(cfg->nchain + 1) * sizeof *cfg->chain);
        cfg->chain[cfg->nchain++] = general;
    }
    for (i = 0; i < cfg->nchain; i++)
        for (j = 0; j < cfg->chain[i]->n; j++)
            if (validate_entry(&cfg->chain[i]->entries[j], err) != 0)
                goto fail;

    /* iteration variables, in order of appearance */
    for (i = 0; i < cfg->nchain; i++)
        for (j = 0; j < cfg->chain[i]->n; j++)
            if (scan_vars(cfg, &cfg->chain[i]->entries[j], err) != 0)
                goto fail;
    for (i = 0; i < cfg->nvars; i++) {
        itervar_t *v = &cfg->vars[i];
        if (v->parallel) {
            v->parallel_to = find_var(cfg, v->parallel);
            if (v->parallel_to < 0 || v->parallel_to == i) {
                *err = xasprintf("Parallel iteration refers to unknown variable $%s", v->parallel);
                goto fail;
            }
            if (cfg->vars[v->parallel_to].nvalues != v->nvalues) {
                *err = xasprintf("Parallel iteration: $%s has %d values but $%s has %d", v->name,
                                 v->nvalues, v->parallel, cfg->vars[v->parallel_to].nvalues);
                goto fail;
            }
        }
    }
    for (i = 0; i < cfg->nvars; i++) {
        /* a parallel variable must eventually refer to a non-parallel one */
        int k = i, steps = 0;
        while (cfg->vars[k].parallel_to >= 0 && steps <= cfg->nvars) {
            k = cfg->vars[k].parallel_to;
            steps++;
        }
        if (steps > cfg->nvars) {
            *err = xasprintf("Cycle in parallel iteration variables ($%s)", cfg->vars[i].name);
            goto fail;
        }
    }

    /* repeat */
    for (i = ncmdline - 1; i >= 0 && !repeat_raw; i--)
        if (!strcmp(cmdline[i].key, "repeat"))
            repeat_raw = cmdline[i].value;
    for (i = 0; i < cfg->nchain && !repeat_raw; i++)
        for (j = 0; j < cfg->chain[i]->n; j++)
            if (!strcmp(cfg->chain[i]->entries[j].key, "repeat")) {
                repeat_raw = cfg->chain[i]->entries[j].value;
                break;
            }
    if (repeat_raw && (parse_long_strict(repeat_raw, &repeat) != 0 || repeat < 1 ||
                       repeat > INT_MAX)) {
        *err = xasprintf("Invalid value for 'repeat': '%s' (positive integer expected)",
                         repeat_raw);
        goto fail;
    }
    cfg->repeat = (int)repeat;
    nruns = repeat;
    for (i = 0; i < cfg->nvars; i++) {
        if (cfg->vars[i].parallel_to < 0)
            nruns *= cfg->vars[i].nvalues;
        if (nruns > INT_MAX) {
            *err = xasprintf("Config %s has too many runs", name);
            goto fail;
        }
    }
    cfg->nruns = (int)nruns;
    return cfg;
fail:
    config_free(cfg);
    return NULL;
}

void config_free(config_t *cfg)
{
    int i, j;
    if (!cfg)
        return;
    for (i = 0; i < cfg->nvars; i++) {
        for (j = 0; j < cfg->vars[i].nvalues; j++)
            free(cfg->vars[i].values[j]);
        free(cfg->vars[i].values);
        free(cfg->vars[i].name);
        free(cfg->vars[i].body);
        free(cfg->vars[i].parallel);
    }
    free(cfg->vars);
    for (i = 0; i < cfg->ncmdline; i++) {
        free(cfg->cmdline[i].key);
        free(cfg->cmdline[i].value);
    }
    free(cfg->cmdline);
    free(cfg->chain);
    free(cfg->name);
    free(cfg);
}

/* ------------------------------------------------------------------ */
/* runs                                                                */

const char *run_var_value(const run_ctx *r, int i)
{
    return r->cfg->vars[i].values[r->validx[i]];
}

/* Makes a value safe for file names: quotes dropped, anything outside
 * [A-Za-z0-9_.+=-] replaced by '_'. */
static void append_sanitized(strbuf *b, const char *s)
{
    char *u = str_unquote(s), *p;
    for (p = u; *p; p++) {
        unsigned char c = (unsigned char)*p;
        sb_putc(b, (isalnum(c) || c == '_' || c == '.' || c == '+' || c == '=' || c == '-') ? (char)c
                                                                                         : '_');
    }
    free(u);
}

void run_ctx_init_light(run_ctx *r, const config_t *cfg, int runnumber)
{
    strbuf vars, varsf, varsd;
    int rem = runnumber, i;
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->runnumber = runnumber;
    r->validx = xcalloc((size_t)cfg->nvars + 1, sizeof *r->validx);
    r->repetition = rem % cfg->repeat;
    rem /= cfg->repeat;
    for (i = cfg->nvars - 1; i >= 0; i--) {
        if (cfg->vars[i].parallel_to >= 0)
            continue;
        r->validx[i] = rem % cfg->vars[i].nvalues;
        rem /= cfg->vars[i].nvalues;
    }
    for (i = 0; i < cfg->nvars; i++) {
        int k = i;
        while (cfg->vars[k].parallel_to >= 0)
            k = cfg->vars[k].parallel_to;
        r->validx[i] = r->validx[k];
    }
    sb_init(&vars);
    sb_init(&varsf);
    sb_init(&varsd);
    sb_append(&vars, "");
    sb_append(&varsf, "");
    sb_append(&varsd, "");
    for (i = 0; i < cfg->nvars; i++) {
        const char *v = run_var_value(r, i);
        sb_printf(&vars, "%s$%s=%s", i ? ", " : "", cfg->vars[i].name, v);
        if (i)
            sb_putc(&varsf, ',');
        sb_append(&varsf, cfg->vars[i].name);
        sb_putc(&varsf, '=');
        append_sanitized(&varsf, v);
        if (i)
            sb_putc(&varsd, '/');
        sb_append(&varsd, cfg->vars[i].name);
        sb_putc(&varsd, '=');
        append_sanitized(&varsd, v);
    }
    if (cfg->nvars)
        sb_putc(&varsf, '-');
    r->label = xasprintf("%s%s$repetition=%d", vars.s, cfg->nvars ? ", " : "", r->repetition);
    r->iterationvars = sb_take(&vars);
    r->iterationvarsf = sb_take(&varsf);
    r->iterationvarsd = sb_take(&varsd);
}

void run_ctx_init(run_ctx *r, const config_t *cfg, int runnumber)
{
    time_t now = time(NULL);
    struct tm tmv;
    char buf[64];
    char *err = NULL;

    run_ctx_init_light(r, cfg, runnumber);
    localtime_r(&now, &tmv);
    strftime(buf, sizeof buf, "%Y%m%d-%H:%M:%S", &tmv);
    r->datetime = xstrdup(buf);
    strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tmv);
    r->datetimef = xstrdup(buf);
    r->processid = (long)getpid();
    r->runid = xasprintf("%s-%d-%s-%ld", cfg->name, runnumber, r->datetime, r->processid);
    r->resultdir = run_option_str(r, "result-dir", &err);
    if (err) {
        /* reported again (and fatally) when the run starts */
        free(err);
        r->resultdir = NULL;
    }
    if (!r->resultdir)
        r->resultdir = xstrdup("results");
}

void run_ctx_free(run_ctx *r)
{
    free(r->validx);
    free(r->iterationvars);
    free(r->iterationvarsf);
    free(r->iterationvarsd);
    free(r->label);
    free(r->datetime);
    free(r->datetimef);
    free(r->runid);
    free(r->resultdir);
    memset(r, 0, sizeof *r);
}

/* Value of a predefined variable, malloc'd; NULL if unknown. */
static char *predefined(const run_ctx *r, const char *name, int depth, char **err)
{
    const config_t *cfg = r->cfg;
    char *v;
    (void)depth;
    if (!strcmp(name, "configname"))
        return xstrdup(cfg->name);
    if (!strcmp(name, "runnumber"))
        return xasprintf("%d", r->runnumber);
    if (!strcmp(name, "repetition"))
        return xasprintf("%d", r->repetition);
    if (!strcmp(name, "iterationvars"))
        return xstrdup(r->iterationvars ? r->iterationvars : "");
    if (!strcmp(name, "iterationvarsf"))
        return xstrdup(r->iterationvarsf ? r->iterationvarsf : "");
    if (!strcmp(name, "iterationvarsd"))
        return xstrdup(r->iterationvarsd ? r->iterationvarsd : "");
    if (!strcmp(name, "runid"))
        return xstrdup(r->runid ? r->runid : "");
    if (!strcmp(name, "datetime"))
        return xstrdup(r->datetime ? r->datetime : "");
    if (!strcmp(name, "datetimef"))
        return xstrdup(r->datetimef ? r->datetimef : "");
    if (!strcmp(name, "processid"))
        return xasprintf("%ld", r->processid);
    if (!strcmp(name, "inifile"))
        return xstrdup(cfg->ini->path);
    if (!strcmp(name, "replication"))
        return xasprintf("#%d", r->repetition);
    if (!strcmp(name, "resultdir")) {
        if (r->resultdir)
            return xstrdup(r->resultdir);
        *err = xstrdup("${resultdir} cannot be used in the value of result-dir");
        return NULL;
    }
    if (!strcmp(name, "experiment")) {
        v = run_option_str(r, "experiment-label", err);
        return v ? v : (*err ? NULL : xstrdup(cfg->name));
    }
    if (!strcmp(name, "measurement")) {
        v = run_option_str(r, "measurement-label", err);
        return v ? v : (*err ? NULL : xstrdup(r->iterationvars ? r->iterationvars : ""));
    }
    if (!strcmp(name, "network")) {
        v = run_option_str(r, "network", err);
        return v ? v : (*err ? NULL : xstrdup(""));
    }
    if (!strcmp(name, "seedset")) {
        v = run_option(r, "seed-set", err);
        return v ? v : (*err ? NULL : xasprintf("%d", r->repetition));
    }
    return NULL;
}

static char *subst_depth(const run_ctx *r, const char *raw, int depth, char **err)
{
    strbuf b;
    const char *p = raw, *q;
    *err = NULL;
    if (depth > 8) {
        *err = xasprintf("Too deeply nested ${...} references in '%s'", raw);
        return NULL;
    }
    sb_init(&b);
    sb_append(&b, "");
    while ((q = strstr(p, "${")) != NULL) {
        const char *close = find_close(q + 2);
        char *body, *val = NULL;
        dollar_t d;
        int idx = -1;
        sb_appendn(&b, p, (size_t)(q - p));
        if (!close) {
            *err = xasprintf("Missing '}' in '%s'", raw);
            sb_free(&b);
            return NULL;
        }
        body = xstrndup(q + 2, (size_t)(close - (q + 2)));
        if (parse_dollar(body, &d, err) != 0) {
            free(body);
            sb_free(&b);
            return NULL;
        }
        if (d.kind == D_UNNAMED)
            idx = find_unnamed_var(r->cfg, body);
        else
            idx = find_var(r->cfg, d.name);
        if (idx >= 0 && r->validx) {
            val = xstrdup(run_var_value(r, idx));
        } else if (d.kind == D_REF) {
            val = predefined(r, d.name, depth, err);
            if (!val && !*err)
                *err = xasprintf("Unknown iteration variable: $%s", d.name);
        } else {
            *err = xasprintf("Iteration variable '${%s}' is not part of config %s", body,
                             r->cfg->name);
        }
        dollar_free(&d);
        free(body);
        if (!val) {
            sb_free(&b);
            return NULL;
        }
        sb_append(&b, val);
        free(val);
        p = close + 1;
    }
    sb_append(&b, p);
    return sb_take(&b);
}

char *run_subst(const run_ctx *r, const char *raw, char **err)
{
    /* options may refer to each other through predefined variables
     * (e.g. ${seedset} -> seed-set); the counter stops reference cycles */
    static int nesting = 0;
    char *v;
    nesting++;
    v = subst_depth(r, raw, nesting, err);
    nesting--;
    return v;
}

char *run_option(const run_ctx *r, const char *key, char **err)
{
    const config_t *cfg = r->cfg;
    int i, j;
    *err = NULL;
    for (i = cfg->ncmdline - 1; i >= 0; i--)
        if (!strcmp(cfg->cmdline[i].key, key))
            return run_subst(r, cfg->cmdline[i].value, err);
    for (i = 0; i < cfg->nchain; i++)
        for (j = 0; j < cfg->chain[i]->n; j++)
            if (!strcmp(cfg->chain[i]->entries[j].key, key))
                return run_subst(r, cfg->chain[i]->entries[j].value, err);
    return NULL;
}

char *run_option_str(const run_ctx *r, const char *key, char **err)
{
    char *v = run_option(r, key, err), *u;
    if (!v)
        return NULL;
    u = str_unquote(v);
    free(v);
    return u;
}

static int is_param_key(const char *key)
{
    return (strchr(key, '.') || strchr(key, '*')) && !config_perobject_option(key);
}

char *run_param(const run_ctx *r, const char *fullpath, char **err)
{
    const config_t *cfg = r->cfg;
    const char *raw = NULL;
    int i, j;
    char *v;
    *err = NULL;
    for (i = 0; i < cfg->ncmdline && !raw; i++)
        if (is_param_key(cfg->cmdline[i].key) && pattern_match(cfg->cmdline[i].key, fullpath))
            raw = cfg->cmdline[i].value;
    for (i = 0; i < cfg->nchain && !raw; i++)
        for (j = 0; j < cfg->chain[i]->n; j++) {
            const ini_entry *e = &cfg->chain[i]->entries[j];
            if (is_param_key(e->key) && pattern_match(e->key, fullpath)) {
                raw = e->value;
                break;
            }
        }
    if (!raw || !strcmp(raw, "default"))
        return NULL;
    v = run_subst(r, raw, err);
    if (v && !strcmp(v, "default")) {
        free(v);
        return NULL;
    }
    return v;
}

static int perobject_matches(const char *key, const char *objpath, const char *option)
{
    size_t kl = strlen(key), ol = strlen(option);
    char *pat;
    int m;
    if (kl <= ol + 1 || strcmp(key + kl - ol, option) != 0 || key[kl - ol - 1] != '.')
        return 0;
    pat = xstrndup(key, kl - ol - 1);
    m = pattern_match(pat, objpath);
    free(pat);
    return m;
}

int run_perobject_bool(const run_ctx *r, const char *objpath, const char *option, int def,
                       char **err)
{
    const config_t *cfg = r->cfg;
    const char *raw = NULL;
    int i, j, b;
    char *v;
    *err = NULL;
    for (i = 0; i < cfg->ncmdline && !raw; i++) {
        if (!strcmp(cfg->cmdline[i].key, option) ||
            perobject_matches(cfg->cmdline[i].key, objpath, option))
            raw = cfg->cmdline[i].value;
    }
    for (i = 0; i < cfg->nchain && !raw; i++)
        for (j = 0; j < cfg->chain[i]->n; j++) {
            const ini_entry *e = &cfg->chain[i]->entries[j];
            if (perobject_matches(e->key, objpath, option) || !strcmp(e->key, option)) {
                raw = e->value;
                break;
            }
        }
    if (!raw)
        return def;
    v = run_subst(r, raw, err);
    if (!v)
        return def;
    if (parse_bool(v, &b) != 0) {
        *err = xasprintf("Invalid boolean '%s' for %s.%s", v, objpath, option);
        free(v);
        return def;
    }
    free(v);
    return b;
}
