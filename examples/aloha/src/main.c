/*
 * main.c -- command line of the aloha example, modelled on an OMNeT++ 6.1
 * simulation program started with Cmdenv:
 *
 *   ./aloha [-s] [-u Cmdenv] [-f INI] [-c CONFIG] [-r FILTER]
 *           [-q runnumbers|numruns|runs] [-a] [--OPTION=VALUE ...]
 *
 * See README.md for the details.
 */
#include <stdlib.h>
#include <string.h>

#include "cmdenv.h"
#include "config.h"
#include "filter.h"
#include "ini.h"
#include "util.h"

static void usage(void)
{
    printf("Usage: aloha [-s] [-u Cmdenv] [-f INIFILE] [-c CONFIG] [-r RUNFILTER]\n"
           "             [-q runnumbers|numruns|runs] [-a] [--OPTION=VALUE ...]\n"
           "\n"
           "  -s          silent: no banner, one header line per run\n"
           "  -u Cmdenv   user interface (only Cmdenv exists)\n"
           "  -f FILE     ini file (default: omnetpp.ini)\n"
           "  -c CONFIG   configuration to run (default: General)\n"
           "  -r FILTER   runs: '0..3,40-41', '5', or '$numHosts==10 && $iaMean==1'\n"
           "  -q WHAT     print runnumbers, numruns or runs and exit\n"
           "  -a          list the configurations and their number of runs\n"
           "  -n PATH     NED path: accepted and ignored (the network is compiled in)\n"
           "  -h          this help\n"
           "\n"
           "  --OPTION=VALUE   any configuration option, e.g. --result-dir=DIR,\n"
           "                   --sim-time-limit=10min, --cmdenv-redirect-output=true,\n"
           "                   --cmdenv-stop-batch-on-error=false, --seed-set=3,\n"
           "                   --cpu-time-limit=1s, --fingerprint=1234-abcd/tplx\n"
           "  --PATTERN=VALUE  a parameter, e.g. --Aloha.numHosts=5, --**.chattyBytes=10MiB\n"
           "  --chatty-bytes=N, --sleep=T, --vector-bytes=N, --hang-time=T\n"
           "                   shorthands for **.chattyBytes, **.sleepTime, **.vectorBytes,\n"
           "                   **.hangTime (T in seconds unless it has a unit)\n");
}

typedef struct {
    setting_t *v;
    int n;
} settings;

static void add_setting(settings *s, const char *key, const char *value)
{
    s->v = xrealloc(s->v, (size_t)(s->n + 1) * sizeof *s->v);
    s->v[s->n].key = xstrdup(key);
    s->v[s->n].value = xstrdup(value);
    s->n++;
}

