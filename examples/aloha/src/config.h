/*
 * config.h -- one selected configuration of an ini file, the way OMNeT++'s
 * section-based configuration sees it:
 *
 *  - the section chain: [Config X], the configs it `extends` (depth first),
 *    then [General];
 *  - iteration variables: ${name=v1,v2,...}, ${name=1..10 step 2},
 *    unnamed ${v1,v2} and parallel ${name=a,b,c ! other}, in order of
 *    appearance (the first one is the outermost loop), plus `repeat = N`
 *    giving $repetition as the innermost loop;
 *  - run number <-> variable values;
 *  - lookup of configuration options and of module parameters (with
 *    OMNeT++ wildcard patterns), command-line settings taking precedence,
 *    and ${...} substitution in the values found.
 */
#ifndef ALOHA_CONFIG_H
#define ALOHA_CONFIG_H

#include "ini.h"

typedef struct {
    char *name;        /* "numHosts"; "0", "1"... for unnamed variables */
    char *body;        /* text inside ${...}, identifies unnamed variables */
    char **values;     /* values as written, e.g. 10, 1e-7, "TcpReno" */
    int nvalues;
    char *parallel;    /* name after '!', or NULL */
    int parallel_to;   /* index of that variable in config_t.vars, or -1 */
} itervar_t;

typedef struct {
    char *key;
    char *value;
} setting_t;

typedef struct {
    ini_file *ini;
    char *name;                 /* config name, "General" by default */
    ini_section **chain;        /* most specific first, [General] last */
    int nchain;
    itervar_t *vars;
    int nvars;
    setting_t *cmdline;         /* --key=value settings, in command-line order */
    int ncmdline;
    int repeat;
    int nruns;
} config_t;

typedef struct {
    const config_t *cfg;
    int runnumber;
    int repetition;
    int *validx;                /* value index for each iteration variable */
    char *iterationvars;        /* "$numHosts=10, $iaMean=1" */
    char *iterationvarsf;       /* "numHosts=10,iaMean=1-" */
    char *iterationvarsd;       /* "numHosts=10/iaMean=1" */
    char *label;                /* iterationvars + "$repetition=N" */
    char *datetime;             /* "20261121-23:02:00" */
    char *datetimef;            /* "20261121-230200" */
    char *runid;
    long processid;
    char *resultdir;            /* result-dir value as configured */
} run_ctx;

/* Is `key` (without "--") a configuration option this program knows? */
int config_is_known_option(const char *key);
/* Per-object options such as **.vector-recording: returns the option name
 * (the part after the last '.') if key is one, else NULL. */
const char *config_perobject_option(const char *key);

/* Opens config `name`. On error returns NULL and sets *err. */
config_t *config_open(ini_file *ini, const char *name, const setting_t *cmdline, int ncmdline,
                      char **err);
void config_free(config_t *cfg);

/* Value of variable i for run r, as written in the ini file. */
const char *run_var_value(const run_ctx *r, int i);

void run_ctx_init(run_ctx *r, const config_t *cfg, int runnumber);
void run_ctx_free(run_ctx *r);
/* Cheap variant for -q/-r: only fills validx, repetition and label. */
void run_ctx_init_light(run_ctx *r, const config_t *cfg, int runnumber);

/* ${...} substitution. Returns malloc'd string, or NULL with *err set. */
char *run_subst(const run_ctx *r, const char *raw, char **err);

/* Configuration option (command line first, then the section chain), with
 * ${} substituted; NULL if not set. *err is set on substitution errors. */
char *run_option(const run_ctx *r, const char *key, char **err);
/* Same, string literal quotes removed. */
char *run_option_str(const run_ctx *r, const char *key, char **err);

/* Module parameter by full path ("Aloha.host[3].iaTime"): the first
 * matching pattern wins (command line, then the chain). NULL if unset or
 * set to "default". */
char *run_param(const run_ctx *r, const char *fullpath, char **err);

/* Per-object boolean option (e.g. "vector-recording") for an object path
 * such as "Aloha.server.channelState". */
int run_perobject_bool(const run_ctx *r, const char *objpath, const char *option, int def,
                       char **err);

/* OMNeT++ wildcard pattern: ** any, * any except '.', ? one char except
 * '.', [N..M] and {N..M} numeric ranges, \ escapes. */
int pattern_match(const char *pattern, const char *s);

#endif
