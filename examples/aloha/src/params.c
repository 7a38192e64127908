#include "params.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int kind, nargs;
} DISTS[] = {
    {"exponential", DIST_EXPONENTIAL, 1}, {"uniform", DIST_UNIFORM, 2},
    {"normal", DIST_NORMAL, 2},           {"truncnormal", DIST_TRUNCNORMAL, 2},
    {"intuniform", DIST_INTUNIFORM, 2},   {NULL, 0, 0},
};

int dist_parse(const char *text, const unit_def *units, double plain_mult, dist_t *d, char **err)
{
    char *copy = xstrdup(text), *t = str_trim(copy), *open, *close, *args[2] = {NULL, NULL};
    int i, nargs = 0;
    d->a = d->b = 0;
    *err = NULL;
    open = strchr(t, '(');
    if (!open) {
        d->kind = DIST_CONST;
        if (parse_quantity(t, units, plain_mult, &d->a) != 0) {
            *err = xasprintf("Cannot parse '%s' (expected a number with unit '%s')", t,
                             units[0].name);
            free(copy);
            return -1;
        }
        free(copy);
        return 0;
    }
    close = strrchr(t, ')');
    if (!close || close < open || *str_trim(close + 1)) {
        *err = xasprintf("Syntax error in '%s'", t);
        free(copy);
        return -1;
    }
    *open = '\0';
    *close = '\0';
    {
        char *name = str_trim(t), *p = open + 1, *comma;
        for (i = 0; DISTS[i].name; i++)
            if (!strcmp(DISTS[i].name, name))
                break;
        if (!DISTS[i].name) {
            *err = xasprintf("Unknown function '%s()' (supported: exponential, uniform, normal, "
                             "truncnormal, intuniform)",
                             name);
            free(copy);
            return -1;
        }
        d->kind = DISTS[i].kind;
        while (p && nargs < 2) {
            comma = strchr(p, ',');
            if (comma)
                *comma = '\0';
            args[nargs++] = str_trim(p);
            p = comma ? comma + 1 : NULL;
        }
        if (p || nargs != DISTS[i].nargs) {
            *err = xasprintf("%s() expects %d argument(s)", DISTS[i].name, DISTS[i].nargs);
            free(copy);
            return -1;
        }
        for (i = 0; i < nargs; i++) {
            double v;
            if (parse_quantity(args[i], units, plain_mult, &v) != 0) {
                *err = xasprintf("Cannot parse argument '%s' (expected a number with unit '%s')",
                                 args[i], units[0].name);
                free(copy);
                return -1;
            }
            if (i == 0)
                d->a = v;
            else
                d->b = v;
        }
    }
    free(copy);
    return 0;
}

double dist_sample(const dist_t *d, rng_t *r)
{
    double v;
    switch (d->kind) {
    case DIST_EXPONENTIAL: return rng_exponential(r, d->a);
    case DIST_UNIFORM: return rng_uniform(r, d->a, d->b);
    case DIST_NORMAL: return rng_normal(r, d->a, d->b);
    case DIST_TRUNCNORMAL:
        do
            v = rng_normal(r, d->a, d->b);
        while (v < 0);
        return v;
    case DIST_INTUNIFORM: return (double)rng_intuniform(r, (long)d->a, (long)d->b);
    default: return d->a;
    }
}

double dist_mean(const dist_t *d)
{
    switch (d->kind) {
    case DIST_UNIFORM:
    case DIST_INTUNIFORM: return (d->a + d->b) / 2;
    default: return d->a;
    }
}

static char *lookup(param_src *p, const char *path)
{
    char *err = NULL, *v = run_param(p->run, path, &err);
    if (err) {
        char *m = sim_keep(p->sim, xasprintf("%s (parameter %s)", err, path));
        free(err);
        sim_error(p->sim, "%s", m);
    }
    return v;
}

long par_long(param_src *p, const char *path, long def)
{
    char *v = lookup(p, path);
    long x;
    double d;
    if (!v)
        return def;
    if (parse_long_strict(v, &x) != 0) {
        if (parse_double_strict(v, &d) == 0 && d == floor(d) && fabs(d) < 1e15) {
            x = (long)d;
        } else {
            char *copy = sim_keep(p->sim, xstrdup(v));
            free(v);
            sim_error(p->sim, "Cannot parse value '%s' of parameter %s: integer expected", copy,
                      path);
        }
    }
    free(v);
    return x;
}

double par_quantity(param_src *p, const char *path, const unit_def *units, double plain_mult,
                    const char *def, const char *unitname)
{
    char *v = lookup(p, path);
    double x;
    const char *text = v ? v : def;
    if (parse_quantity(text, units, plain_mult, &x) != 0) {
        char *copy = sim_keep(p->sim, xstrdup(text));
        free(v);
        sim_error(p->sim, "Cannot parse value '%s' of parameter %s: a number with unit '%s' expected",
                  copy, path, unitname);
    }
    free(v);
    return x;
}

char *par_string(param_src *p, const char *path, const char *def)
{
    char *v = lookup(p, path), *u;
    if (!v)
        return xstrdup(def);
    u = str_unquote(v);
    free(v);
    return u;
}

int par_bool(param_src *p, const char *path, int def)
{
    char *v = lookup(p, path);
    int b;
    if (!v)
        return def;
    if (parse_bool(v, &b) != 0) {
        char *copy = sim_keep(p->sim, xstrdup(v));
        free(v);
        sim_error(p->sim, "Cannot parse value '%s' of parameter %s: true or false expected", copy,
                  path);
    }
    free(v);
    return b;
}

dist_t par_dist(param_src *p, const char *path, const unit_def *units, double plain_mult,
                const char *def, char **text)
{
    char *v = lookup(p, path), *err = NULL;
    dist_t d;
    const char *t = v ? v : def;
    if (dist_parse(t, units, plain_mult, &d, &err) != 0) {
        char *m = sim_keep(p->sim, xasprintf("Bad value for parameter %s: %s", path, err));
        free(err);
        free(v);
        sim_error(p->sim, "%s", m);
    }
    if (text)
        *text = xstrdup(t);
    free(v);
    return d;
}