static void free_settings(settings *s)
{
    int i;
    for (i = 0; i < s->n; i++) {
        free(s->v[i].key);
        free(s->v[i].value);
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* A bare number means seconds. */
static char *seconds_value(const char *v)
{
    double d;
    if (parse_double_strict(v, &d) == 0)
        return xasprintf("%ss", v);
    return xstrdup(v);
}

static void parse_long_option(settings *s, const char *arg)
{
    const char *body = arg + 2, *eq = strchr(body, '=');
    char *key, *v;
    if (!eq) {
        if (config_is_known_option(body))
            fatal("Missing value for command line option %s (use %s=VALUE)", arg, arg);
        fatal("Unknown command line option %s", arg);
    }
    key = xstrndup(body, (size_t)(eq - body));
    if (!strcmp(key, "chatty-bytes")) {
        add_setting(s, "**.chattyBytes", eq + 1);
    } else if (!strcmp(key, "vector-bytes")) {
        add_setting(s, "**.vectorBytes", eq + 1);
    } else if (!strcmp(key, "sleep")) {
        v = seconds_value(eq + 1);
        add_setting(s, "**.sleepTime", v);
        free(v);
    } else if (!strcmp(key, "hang-time")) {
        v = seconds_value(eq + 1);
        add_setting(s, "**.hangTime", v);
        free(v);
    } else if (config_is_known_option(key)) {
        add_setting(s, key, eq + 1);
    } else if (strchr(key, '.') || strchr(key, '*')) {
        const char *last = strrchr(key, '.');
        const char *opt = last ? last + 1 : key;
        if (strchr(opt, '-') && !config_perobject_option(key))
            fatal("Unknown per-object configuration option '%s' in %s", opt, arg);
        add_setting(s, key, eq + 1);
    } else {
        char *name = xstrndup(arg, (size_t)(eq - arg));
        fatal("Unknown command line option %s", name);
    }
    free(key);
}

int main(int argc, char **argv)
{
    int silent = 0, list_configs = 0, i;
    const char *inifile = NULL, *configname = "General", *filter = NULL, *query = NULL;
    const char *ui = NULL;
    settings set = {NULL, 0};
    ini_file ini;
    config_t *cfg;
    char *err = NULL;
    int *runs = NULL, nruns = 0, failed = 0;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **target = NULL;
        if (!strcmp(a, "-s")) {
            silent = 1;
        } else if (!strcmp(a, "-a")) {
            list_configs = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        } else if (!strcmp(a, "-v")) {
            printf("aloha (simswarm example), OMNeT++ 6.1-compatible command line\n");
            return 0;
        } else if (a[0] == '-' && a[1] == '-' && a[2]) {
            parse_long_option(&set, a);
        } else if (a[0] == '-' && a[1] && strchr("ufcrqnlx", a[1]) && a[2] == '\0') {
            switch (a[1]) {
            case 'u': target = &ui; break;
            case 'f': target = &inifile; break;
            case 'c': target = &configname; break;
            case 'r': target = &filter; break;
            case 'q': target = &query; break;
            default: target = NULL; break; /* -n, -l, -x: accepted, ignored */
            }
            if (i + 1 >= argc)
                fatal("Missing argument for command line option %s", a);
            i++;
            if (target)
                *target = argv[i];
        } else if (a[0] == '-' && a[1] && strchr("ufcrq", a[1])) {
            /* OMNeT++ also accepts -cCONFIG, -r5 etc. */
            switch (a[1]) {
            case 'u': ui = a + 2; break;
            case 'f': inifile = a + 2; break;
            case 'c': configname = a + 2; break;
            case 'r': filter = a + 2; break;
            case 'q': query = a + 2; break;
            default: break;
            }
        } else if (a[0] == '-' && a[1]) {
            fatal("Unknown command line option %s", a);
        } else {
            if (inifile)
                fatal("Only one ini file is supported (got '%s' and '%s')", inifile, a);
            inifile = a;
        }
    }
    if (ui && strcmp(ui, "Cmdenv") != 0)
        fatal("Could not start user interface '%s' (this program only has Cmdenv)", ui);
    if (!inifile)
        inifile = "omnetpp.ini";

    if (ini_load(&ini, inifile, &err) != 0)
        fatal("%s", err);

    if (!silent)
        cmdenv_banner();

    if (list_configs) {
        int k;
        if (!silent)
            printf("\n");
        for (k = 0; k < ini.n; k++) {
            config_t *c = config_open(&ini, ini.sections[k].name, set.v, set.n, &err);
            if (!c)
                fatal("%s", err);
            printf("Config %s: %d\n", c->name, c->nruns);
            config_free(c);
        }
        if (!silent)
            printf("\nEnd.\n");
        ini_free(&ini);
        free_settings(&set);
        return 0;
    }

    cfg = config_open(&ini, configname, set.v, set.n, &err);
    if (!cfg)
        fatal("%s", err);
    if (run_filter(cfg, filter, &runs, &nruns, &err) != 0)
        fatal("%s", err);

    if (query) {
        if (!strcmp(query, "runnumbers")) {
            if (!silent)
                printf("\nConfig: %s\nNumber of runs: %d\n\nRun numbers:", cfg->name, cfg->nruns);
            for (i = 0; i < nruns; i++)
                printf(" %d", runs[i]);
            printf("\n");
        } else if (!strcmp(query, "numruns")) {
            if (!silent)
                printf("\nConfig: %s\nNumber of runs: %d\n", cfg->name, nruns);
            else
                printf("%d\n", nruns);
        } else if (!strcmp(query, "runs")) {
            if (!silent)
                printf("\nConfig: %s\nNumber of runs: %d\n\n", cfg->name, cfg->nruns);
            for (i = 0; i < nruns; i++) {
                run_ctx r;
                run_ctx_init_light(&r, cfg, runs[i]);
                printf("Run %d: %s\n", runs[i], r.label);
                run_ctx_free(&r);
            }
        } else {
            fatal("Unknown query '%s' (supported: runnumbers, numruns, runs)", query);
        }
    } else {
        for (i = 0; i < nruns; i++) {
            if (cmdenv_run(cfg, runs[i], i, nruns, silent) != 0) {
                failed = 1;
                if (cmdenv_stop_batch_on_error(cfg, runs[i]))
                    break;
            }
        }
    }
    if (!silent)
        printf("\nEnd.\n");
    fflush(stdout);

    free(runs);
    config_free(cfg);
    ini_free(&ini);
    free_settings(&set);
    return failed ? 1 : 0;
}
