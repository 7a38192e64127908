/*
 * params.h -- module parameters: values from the configuration (with
 * wildcard patterns and ${} substitution, see config.h) parsed as numbers
 * with units, strings, booleans, or random distributions such as
 * exponential(1s) and uniform(0m, 1000m), which are drawn anew on every use
 * (OMNeT++ "volatile" parameters). Problems are reported via sim_error().
 */
#ifndef ALOHA_PARAMS_H
#define ALOHA_PARAMS_H

#include "config.h"
#include "rng.h"
#include "sim.h"
#include "util.h"

enum dist_kind { DIST_CONST, DIST_EXPONENTIAL, DIST_UNIFORM, DIST_NORMAL, DIST_TRUNCNORMAL,
                 DIST_INTUNIFORM };

typedef struct {
    int kind;
    double a, b;    /* in base units (s, b, m, bps...) */
} dist_t;

/* Parses a constant or distribution; units as in util.h. */
int dist_parse(const char *text, const unit_def *units, double plain_mult, dist_t *d, char **err);
double dist_sample(const dist_t *d, rng_t *r);
double dist_mean(const dist_t *d);

typedef struct {
    sim_t *sim;
    const run_ctx *run;
} param_src;

/* Each returns the configured value or the default; *text (optional)
 * receives the effective value text (malloc'd) for recording. */
long par_long(param_src *p, const char *path, long def);
double par_quantity(param_src *p, const char *path, const unit_def *units, double plain_mult,
                    const char *def, const char *unitname);
char *par_string(param_src *p, const char *path, const char *def);
int par_bool(param_src *p, const char *path, int def);
dist_t par_dist(param_src *p, const char *path, const unit_def *units, double plain_mult,
                const char *def, char **text);

#endif
